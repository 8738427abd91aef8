"""The table registry: one entry per lake table, the only place a table is described.

Each :class:`TableSpec` gives the table's name, schema, partitioning, keys, drop reasons,
column lineage (which upstream columns each column derives from), the columns the lineage
index copies (traced columns) and its data-quality expectations. The quality suites, Dagster
column lineage, the lineage index, the demo summary and the tests derive from it, and no
other module spells a table's name as a string: they use :class:`TableName`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa

from pipeline.provenance.c2pa_store import C2PA_STATES
from pipeline.provenance.combine import TRAINING_USES


class TableName:
    """Every lake table and file asset, in the order of the hops (plain strings: they are
    Dagster asset names, lake directories and run-config keys)."""

    CRAWL_MANIFEST: Final = "crawl_manifest"
    WAT_IMAGE_LINKS: Final = "wat_image_links"
    ALT_TEXT_PAIRS: Final = "alt_text_pairs"
    CLIP_SCORES: Final = "clip_scores"
    IMAGE_EMBEDDINGS: Final = "image_embeddings"
    OPT_OUTS: Final = "opt_outs"
    HASH_LISTS: Final = "hash_lists"
    LAION_DATASET: Final = "laion_dataset"
    LAION_DATASET_DECISIONS: Final = "laion_dataset_decisions"
    LAION_SUBSETS: Final = "laion_subsets"
    AESTHETIC_SCORES: Final = "aesthetic_scores"
    AESTHETIC_SUBSET: Final = "aesthetic_subset"
    IMAGE_SHARDS: Final = "image_shards"
    DOWNLOAD_RESULTS: Final = "download_results"
    DIFFUSION_MODEL: Final = "diffusion_model"
    TRAINING_MANIFEST: Final = "training_manifest"
    SAMPLES: Final = "samples"
    REPLICATION_AUDIT: Final = "replication_audit"
    OPT_OUT_REPORT: Final = "opt_out_report"
    OPT_OUT_NOT_REACHED: Final = "opt_out_not_reached"
    LAKE_RUNS: Final = "lake_runs"
    ERASURES: Final = "erasures"
    DATASET_REPORT: Final = "dataset_report"
    STYLE_IMITATION: Final = "style_imitation"
    AI_SHARE: Final = "ai_share"


T = TableName

# ---------------------------------------------------------------------------------------------
# Vocabularies: statuses and drop reasons
# ---------------------------------------------------------------------------------------------

RECORD_ERRORS = (
    "gzip_error",
    "truncated_member",
    "bad_warc_header",
    "content_length_mismatch",
    "not_utf8",
    "bad_json",
    "missing_keys",
    "parser_busy",
    "record_too_large",
    "empty_record",
    "missing_target_uri",
    "bad_http_message",
    "unsupported_encoding",
)
"""Why hop 1 skipped a WAT record (counted per file; the rest of the file is still read)."""

OPT_OUT_KINDS = ("url", "domain", "sha256")
OPT_OUT_DROP_REASONS = tuple(f"opted_out:{k}" for k in OPT_OUT_KINDS)
URL_OPT_OUT_REASONS = ("opted_out:url", "opted_out:domain")
"""Owners' withdrawals that a URL alone decides (hops 2 and 3 apply them before any fetch)."""

ALT_TEXT_DROP_REASONS = (
    "bad_url",
    "not_http",
    "private_host",
    *URL_OPT_OUT_REASONS,
    "page_noai",
    "missing_alt",
    "empty_alt",
    "alt_too_short",
    "duplicate",
)
"""Hop 2's rules, in the order they run (the first failure is the reason). The owners'
opt-outs follow the URL rules, since they match the normalized URL and its host, which only a
URL that passed them has; they precede the page and alt rules, so every pair of a withdrawn
URL is counted as withdrawn (not as ``alt_too_short``), and no withdrawn pair takes a dedup
key."""

FETCH_STATUSES = (
    "ok",
    "header_noai",
    "download_failed:http_4xx",
    "download_failed:http_5xx",
    "download_failed:timeout",
    "download_failed:connection_error",
    "download_failed:dns",
    "download_failed:truncated",
    "download_failed:too_large",
    "download_failed:redirect_blocked",
    "download_failed:too_many_redirects",
    "download_failed:bad_redirect",
)

DECODE_STATUSES = (
    "too_small",
    "decode_failed:not_image",
    "decode_failed:decompression_bomb",
    "decode_failed:corrupt",
)

HASH_KINDS = ("md5", "sha256", "pdq")
"""Hashes a takedown list may hold: file digests (exact) or PDQ (perceptual, 256 bits)."""
HASH_LIST_PREFIX = "hash_list:"
"""Open-ended drop reason ``hash_list:<list name>``: a fetched image a takedown list matches.
List names are checked against :data:`HASH_LIST_NAME`, so the reasons are a pattern, not a
closed set (:data:`HASH_LIST_REASON`)."""
HASH_LIST_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
HASH_LIST_REASON = f"{HASH_LIST_PREFIX}{HASH_LIST_NAME}"

CREDENTIALS_NO_TRAINING = "credentials_no_training"
"""Hop 3: the image's C2PA credentials say ``notAllowed`` for (generative) AI training."""
CLIP_DROP_REASONS = (
    *URL_OPT_OUT_REASONS,
    *(s for s in FETCH_STATUSES if s != "ok"),
    "opted_out:sha256",
    CREDENTIALS_NO_TRAINING,
    *DECODE_STATUSES,
    "below_threshold",
)
"""Hop 3's reasons. ``opted_out:url|domain``: the URL (or a redirect's target) is withdrawn,
and no request is made for it; ``opted_out:sha256`` and ``hash_list:<name>``
(:data:`HASH_LIST_REASON`): the fetched bytes are withdrawn, dropped before they are embedded
or stored."""

FETCH_OUTCOMES = (
    *URL_OPT_OUT_REASONS,
    *FETCH_STATUSES,
    "opted_out:sha256",
    CREDENTIALS_NO_TRAINING,
    *DECODE_STATUSES,
)
"""What happened to a URL at hop 3 (``clip_scores.fetch_status``), besides ``hash_list:*``."""

