"""Expectation suites, one per lake table: schema, nulls, formats, ranges, allowed values."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipeline.aesthetic import DROP_REASONS as AESTHETIC_DROP_REASONS
from pipeline.aesthetic import SCORES_SCHEMA, SUBSET_SCHEMA
from pipeline.alt_text import ALT_TEXT_SCHEMA, DROP_REASONS
from pipeline.clip_filter import CLIP_SCORES_SCHEMA
from pipeline.clip_filter import DROP_REASONS as CLIP_DROP_REASONS
from pipeline.crawls import MANIFEST_SCHEMA
from pipeline.dataset import RELEASE_SCHEMA
from pipeline.fetch import FETCH_STATUSES
from pipeline.images import DECODE_STATUSES
from pipeline.wat import IMAGE_LINK_SCHEMA
from quality.gx_runner import new_suite

HEX16 = r"^[0-9a-f]{16}$"
HTTP_URL = r"^https?://[^\s/?#]+"
ISO_639_1 = r"^[a-z]{2}$"


def _schema(gxe: Any, schema: pa.Schema) -> list:
    return [gxe.ExpectTableColumnsToMatchOrderedList(column_list=list(schema.names))]


def _not_null(gxe: Any, *columns: str, **kw: Any) -> list:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c, **kw) for c in columns]


def crawl_manifest_suite() -> Any:
    import great_expectations as gx

    gxe = gx.expectations
    suite = new_suite("crawl_manifest")
    for expectation in [
        *_schema(gxe, MANIFEST_SCHEMA),
        *_not_null(gxe, *MANIFEST_SCHEMA.names),
        gxe.ExpectColumnValuesToBeUnique(column="wat_uri"),
        gxe.ExpectColumnValuesToMatchRegex(column="partition_key", regex=r"^.+_\d{5}$"),
        gxe.ExpectColumnValuesToMatchRegex(column="wat_path", regex=r"\.warc\.wat\.gz$"),
    ]:
        suite.add_expectation(expectation)
    return suite


def wat_image_links_suite() -> Any:
    import great_expectations as gx

    gxe = gx.expectations
    suite = new_suite("wat_image_links")
    for expectation in [
        *_schema(gxe, IMAGE_LINK_SCHEMA),
        *_not_null(
            gxe,
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
        gxe.ExpectColumnValuesToMatchRegex(column="pair_id", regex=HEX16),
        gxe.ExpectColumnValuesToMatchRegex(column="page_url", regex=HTTP_URL),
        gxe.ExpectColumnValuesToBeBetween(column="wat_record_offset", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="warc_offset", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="link_index", min_value=0),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["wat_path", "wat_record_offset", "link_index"]
        ),
    ]:
        suite.add_expectation(expectation)
    return suite


def alt_text_pairs_suite() -> Any:
    import great_expectations as gx

    gxe = gx.expectations
    kept = {"row_condition": "kept == True", "condition_parser": "pandas"}
    dropped = {"row_condition": "kept == False", "condition_parser": "pandas"}
    suite = new_suite("alt_text_pairs")
    for expectation in [
        *_schema(gxe, ALT_TEXT_SCHEMA),
        *_not_null(gxe, "pair_id", "kept", "crawl_id", "page_url", "wat_path"),
        *_not_null(gxe, "url_id", "url", "text", "dedup_key", "language_detector", **kept),
        gxe.ExpectColumnValuesToNotBeNull(column="drop_reason", **dropped),
        gxe.ExpectColumnValuesToBeNull(column="drop_reason", **kept),
        gxe.ExpectColumnValuesToBeInSet(column="drop_reason", value_set=list(DROP_REASONS)),
        gxe.ExpectColumnValuesToMatchRegex(column="pair_id", regex=HEX16),
        gxe.ExpectColumnValuesToMatchRegex(column="url", regex=HTTP_URL, **kept),
        gxe.ExpectColumnValueLengthsToBeBetween(column="text", min_value=1, **kept),
        gxe.ExpectColumnValuesToMatchRegex(column="language", regex=ISO_639_1),
        gxe.ExpectColumnValuesToBeBetween(column="language_score", min_value=0.0, max_value=1.0),
        gxe.ExpectColumnValuesToBeUnique(column="dedup_key", **kept),
    ]:
        suite.add_expectation(expectation)
    return suite


def clip_scores_suite() -> Any:
    import great_expectations as gx

    gxe = gx.expectations
    kept = {"row_condition": "kept == True", "condition_parser": "pandas"}
    dropped = {"row_condition": "kept == False", "condition_parser": "pandas"}
    suite = new_suite("clip_scores")
    for expectation in [
        *_schema(gxe, CLIP_SCORES_SCHEMA),
        *_not_null(gxe, "pair_id", "url_id", "url", "model_id", "fetch_status", "kept"),
        *_not_null(gxe, "similarity", "punsafe", "pwatermark", "width", "height", **kept),
        *_not_null(gxe, "sha256", "n_bytes", **kept),
        gxe.ExpectColumnValuesToNotBeNull(column="drop_reason", **dropped),
        gxe.ExpectColumnValuesToBeNull(column="drop_reason", **kept),
        gxe.ExpectColumnValuesToBeInSet(column="drop_reason", value_set=list(CLIP_DROP_REASONS)),
        gxe.ExpectColumnValuesToBeInSet(
            column="fetch_status", value_set=[*FETCH_STATUSES, *DECODE_STATUSES]
        ),
        gxe.ExpectColumnValuesToBeUnique(column="pair_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="pair_id", regex=HEX16),
        gxe.ExpectColumnValuesToMatchRegex(column="url_id", regex=HEX16),
        gxe.ExpectColumnValuesToMatchRegex(column="url", regex=HTTP_URL),
        gxe.ExpectColumnValuesToMatchRegex(column="sha256", regex=r"^[0-9a-f]{64}$"),
        gxe.ExpectColumnValuesToBeBetween(column="similarity", min_value=-1.0, max_value=1.0),
        gxe.ExpectColumnValuesToBeBetween(column="punsafe", min_value=0.0, max_value=1.0),
        gxe.ExpectColumnValuesToBeBetween(column="pwatermark", min_value=0.0, max_value=1.0),
        gxe.ExpectColumnValuesToBeBetween(column="width", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="height", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="threshold", min_value=-1.0, max_value=1.0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="similarity", column_B="threshold", or_equal=True, **kept
        ),
        gxe.ExpectColumnValuesToMatchRegex(column="language", regex=ISO_639_1),
    ]:
        suite.add_expectation(expectation)
    return suite


def image_embeddings_suite() -> Any:
    import great_expectations as gx

    gxe = gx.expectations
    suite = new_suite("image_embeddings")
    for expectation in [
        *_not_null(gxe, "url_id", "url", "model_id", "sha256", "width", "height", "embedding"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["url_id", "model_id"]),
        gxe.ExpectColumnValuesToMatchRegex(column="url_id", regex=HEX16),
        gxe.ExpectColumnValuesToMatchRegex(column="sha256", regex=r"^[0-9a-f]{64}$"),
        gxe.ExpectColumnValuesToBeBetween(column="width", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="height", min_value=1),
    ]:
        suite.add_expectation(expectation)
    return suite


def _scores_expectations(gxe: Any) -> list:
    """Ranges and formats shared by the released tables (LAION's column names)."""
    return [
        *_not_null(gxe, "pair_id", "url_id", "URL", "TEXT", "similarity", "punsafe"),
        *_not_null(gxe, "pwatermark", "WIDTH", "HEIGHT"),
        gxe.ExpectColumnValuesToBeUnique(column="pair_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="pair_id", regex=HEX16),
        gxe.ExpectColumnValuesToMatchRegex(column="url_id", regex=HEX16),
        gxe.ExpectColumnValuesToMatchRegex(column="URL", regex=HTTP_URL),
        gxe.ExpectColumnValuesToMatchRegex(column="LANGUAGE", regex=ISO_639_1),
        gxe.ExpectColumnValuesToBeBetween(column="similarity", min_value=-1.0, max_value=1.0),
        gxe.ExpectColumnValuesToBeBetween(column="punsafe", min_value=0.0, max_value=1.0),
        gxe.ExpectColumnValuesToBeBetween(column="pwatermark", min_value=0.0, max_value=1.0),
        gxe.ExpectColumnValuesToBeBetween(column="WIDTH", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="HEIGHT", min_value=1),
    ]


def laion_dataset_suite() -> Any:
    import great_expectations as gx

    gxe = gx.expectations
    suite = new_suite("laion_dataset")
    for expectation in [
        *_schema(gxe, RELEASE_SCHEMA),
        *_scores_expectations(gxe),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["URL", "TEXT"]),
        gxe.ExpectColumnValuesToNotBeNull(column="subset"),
    ]:
        suite.add_expectation(expectation)
    return suite


def aesthetic_scores_suite() -> Any:
    import great_expectations as gx

    gxe = gx.expectations
    suite = new_suite("aesthetic_scores")
    for expectation in [
        *_schema(gxe, SCORES_SCHEMA),
        *_scores_expectations(gxe),
        gxe.ExpectColumnValuesToBeBetween(column="aesthetic", min_value=-5.0, max_value=15.0),
        gxe.ExpectColumnValuesToNotBeNull(column="aesthetic", mostly=0.99),
    ]:
        suite.add_expectation(expectation)
    return suite


def aesthetic_subset_suite() -> Any:
    import great_expectations as gx

    gxe = gx.expectations
    kept = {"row_condition": "kept == True", "condition_parser": "pandas"}
    dropped = {"row_condition": "kept == False", "condition_parser": "pandas"}
    suite = new_suite("aesthetic_subset")
    for expectation in [
        *_schema(gxe, SUBSET_SCHEMA),
        *_scores_expectations(gxe),
        gxe.ExpectColumnValuesToNotBeNull(column="aesthetic", **kept),
        gxe.ExpectColumnValuesToNotBeNull(column="aesthetic_band", **kept),
        gxe.ExpectColumnValuesToNotBeNull(column="drop_reason", **dropped),
        gxe.ExpectColumnValuesToBeNull(column="drop_reason", **kept),
        gxe.ExpectColumnValuesToBeInSet(
            column="drop_reason", value_set=list(AESTHETIC_DROP_REASONS)
        ),
    ]:
        suite.add_expectation(expectation)
    return suite


def download_results_suite() -> Any:
    import great_expectations as gx

    from pipeline.shards import DOWNLOAD_RESULTS_SCHEMA, STATUSES

    gxe = gx.expectations
    ok = {"row_condition": 'status == "success"', "condition_parser": "pandas"}
    failed = {"row_condition": 'status != "success"', "condition_parser": "pandas"}
    suite = new_suite("download_results")
    for expectation in [
        *_schema(gxe, DOWNLOAD_RESULTS_SCHEMA),
        gxe.ExpectColumnValuesToBeUnique(column="pair_id"),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES)),
        gxe.ExpectColumnValuesToNotBeNull(column="shard", **ok),
        gxe.ExpectColumnValuesToNotBeNull(column="key", **ok),
        gxe.ExpectColumnValuesToMatchRegex(column="sha256", regex="^[0-9a-f]{64}$", **ok),
        gxe.ExpectColumnValuesToBeBetween(column="width", min_value=1, **ok),
        gxe.ExpectColumnValuesToBeNull(column="shard", **failed),
        gxe.ExpectColumnValuesToBeBetween(column="attempts", min_value=0, max_value=1000),
    ]:
        suite.add_expectation(expectation)
    return suite