RELEASE_DROP_REASONS = ("global_duplicate", *OPT_OUT_DROP_REASONS)
AESTHETIC_DROP_REASONS = (
    "missing_embedding",
    "below_aesthetic",
    "unsafe",
    "watermarked",
    "ai_generated",
)
"""``ai_generated``: otherwise kept, but hop 3 read metadata declaring a trained model
(``exclude_ai_generated``, on by default)."""

DOWNLOAD_SUCCESS = "success"
DOWNLOAD_FAILED_STATUSES = ("failed_to_download", "failed_to_resize")
DOWNLOAD_NOT_ATTEMPTED = "not_attempted_yet"
DOWNLOAD_GAVE_UP = "gave_up"
DOWNLOAD_CONTENT_CHANGED = "content_changed"
DOWNLOAD_REFUSED_STATUSES = (
    DOWNLOAD_CONTENT_CHANGED,
    "private_host",
    "decompression_bomb",
    "opted_out:url",
    "opted_out:domain",
)
"""Downloads refused by rule, not retried: bytes other than those hop 3 scored, a request
(first or redirect) to a private address, an image declaring too many pixels, a request
(first or redirect) to a URL or domain its owner withdrew since the subset was built."""
DOWNLOAD_STATUSES = (
    DOWNLOAD_SUCCESS,
    *DOWNLOAD_FAILED_STATUSES,
    *DOWNLOAD_REFUSED_STATUSES,
    DOWNLOAD_NOT_ATTEMPTED,
    DOWNLOAD_GAVE_UP,
)

AUDIT_DESCRIPTORS = ("pixels", "clip", "sscd")

# ---------------------------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------------------------

CRAWL_MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("crawl_id", pa.string()),
        pa.field("partition_key", pa.string()),
        pa.field("slice_index", pa.int32()),
        pa.field("wat_path", pa.string()),
        pa.field("wat_uri", pa.string()),
    ]
)

IMAGE_LINK_SCHEMA = pa.schema(
    [
        pa.field("pair_id", pa.string()),
        pa.field("crawl_id", pa.string()),
        pa.field("wat_path", pa.string()),
        pa.field("wat_record_offset", pa.int64()),
        pa.field("wat_record_id", pa.string()),
        pa.field("warc_record_id", pa.string()),
        pa.field("page_url", pa.string()),
        pa.field("page_date", pa.string()),
        pa.field("warc_filename", pa.string()),
        pa.field("warc_offset", pa.int64()),
        pa.field("base_url", pa.string()),
        pa.field("page_robots", pa.string()),
        pa.field("link_index", pa.int32()),
        pa.field("url_raw", pa.string()),
        pa.field("url", pa.string()),
        pa.field("alt", pa.string()),
    ]
)
"""Hop-1 columns: one row per ``IMG@/src`` link. ``url`` is ``url_raw`` resolved against
``base_url`` or ``page_url``; ``alt`` is null when the tag had no alt attribute;
``pair_id`` is :func:`pipeline.lake.keys.pair_id` of (url, alt)."""

ALT_TEXT_SCHEMA = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("url_id", pa.string()),
        pa.field("url", pa.string()),
        pa.field("alt", pa.string()),
        pa.field("text", pa.string()),
        pa.field("language", pa.string()),
        pa.field("language_score", pa.float32()),
        pa.field("language_detector", pa.string()),
        pa.field("dedup_key", pa.string()),
        pa.field("crawl_id", pa.string()),
        pa.field("page_url", pa.string()),
        pa.field("wat_path", pa.string()),
        pa.field("wat_record_offset", pa.int64()),
        pa.field("link_index", pa.int32()),
        pa.field("kept", pa.bool_(), nullable=False),
        pa.field("drop_reason", pa.string()),
    ]
)

PROVENANCE_FIELDS = (
    pa.field("ai_generated", pa.bool_()),
    pa.field("ai_signals", pa.string()),
    pa.field("c2pa_state", pa.string()),
    pa.field("training_mining", pa.string()),
)
"""What an image's metadata says (:mod:`pipeline.provenance`): ``ai_generated`` (null: no
signal), ``ai_signals`` (a JSON list of every signal read, counted or not), ``c2pa_state``
(:data:`C2PA_STATES`; null: not read) and ``training_mining`` (:data:`TRAINING_USES`)."""

CLIP_SCORES_SCHEMA = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("url_id", pa.string()),
        pa.field("url", pa.string()),
        pa.field("text", pa.string()),
        pa.field("language", pa.string()),
        pa.field("crawl_id", pa.string()),
        pa.field("model_id", pa.string()),
        pa.field("fetch_status", pa.string()),
        pa.field("http_status", pa.int32()),
        pa.field("final_url", pa.string()),
        pa.field("fetch_attempts", pa.int32()),
        pa.field("from_cache", pa.bool_()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("n_bytes", pa.int64()),
        pa.field("sha256", pa.string()),
        pa.field("md5", pa.string()),
        pa.field("pdq", pa.string()),
        pa.field("copy_desc", pa.string()),
        pa.field("similarity", pa.float32()),
        pa.field("threshold", pa.float32()),
        pa.field("punsafe", pa.float32()),
        pa.field("pwatermark", pa.float32()),
        pa.field("kept", pa.bool_(), nullable=False),
        pa.field("drop_reason", pa.string()),
        pa.field("error", pa.string()),
        *PROVENANCE_FIELDS,
    ]
)
"""One row per kept hop-2 pair. ``sha256`` and ``md5`` are of the fetched bytes, ``pdq`` the
PDQ hash (hex) of the decoded pixels, kept for every fetched image, so a takedown list that
grows later is matched again at ``laion_dataset``; ``copy_desc`` the copy-detection
descriptor (hex of int8, ``pipeline/lineage/copydetect.py``; null without contrast) that
trace by image finds near-duplicates with. The provenance columns are read from the fetched
bytes before any size rule or decode (:mod:`pipeline.provenance`)."""


def embeddings_schema(dim: int, keep_images: bool = False) -> pa.Schema:
    """``image_embeddings``: its embedding width depends on the CLIP model."""
    fields = [
        pa.field("url_id", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("model_id", pa.string(), nullable=False),
        pa.field("sha256", pa.string()),
        pa.field("md5", pa.string()),
        pa.field("pdq", pa.string()),
        pa.field("copy_desc", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("n_bytes", pa.int64()),
        pa.field("image_format", pa.string()),
        pa.field("embedding", pa.list_(pa.float32(), dim)),
        *PROVENANCE_FIELDS,
    ]
    if keep_images:
        fields.append(pa.field("image", pa.binary()))
    return pa.schema(fields)


OPT_OUT_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
        pa.field("added_at", pa.timestamp("s", tz="UTC"), nullable=False),
        pa.field("note", pa.string()),
    ]
)

HASH_LIST_SCHEMA = pa.schema(
    [
        pa.field("name", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
        pa.field("added_at", pa.timestamp("s", tz="UTC"), nullable=False),
        pa.field("note", pa.string()),
    ]
)
"""One hash of a named takedown list: ``kind`` md5, sha256 or pdq, ``value`` lower-case hex."""

RELEASE_SCHEMA = pa.schema(
    [
        pa.field("URL", pa.string(), nullable=False),
        pa.field("TEXT", pa.string(), nullable=False),
        pa.field("WIDTH", pa.int32()),
        pa.field("HEIGHT", pa.int32()),
        pa.field("similarity", pa.float32()),
        pa.field("punsafe", pa.float32()),
        pa.field("pwatermark", pa.float32()),
        pa.field("LANGUAGE", pa.string()),
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("url_id", pa.string(), nullable=False),
        pa.field("sha256", pa.string()),
        pa.field("crawl_id", pa.string()),
        pa.field("subset", pa.string()),
    ]
)
"""LAION's columns (URL, TEXT, WIDTH, HEIGHT, similarity, punsafe, pwatermark, LANGUAGE),
then the keys that join the hops and the subset the row is released in."""

DECISION_SCHEMA = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("url_id", pa.string()),
        pa.field("kept", pa.bool_(), nullable=False),
        pa.field("drop_reason", pa.string()),
        pa.field("duplicate_of", pa.string()),
        pa.field("source_partition", pa.string()),
    ]
)

AESTHETIC_SCORES_SCHEMA = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("url_id", pa.string(), nullable=False),
        pa.field("URL", pa.string()),
        pa.field("TEXT", pa.string()),
        pa.field("LANGUAGE", pa.string()),
        pa.field("WIDTH", pa.int32()),
        pa.field("HEIGHT", pa.int32()),
        pa.field("similarity", pa.float32()),
        pa.field("punsafe", pa.float32()),
        pa.field("pwatermark", pa.float32()),
        pa.field("sha256", pa.string()),
        pa.field("aesthetic", pa.float32()),
    ]
)
"""One row per released pair with its aesthetic score (null when no embedding is stored)."""

AESTHETIC_SUBSET_SCHEMA = pa.schema(
    [
        *AESTHETIC_SCORES_SCHEMA,
        pa.field("kept", pa.bool_(), nullable=False),
        pa.field("drop_reason", pa.string()),
        pa.field("aesthetic_band", pa.float32()),
    ]
)
"""Scores plus the subset decision and the highest band the score reaches."""

DOWNLOAD_RESULTS_SCHEMA = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("url_id", pa.string()),
        pa.field("URL", pa.string()),
        pa.field("TEXT", pa.string()),
        pa.field("batch", pa.string()),
        pa.field("shard", pa.string()),
        pa.field("key", pa.string()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error_message", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("original_width", pa.int32()),
        pa.field("original_height", pa.int32()),
        pa.field("sha256", pa.string()),
        pa.field("attempts", pa.int16()),
    ]
)
"""One row per subset pair. ``shard``: tar path relative to the shards root (successes only);
``sha256``: of the original downloaded bytes; ``attempts``: runs that tried the URL."""

TRAINING_MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("checkpoint_step", pa.int32(), nullable=False),
        pa.field("checkpoint_sha256", pa.string(), nullable=False),
        pa.field("times_seen", pa.int32(), nullable=False),
        pa.field("url_id", pa.string()),
        pa.field("URL", pa.string()),
        pa.field("sha256", pa.string()),
        pa.field("crawl", pa.string()),
        pa.field("shard", pa.string()),
        pa.field("key", pa.string()),
        pa.field("download_results_version", pa.int64()),
        pa.field("md5", pa.string()),
        pa.field("pdq", pa.string()),
    ]
)
"""Which pair_ids trained which checkpoint (and how often each was in a batch by then). Each
row stands alone after any rebuild: the image's URL, ``url_id``, sha256, the crawl, shard and
key it was read from, the ``download_results`` version the run trained from (pinned), and the
md5 and PDQ hop 3 computed of the same bytes (for takedown lists that grow later)."""

TRAINING_SOURCE_COLUMNS = TRAINING_MANIFEST_SCHEMA.names[4:]
"""Where a trained pair's image came from: the manifest's columns after ``times_seen``."""

LAKE_RUNS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("asset", pa.string(), nullable=False),
        pa.field("asset_partition", pa.string()),
        pa.field("table", pa.string(), nullable=False),
        pa.field("access", pa.string(), nullable=False),
        pa.field("table_version", pa.int64(), nullable=False),
        pa.field("table_partitions", pa.list_(pa.string())),
        pa.field("recorded_at", pa.timestamp("ms", tz="UTC"), nullable=False),
    ]
)
"""One row per (materialization, table version it read or wrote). ``access`` is ``read`` or
``wrote``; ``table_partitions`` the partitions read or written (null: all)."""

SAMPLES_SCHEMA = pa.schema(
    [
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("steps", pa.int32(), nullable=False),
        pa.field("scheduler", pa.string(), nullable=False),
        pa.field("guidance_scale", pa.float32(), nullable=False),
        pa.field("checkpoint_sha256", pa.string(), nullable=False),
        pa.field("prompt_similarity", pa.float32(), nullable=False),
        pa.field("punsafe", pa.float32(), nullable=False),
        pa.field("safety_flagged", pa.bool_(), nullable=False),
        pa.field("png", pa.binary(), nullable=False),
    ]
)
"""One generated image; ``prompt_similarity``: CLIP similarity of the (unblurred) image to its
prompt; ``punsafe``: the safety filter's score; ``safety_flagged``: punsafe reached the
threshold, so ``png`` holds the image blurred (``pipeline/hops/samples/safety.py``)."""