def training_manifest_suite() -> Any:
    import great_expectations as gx

    from pipeline.diffusion.train import MANIFEST_SCHEMA

    gxe = gx.expectations
    suite = new_suite("training_manifest")
    for expectation in [
        *_schema(gxe, MANIFEST_SCHEMA),
        *_not_null(gxe, *MANIFEST_SCHEMA.names),
        gxe.ExpectColumnValuesToMatchRegex(column="checkpoint_sha256", regex="^[0-9a-f]{64}$"),
        gxe.ExpectColumnValuesToBeBetween(column="times_seen", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="checkpoint_step", min_value=1),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["pair_id", "checkpoint_sha256"]),
    ]:
        suite.add_expectation(expectation)
    return suite


def replication_audit_suite() -> Any:
    import great_expectations as gx

    from pipeline.audit import AUDIT_SCHEMA, DESCRIPTORS

    gxe = gx.expectations
    suite = new_suite("replication_audit")
    for expectation in [
        *_schema(gxe, AUDIT_SCHEMA),
        *_not_null(gxe, "prompt_pair_id", "nearest_pair_id", "similarity", "flagged"),
        gxe.ExpectColumnValuesToBeBetween(column="similarity", min_value=-1.0001, max_value=1.0001),
        gxe.ExpectColumnValuesToBeInSet(column="descriptor", value_set=list(DESCRIPTORS)),
    ]:
        suite.add_expectation(expectation)
    return suite


SUITES = {
    "crawl_manifest": crawl_manifest_suite,
    "wat_image_links": wat_image_links_suite,
    "alt_text_pairs": alt_text_pairs_suite,
    "clip_scores": clip_scores_suite,
    "image_embeddings": image_embeddings_suite,
    "laion_dataset": laion_dataset_suite,
    "aesthetic_scores": aesthetic_scores_suite,
    "aesthetic_subset": aesthetic_subset_suite,
    "download_results": download_results_suite,
    "training_manifest": training_manifest_suite,
    "replication_audit": replication_audit_suite,
}
"""Suite factory per lake table."""