AUDIT_SCHEMA = pa.schema(
    [
        pa.field("prompt_pair_id", pa.string(), nullable=False),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("nearest_pair_id", pa.string(), nullable=False),
        pa.field("similarity", pa.float32(), nullable=False),
        pa.field("next_similarity", pa.float32()),
        pa.field("margin", pa.float32()),
        pa.field("nearest_is_prompt_pair", pa.bool_(), nullable=False),
        pa.field("flagged", pa.bool_(), nullable=False),
        pa.field("checkpoint_sha256", pa.string(), nullable=False),
        pa.field("descriptor", pa.string(), nullable=False),
    ]
)
"""One row per generated sample: its nearest training image and whether it is flagged."""

STYLE_REFERENCE_SOURCES = ("training", "portfolio", "none")
"""Where the style audit's reference images of an artist came from."""

STYLE_IMITATION_SCHEMA = pa.schema(
    [
        pa.field("checkpoint_sha256", pa.string(), nullable=False),
        pa.field("descriptor", pa.string(), nullable=False),
        pa.field("artist", pa.string(), nullable=False),
        pa.field("sample_count", pa.int32(), nullable=False),
        pa.field("reference_count", pa.int32(), nullable=False),
        pa.field("reference_source", pa.string(), nullable=False),
        pa.field("training_images", pa.int32(), nullable=False),
        pa.field("own_similarity", pa.float32()),
        pa.field("other_similarity", pa.float32()),
        pa.field("margin", pa.float32()),
        pa.field("shuffled_margin", pa.float32()),
        pa.field("imitation", pa.float32()),
        pa.field("imitated", pa.bool_(), nullable=False),
    ]
)
"""One row per artist (pipeline/hops/audit/style_imitation.py): samples prompted with their
name, their references and where those came from, training images naming them, and the
scores (null when the artist is not scored: fewer references than the audit needs)."""

OPT_OUT_REPORT_SCHEMA = pa.schema(
    [
        pa.field("checkpoint_sha256", pa.string(), nullable=False),
        pa.field("run_fingerprint", pa.string(), nullable=False),
        pa.field("checkpoint_step", pa.int32(), nullable=False),
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("URL", pa.string()),
        pa.field("sha256", pa.string()),
        pa.field("match", pa.string(), nullable=False),
        pa.field("times_seen", pa.int32(), nullable=False),
    ]
)
"""One row per (checkpoint, opted-out pair it trained on)."""

NOT_REACHED_MATCHES = ("redirect", "sha256", "near_duplicate")
"""How a URL the opt-out list does not name still serves a withdrawn image: it redirects to a
withdrawn URL, its file has a withdrawn image's sha256, or its copy-detection descriptor lies
within the near-duplicate threshold of one (``pipeline/hops/dataset/opt_out_reach.py``)."""

OPT_OUT_NOT_REACHED_SCHEMA = pa.schema(
    [
        pa.field("opt_out", pa.string(), nullable=False),
        pa.field("url_id", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("sha256", pa.string()),
        pa.field("match", pa.string(), nullable=False),
        pa.field("distance", pa.float32(), nullable=False),
        pa.field("original_url", pa.string(), nullable=False),
        pa.field("original_sha256", pa.string()),
        pa.field("held_in", pa.list_(pa.string()), nullable=False),
        pa.field("checkpoints", pa.list_(pa.string()), nullable=False),
    ]
)
"""One row per (opt-out entry, stored fetch on a URL the list does not withdraw that serves a
copy of a withdrawn image): ``opt_out`` the entry (``domain:<host>``, ``url:<url>``,
``sha256:<hex>``), ``match`` one of :data:`NOT_REACHED_MATCHES` with its copy-descriptor
``distance`` (0 for the exact kinds), the withdrawn ``original_url``; ``held_in`` the tables
that hold the copy now, as ``<table>@<version>`` (the release, the aesthetic subset, the
downloaded shards), ``checkpoints`` the checkpoints (sha256) that trained on it. Empty lists:
a filter dropped the copy before it was released."""

ERASURES_SCHEMA = pa.schema(
    [
        pa.field("erasure_id", pa.string(), nullable=False),
        pa.field("url_id", pa.string(), nullable=False),
        pa.field("pair_id", pa.string()),
        pa.field("url", pa.string()),
        pa.field("sha256", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("erased_at", pa.timestamp("s", tz="UTC"), nullable=False),
        pa.field("what", pa.list_(pa.string())),
    ]
)
"""Tombstones: one row per erased pair (``pair_id`` null for an image no pair names), with
why and when, and ``what`` was removed for it (``image_embeddings``, ``tar:<shard>#<key>``,
``report:<name>``). ``erasure_id`` is the erasure run (also its partition)."""

DATASET_REPORT_SCHEMA = pa.schema(
    [
        pa.field("crawl", pa.string(), nullable=False),
        pa.field("release_version", pa.int64(), nullable=False),
        pa.field("section", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("total", pa.int64(), nullable=False),
        pa.field("share", pa.float64()),
        pa.field("lift", pa.float64()),
    ]
)
"""One figure of a crawl's datasheet (pipeline/datasheet/figures.py): ``count`` of ``total``
rows at ``stage`` (``share``), and for terms and artists the ``lift`` of the filter that led
to the stage; ``release_version``: the ``laion_dataset`` version it describes."""

AI_SHARE_SCHEMA = pa.schema(
    [
        pa.field("crawl", pa.string(), nullable=False),
        pa.field("section", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("signal", pa.string(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("total", pa.int64(), nullable=False),
        pa.field("share", pa.float64()),
        pa.field("without_exclusion", pa.int64()),
        pa.field("without_total", pa.int64()),
    ]
)
"""One figure of a crawl's AI share (pipeline/provenance/ai_share.py): ``count`` of ``total``
at ``stage`` for ``signal`` (``section`` ``share``, ``dropped``, ``recall`` or ``undetected``),
and for shares
the counts had the aesthetic subset not left AI images out (``without_exclusion`` of
``without_total``)."""
AI_SHARE_SECTIONS = ("share", "dropped", "recall", "undetected")

# ---------------------------------------------------------------------------------------------
# Expectations, as data (quality/suites.py turns them into great-expectations suites)
# ---------------------------------------------------------------------------------------------

HEX16 = r"^[0-9a-f]{16}$"
HEX32 = r"^[0-9a-f]{32}$"
HEX64 = r"^[0-9a-f]{64}$"
COPY_DESC = r"^[0-9a-f]{864}$"
"""The copy-detection descriptor: 432 int8 as hex (``pipeline/lineage/copydetect.py``)."""
HTTP_URL = r"^https?://[^\s/?#]+"
ISO_639_1 = r"^[a-z]{2}$"
KEPT = "kept == True"
DROPPED = "kept == False"
DOWNLOADED = 'status == "success"'
NOT_DOWNLOADED = 'status != "success"'


@dataclass(frozen=True)
class Expect:
    """One great-expectations expectation: its class name in ``gx.expectations``, its
    arguments, and the pandas row condition it applies to (all rows when None)."""

    kind: str
    kwargs: Mapping[str, Any]
    when: str | None = None


def not_null(*columns: str, when: str | None = None, **kw: Any) -> list[Expect]:
    return [Expect("ExpectColumnValuesToNotBeNull", {"column": c, **kw}, when) for c in columns]


def is_null(column: str, when: str | None = None) -> Expect:
    return Expect("ExpectColumnValuesToBeNull", {"column": column}, when)


def matches(column: str, regex: str, when: str | None = None) -> Expect:
    return Expect("ExpectColumnValuesToMatchRegex", {"column": column, "regex": regex}, when)


def between(
    column: str, low: float | None = None, high: float | None = None, when: str | None = None
) -> Expect:
    bounds = {k: v for k, v in (("min_value", low), ("max_value", high)) if v is not None}
    return Expect("ExpectColumnValuesToBeBetween", {"column": column, **bounds}, when)


def in_set(column: str, values: tuple[str, ...]) -> Expect:
    return Expect("ExpectColumnValuesToBeInSet", {"column": column, "value_set": list(values)})


def unique(column: str, when: str | None = None) -> Expect:
    return Expect("ExpectColumnValuesToBeUnique", {"column": column}, when)


def unique_together(*columns: str) -> Expect:
    return Expect("ExpectCompoundColumnsToBeUnique", {"column_list": list(columns)})


def one_of(column: str, values: tuple[str, ...], patterns: tuple[str, ...] = ()) -> Expect:
    """Values in ``values``, or (open-ended vocabularies) matching one of ``patterns``."""
    if not patterns:
        return in_set(column, values)
    choices = "|".join([*(re.escape(v) for v in values), *patterns])
    return matches(column, f"^(?:{choices})$")


def decided(reasons: tuple[str, ...], patterns: tuple[str, ...] = ()) -> list[Expect]:
    """A kept/drop_reason table: every dropped row has a known reason (one of ``reasons`` or
    matching one of ``patterns``), no kept row has one."""
    return [
        *not_null("kept"),
        *not_null("drop_reason", when=DROPPED),
        is_null("drop_reason", when=KEPT),
        one_of("drop_reason", reasons, patterns),
    ]


def _released_expectations() -> list[Expect]:
    """Ranges and formats shared by the released tables (LAION's column names)."""
    return [
        *not_null("pair_id", "url_id", "URL", "TEXT", "similarity", "punsafe"),
        *not_null("pwatermark", "WIDTH", "HEIGHT"),
        unique("pair_id"),
        matches("pair_id", HEX16),
        matches("url_id", HEX16),
        matches("URL", HTTP_URL),
        matches("LANGUAGE", ISO_639_1),
        between("similarity", -1.0, 1.0),
        between("punsafe", 0.0, 1.0),
        between("pwatermark", 0.0, 1.0),
        between("WIDTH", 1),
        between("HEIGHT", 1),
    ]


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------

Lineage = Mapping[str, tuple[tuple[str, str], ...]]
"""Column -> the (upstream table, upstream column) pairs it derives from."""


def same(upstream: str, *columns: str) -> dict[str, tuple[tuple[str, str], ...]]:
    """Columns carried over unchanged from ``upstream``."""
    return {c: ((upstream, c),) for c in columns}


@dataclass(frozen=True)
class TableSpec:
    """Everything the project knows about one table."""

    name: str
    description: str
    schema: pa.Schema | None
    """None where the schema depends on configuration (embedding width) or for file assets."""
    partitioning: str
    """``wat_slices``, ``crawls``, ``runs`` (training run or checkpoint), ``erasures`` (one
    per erasure run), ``log`` (appended to, never rewritten: ``lake_runs``), or ``none``."""
    keys: tuple[str, ...] = ()
    drop_reasons: tuple[str, ...] = ()
    drop_reason_patterns: tuple[str, ...] = ()
    """Open-ended drop reasons, as regular expressions (``hash_list:<name>``)."""
    lineage: Lineage = field(default_factory=dict)
    traced: tuple[str, ...] = ()
    """Columns the lineage index copies (empty: the table is not traced)."""
    partition_column: str | None = None
    """The column the lineage index names the partition key (tables whose rows lack it)."""
    trace_order: str | None = None
    """The index's sort order for this table's rows."""
    expectations: tuple[Expect, ...] = ()
    files: bool = False
    """A file asset (tars, checkpoints) rather than a table."""

    @property
    def has_suite(self) -> bool:
        return bool(self.expectations) or self.schema is not None


_RELEASED = (
    "pair_id",
    "url_id",
    "URL",
    "TEXT",
    "LANGUAGE",
    "WIDTH",
    "HEIGHT",
    "similarity",
    "punsafe",
    "pwatermark",
    "sha256",
)
"""The released dataset's columns that aesthetic_scores and aesthetic_subset carry unchanged."""

_SPECS = (
    TableSpec(
        T.CRAWL_MANIFEST,
        "The crawls' WAT files, sliced into partitions (one row per WAT file).",
        CRAWL_MANIFEST_SCHEMA,
        "none",
        keys=("wat_uri",),
        expectations=(
            *not_null(*CRAWL_MANIFEST_SCHEMA.names),
            unique("wat_uri"),
            matches("partition_key", r"^.+_\d{5}$"),
            matches("wat_path", r"\.warc\.wat\.gz$"),
        ),
    ),
    TableSpec(
        T.WAT_IMAGE_LINKS,
        "Hop 1: every IMG@/src link of a slice's WAT files, with its WAT and WARC addresses.",
        IMAGE_LINK_SCHEMA,
        "wat_slices",
        keys=("wat_path", "wat_record_offset", "link_index"),
        traced=(
            "pair_id",
            "crawl_id",
            "wat_path",
            "wat_record_offset",
            "wat_record_id",
            "warc_record_id",
            "page_url",
            "page_date",
            "warc_filename",
            "warc_offset",
            "url_raw",
            "url",
            "alt",
            "link_index",
        ),
        trace_order="crawl_id, wat_path, wat_record_offset, link_index",
        expectations=(
            *not_null(
                "pair_id",
                "crawl_id",
                "wat_path",
                "wat_record_offset",
                "page_url",
                "warc_filename",
                "warc_offset",
                "link_index",
                "url_raw",
                "url",
            ),
            matches("pair_id", HEX16),
            matches("page_url", HTTP_URL),
            between("wat_record_offset", 0),
            between("warc_offset", 0),
            between("link_index", 0),
            unique_together("wat_path", "wat_record_offset", "link_index"),
        ),
    ),
    TableSpec(
        T.ALT_TEXT_PAIRS,
        "Hop 2: every hop-1 row kept (cleaned, language-tagged) or dropped with a reason.",
        ALT_TEXT_SCHEMA,
        "wat_slices",
        keys=("pair_id",),
        drop_reasons=ALT_TEXT_DROP_REASONS,
        lineage={
            **same(
                T.WAT_IMAGE_LINKS,
                "pair_id",
                "url",
                "alt",
                "crawl_id",
                "page_url",
                "wat_path",
                "wat_record_offset",
                "link_index",
            ),
            "url_id": ((T.WAT_IMAGE_LINKS, "url"),),
            "text": ((T.WAT_IMAGE_LINKS, "alt"),),
            "language": ((T.WAT_IMAGE_LINKS, "alt"),),
            "dedup_key": ((T.WAT_IMAGE_LINKS, "url"), (T.WAT_IMAGE_LINKS, "alt")),
            "drop_reason": (
                (T.WAT_IMAGE_LINKS, "url"),
                (T.WAT_IMAGE_LINKS, "alt"),
                (T.WAT_IMAGE_LINKS, "page_robots"),
            ),
        },
        traced=(
            "pair_id",
            "url_id",
            "page_url",
            "alt",
            "text",
            "language",
            "language_score",
            "kept",
            "drop_reason",
            "crawl_id",
            "wat_path",
            "wat_record_offset",
            "link_index",
            "url",
        ),
        trace_order="crawl_id, wat_path, wat_record_offset, link_index",
        expectations=(
            *not_null("pair_id", "crawl_id", "page_url", "wat_path"),
            *not_null("url_id", "url", "text", "dedup_key", "language_detector", when=KEPT),
            *decided(ALT_TEXT_DROP_REASONS),
            matches("pair_id", HEX16),
            matches("url", HTTP_URL, when=KEPT),
            Expect("ExpectColumnValueLengthsToBeBetween", {"column": "text", "min_value": 1}, KEPT),
            matches("language", ISO_639_1),
            between("language_score", 0.0, 1.0),
            unique("dedup_key", when=KEPT),
        ),
    ),
    TableSpec(
        T.CLIP_SCORES,
        "Hop 3: CLIP similarity, size, hash and safety scores per kept pair, or why not.",
        CLIP_SCORES_SCHEMA,
        "wat_slices",
        keys=("pair_id",),
        drop_reasons=CLIP_DROP_REASONS,
        drop_reason_patterns=(HASH_LIST_REASON,),
        lineage={
            **same(T.ALT_TEXT_PAIRS, "pair_id", "url_id", "url", "text", "language", "crawl_id"),
            "similarity": ((T.ALT_TEXT_PAIRS, "text"), (T.IMAGE_EMBEDDINGS, "embedding")),
            "punsafe": ((T.IMAGE_EMBEDDINGS, "embedding"),),
            "pwatermark": ((T.IMAGE_EMBEDDINGS, "embedding"),),
            **same(T.IMAGE_EMBEDDINGS, "sha256", "md5", "pdq", "copy_desc"),
            **same(T.IMAGE_EMBEDDINGS, "width", "height", "n_bytes"),
        },
        traced=(
            "pair_id",
            "url_id",
            "url",
            "crawl_id",
            "model_id",
            "fetch_status",
            "http_status",
            "final_url",
            "fetch_attempts",
            "from_cache",
            "width",
            "height",
            "n_bytes",
            "sha256",
            "md5",
            "pdq",
            "similarity",
            "threshold",
            "punsafe",
            "pwatermark",
            "kept",
            "drop_reason",
            "error",
        ),
        trace_order="crawl_id, pair_id",
        expectations=(
            *not_null("pair_id", "url_id", "url", "model_id", "fetch_status"),
            *not_null("similarity", "punsafe", "pwatermark", "width", "height", when=KEPT),
            *not_null("sha256", "n_bytes", when=KEPT),
            *decided(CLIP_DROP_REASONS, (HASH_LIST_REASON,)),
            one_of("fetch_status", FETCH_OUTCOMES, (HASH_LIST_REASON,)),
            unique("pair_id"),
            matches("pair_id", HEX16),
            matches("url_id", HEX16),
            matches("url", HTTP_URL),
            matches("sha256", HEX64),
            matches("md5", HEX32),
            matches("pdq", HEX64),
            matches("copy_desc", COPY_DESC),
            between("similarity", -1.0, 1.0),
            between("punsafe", 0.0, 1.0),
            between("pwatermark", 0.0, 1.0),
            between("width", 1),
            between("height", 1),
            between("threshold", -1.0, 1.0),
            Expect(
                "ExpectColumnPairValuesAToBeGreaterThanB",
                {"column_A": "similarity", "column_B": "threshold", "or_equal": True},
                KEPT,
            ),
            matches("language", ISO_639_1),
            in_set("c2pa_state", C2PA_STATES),
            in_set("training_mining", TRAINING_USES),
        ),
    ),
    TableSpec(
        T.IMAGE_EMBEDDINGS,
        "Hop 3: one CLIP image embedding per (URL, model); image bytes are not kept.",
        None,
        "wat_slices",
        keys=("url_id", "model_id"),
        lineage={
            "url_id": ((T.ALT_TEXT_PAIRS, "url_id"),),
            "url": ((T.ALT_TEXT_PAIRS, "url"),),
        },
        expectations=(
            *not_null("url_id", "url", "model_id", "sha256", "width", "height", "embedding"),
            unique_together("url_id", "model_id"),
            matches("url_id", HEX16),
            matches("sha256", HEX64),
            matches("md5", HEX32),
            matches("pdq", HEX64),
            matches("copy_desc", COPY_DESC),
            between("width", 1),
            between("height", 1),
        ),
    ),
    TableSpec(
        T.OPT_OUTS,
        "Owners' withdrawals: URLs, domains (with subdomains) and image sha256s.",
        OPT_OUT_SCHEMA,
        "none",
        keys=("kind", "value"),
    ),
    TableSpec(
        T.HASH_LISTS,
        "Takedown hash lists: per named list, file digests (md5, sha256) or PDQ hashes.",
        HASH_LIST_SCHEMA,
        "none",
        keys=("name", "kind", "value"),
        expectations=(
            *not_null("name", "kind", "value", "added_at"),
            in_set("kind", HASH_KINDS),
            matches("name", f"^{HASH_LIST_NAME}$"),
            matches("value", HEX32, when='kind == "md5"'),
            matches("value", HEX64, when='kind != "md5"'),
            unique_together("name", "kind", "value"),
        ),
    ),
    TableSpec(
        T.LAION_DATASET,
        "The released index in LAION's columns, deduplicated on (URL, TEXT) over the crawl.",
        RELEASE_SCHEMA,
        "crawls",
        keys=("URL", "TEXT"),
        drop_reasons=RELEASE_DROP_REASONS,
        drop_reason_patterns=(HASH_LIST_REASON,),
        lineage={
            "URL": ((T.CLIP_SCORES, "url"),),
            "TEXT": ((T.CLIP_SCORES, "text"),),
            "WIDTH": ((T.CLIP_SCORES, "width"),),
            "HEIGHT": ((T.CLIP_SCORES, "height"),),
            "LANGUAGE": ((T.CLIP_SCORES, "language"),),
            **same(
                T.CLIP_SCORES,
                "similarity",
                "punsafe",
                "pwatermark",
                "pair_id",
                "url_id",
                "sha256",
                "crawl_id",
            ),
            "subset": ((T.CLIP_SCORES, "language"),),
        },
        expectations=(
            *_released_expectations(),
            unique_together("URL", "TEXT"),
            *not_null("subset"),
        ),
    ),
    TableSpec(
        T.LAION_DATASET_DECISIONS,
        "Every kept clip_scores pair of a crawl: released, or dropped as a duplicate/opt-out.",
        DECISION_SCHEMA,
        "crawls",
        keys=("pair_id",),
        drop_reasons=RELEASE_DROP_REASONS,
        drop_reason_patterns=(HASH_LIST_REASON,),
        traced=("pair_id", "kept", "drop_reason", "duplicate_of", "source_partition"),
        partition_column="crawl",
        trace_order="crawl, pair_id",
    ),
    TableSpec(
        T.LAION_SUBSETS,
        "The release split by language as LAION published it (laion2B-en, -multi, 1B-nolang).",
        RELEASE_SCHEMA,
        "crawls",
        keys=("pair_id",),
    ),
    TableSpec(
        T.AESTHETIC_SCORES,
        "LAION-Aesthetics: an aesthetic score per released pair, from its stored embedding.",
        AESTHETIC_SCORES_SCHEMA,
        "crawls",
        keys=("pair_id",),
        lineage={
            **same(T.LAION_DATASET, *_RELEASED),
            "aesthetic": ((T.IMAGE_EMBEDDINGS, "embedding"),),
        },
        expectations=(
            *_released_expectations(),
            between("aesthetic", -5.0, 15.0),
            *not_null("aesthetic", mostly=0.99),
        ),
    ),
    TableSpec(
        T.AESTHETIC_SUBSET,
        "The aesthetic subset: every scored pair kept (with its band) or dropped by reason.",
        AESTHETIC_SUBSET_SCHEMA,
        "crawls",
        keys=("pair_id",),
        drop_reasons=AESTHETIC_DROP_REASONS,
        lineage={
            **same(T.AESTHETIC_SCORES, *_RELEASED, "aesthetic"),
            "aesthetic_band": ((T.AESTHETIC_SCORES, "aesthetic"),),
            "drop_reason": tuple(
                (T.AESTHETIC_SCORES, c) for c in ("aesthetic", "punsafe", "pwatermark")
            ),
        },
        traced=("pair_id", "URL", "aesthetic", "aesthetic_band", "kept", "drop_reason"),
        partition_column="crawl",
        trace_order="crawl, pair_id",
        expectations=(
            *_released_expectations(),
            *not_null("aesthetic", "aesthetic_band", when=KEPT),
            *decided(AESTHETIC_DROP_REASONS),
        ),
    ),
    TableSpec(
        T.IMAGE_SHARDS,
        "img2dataset's WebDataset tars of the aesthetic subset (pair_id carried per sample).",
        None,
        "crawls",
        files=True,
    ),
    TableSpec(
        T.DOWNLOAD_RESULTS,
        "One row per subset pair: img2dataset's status, shard and key, sizes and attempts.",
        DOWNLOAD_RESULTS_SCHEMA,
        "crawls",
        keys=("pair_id",),
        drop_reasons=DOWNLOAD_STATUSES[1:],
        lineage=same(T.AESTHETIC_SUBSET, "pair_id", "url_id", "URL", "TEXT"),
        traced=(
            "pair_id",
            "url_id",
            "URL",
            "batch",
            "shard",
            "key",
            "status",
            "error_message",
            "width",
            "height",
            "sha256",
            "attempts",
        ),
        partition_column="crawl",
        trace_order="crawl, pair_id",
        expectations=(
            unique("pair_id"),
            in_set("status", DOWNLOAD_STATUSES),
            *not_null("shard", "key", when=DOWNLOADED),
            matches("sha256", HEX64, when=DOWNLOADED),
            between("width", 1, when=DOWNLOADED),
            is_null("shard", when=NOT_DOWNLOADED),
            matches("sha256", HEX64, when='status == "content_changed"'),
            *not_null(
                "error_message",
                when='status in ["content_changed", "private_host", "decompression_bomb"]',
            ),
            between("attempts", 0, 1000),
        ),
    ),
    TableSpec(
        T.DIFFUSION_MODEL,
        "Diffusion training runs: config, checkpoints (safetensors, sha256), loss curve.",
        None,
        "none",
        files=True,
    ),
    TableSpec(
        T.TRAINING_MANIFEST,
        "Which pair_ids trained which checkpoint, and how often (partition: training run).",
        TRAINING_MANIFEST_SCHEMA,
        "runs",
        keys=("pair_id", "checkpoint_sha256"),
        traced=(
            "pair_id",
            "checkpoint_step",
            "checkpoint_sha256",
            "times_seen",
            *TRAINING_SOURCE_COLUMNS,
        ),
        partition_column="run_fingerprint",
        trace_order="pair_id, run_fingerprint, checkpoint_step",
        expectations=(
            *not_null(*TRAINING_MANIFEST_SCHEMA.names[:-2]),
            matches("checkpoint_sha256", HEX64),
            between("times_seen", 1),
            between("checkpoint_step", 1),
            unique_together("pair_id", "checkpoint_sha256"),
        ),
    ),
    TableSpec(
        T.SAMPLES,
        "Seeded samples of a checkpoint (PNG bytes) with how well each follows its prompt.",
        SAMPLES_SCHEMA,
        "runs",
        keys=("prompt", "seed", "checkpoint_sha256"),
    ),
    TableSpec(
        T.REPLICATION_AUDIT,
        "Per sample: its nearest training image under a copy descriptor, and whether flagged.",
        AUDIT_SCHEMA,
        "runs",
        keys=("checkpoint_sha256", "descriptor", "seed", "prompt_pair_id"),
        traced=(
            "prompt_pair_id",
            "prompt",
            "seed",
            "nearest_pair_id",
            "similarity",
            "margin",
            "nearest_is_prompt_pair",
            "flagged",
            "checkpoint_sha256",
            "descriptor",
        ),
        trace_order="checkpoint_sha256, descriptor, seed, prompt_pair_id",
        expectations=(
            *not_null("prompt_pair_id", "nearest_pair_id", "similarity", "flagged"),
            between("similarity", -1.0001, 1.0001),
            in_set("descriptor", AUDIT_DESCRIPTORS),
        ),
    ),
    TableSpec(
        T.OPT_OUT_REPORT,
        "Every (checkpoint, withdrawn pair it trained on): weights cannot forget.",
        OPT_OUT_REPORT_SCHEMA,
        "none",
        keys=("checkpoint_sha256", "pair_id"),
    ),
    TableSpec(
        T.OPT_OUT_NOT_REACHED,
        "Copies of withdrawn images that the opt-out list does not reach: redirects, "
        "same-file and near-duplicate copies on other URLs, and where each is still held.",
        OPT_OUT_NOT_REACHED_SCHEMA,
        "none",
        keys=("opt_out", "url_id"),
        expectations=(
            *not_null("opt_out", "url_id", "url", "domain", "match", "original_url"),
            matches("url_id", HEX16),
            matches("url", HTTP_URL),
            matches("sha256", HEX64),
            in_set("match", NOT_REACHED_MATCHES),
            between("distance", 0.0, 2.0),
            unique_together("opt_out", "url_id"),
        ),
    ),
    TableSpec(
        T.LAKE_RUNS,
        "The lake's table of runs: every table version each materialization read or wrote.",
        LAKE_RUNS_SCHEMA,
        "log",
        keys=("run_id", "asset", "table", "access", "table_version"),
        expectations=(
            *not_null("run_id", "asset", "table", "access", "table_version", "recorded_at"),
            in_set("access", ("read", "wrote")),
            between("table_version", 0),
        ),
    ),
    TableSpec(
        T.ERASURES,
        "Tombstones of erased pairs: url_id, reason, date and what was removed (bytes gone).",
        ERASURES_SCHEMA,
        "erasures",
        keys=("erasure_id", "url_id", "pair_id"),
        expectations=(
            *not_null("erasure_id", "url_id", "reason", "erased_at"),
            matches("url_id", HEX16),
            matches("pair_id", HEX16),
            matches("sha256", HEX64),
            unique_together("erasure_id", "url_id", "pair_id"),
        ),
    ),
)

_SPECS += (
    TableSpec(
        T.DATASET_REPORT,
        "A datasheet per crawl and release version: funnel, domains, languages, terms, lifts.",
        DATASET_REPORT_SCHEMA,
        "crawls",
        keys=("section", "name", "stage"),
        expectations=(
            *not_null("crawl", "release_version", "section", "name", "stage", "count", "total"),
            unique_together("section", "name", "stage"),
            between("count", 0),
            between("share", 0.0, 1.0),
            between("lift", 0.0),
        ),
    ),
)

_SPECS += (
    TableSpec(
        T.AI_SHARE,
        "Per crawl: the AI-generated share by signal at each hop, with and without the "
        "aesthetic subset's exclusion, and recall against the synthetic truth.",
        AI_SHARE_SCHEMA,
        "crawls",
        keys=("section", "stage", "signal"),
        expectations=(
            *not_null("crawl", "section", "stage", "signal", "count", "total"),
            unique_together("section", "stage", "signal"),
            in_set("section", AI_SHARE_SECTIONS),
            between("count", 0),
            between("share", 0.0, 1.0),
        ),
    ),
)

_SPECS += (
    TableSpec(
        T.STYLE_IMITATION,
        "Per artist: do samples prompted with their name draw in their style (margin over a "
        "shuffled name)?",
        STYLE_IMITATION_SCHEMA,
        "runs",
        keys=("checkpoint_sha256", "descriptor", "artist"),
        expectations=(
            *not_null("checkpoint_sha256", "artist", "sample_count", "reference_count", "imitated"),
            matches("checkpoint_sha256", HEX64),
            unique_together("checkpoint_sha256", "descriptor", "artist"),
            in_set("reference_source", STYLE_REFERENCE_SOURCES),
            between("sample_count", 0),
            between("reference_count", 0),
            between("training_images", 0),
            between("margin", -2.0, 2.0),
            between("imitation", -4.0, 4.0),
        ),
    ),
)

TABLES: dict[str, TableSpec] = {spec.name: spec for spec in _SPECS}
"""The registry, in the order of the hops."""

TRACED_TABLES: dict[str, TableSpec] = {n: s for n, s in TABLES.items() if s.traced}
"""The tables the lineage index copies, in the order a journey follows them."""


def spec(name: str) -> TableSpec:
    """The registry entry of ``name``."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"no table {name!r} in the registry (pipeline/lake/tables.py)") from None
