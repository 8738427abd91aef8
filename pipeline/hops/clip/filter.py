"""Hop 3: fetch each kept pair's image, embed image and text with CLIP, keep similar pairs.

Every input pair is kept or dropped with a reason: ``opted_out:url|domain`` (no request is
made; the list may have grown since hop 2), ``download_failed:<cause>``, ``header_noai``,
``opted_out:sha256`` or ``hash_list:<name>`` (a takedown list matches the fetched image),
``credentials_no_training`` (the image's C2PA credentials say ``notAllowed`` for AI
training), ``too_small``, ``decode_failed:<cause>`` or ``below_threshold``. Provenance
(:mod:`pipeline.provenance`) is read from the fetched bytes before any size rule or decode.
Every fetched image is hashed (md5, sha256, PDQ) and the hashes are recorded; a withdrawn
image is dropped before it is preprocessed, so neither its embedding nor its bytes are kept.
Image embeddings go to their own table; image bytes are dropped after scoring unless kept by
config. A URL already embedded by the same model (``cached``) is not fetched again, unless it
is withdrawn now.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.faults import maybe_kill
from pipeline.hops.clip.decode import DecodedImage, DecodePolicy, decode_image
from pipeline.hops.clip.fetch import Fetcher, FetchResult
from pipeline.hops.dataset.hash_lists import HashLists, ImageHashes, file_hashes, pdq_hash
from pipeline.hops.dataset.opt_outs import OptOutList
from pipeline.lake.tables import (
    CLIP_SCORES_SCHEMA,
    CREDENTIALS_NO_TRAINING,
    PROVENANCE_FIELDS,
    embeddings_schema,
)
from pipeline.lineage import copydetect
from pipeline.provenance.reader import ProvenancePolicy

PROVENANCE_COLUMNS = tuple(f.name for f in PROVENANCE_FIELDS)

if TYPE_CHECKING:  # torch loads only when a model does (the code location loads fast)
    from pipeline.hops.clip.embed import ClipModel
    from pipeline.hops.clip.heads import Head


@dataclass(frozen=True)
class Thresholds:
    """Minimum cosine similarity by language; ``other`` for the rest and for no language."""

    by_language: dict[str, float] = field(default_factory=lambda: {"en": 0.28})
    other: float = 0.26

    def for_language(self, language: str | None) -> float:
        return self.by_language.get(language or "", self.other)


@dataclass
class UrlOutcome:
    """What happened to one URL: fetch and decode status, and its embedding if any."""

    url_id: str
    url: str
    status: str
    http_status: int | None = None
    final_url: str | None = None
    attempts: int = 0
    error: str | None = None
    width: int | None = None
    height: int | None = None
    n_bytes: int | None = None
    sha256: str | None = None
    md5: str | None = None
    pdq: str | None = None
    copy_desc: str | None = None
    image_format: str | None = None
    embedding: np.ndarray | None = None
    image_bytes: bytes | None = None
    from_cache: bool = False
    provenance: dict | None = None
    """The provenance columns (:data:`PROVENANCE_COLUMNS`) of the fetched bytes, if read."""

    @property
    def hashes(self) -> ImageHashes:
        return ImageHashes(self.md5, self.sha256, self.pdq)


@dataclass
class ClipScoresResult:
    table: pa.Table
    embeddings: pa.Table
    rows_in: int
    rows_kept: int
    dropped: Counter[str]
    urls_fetched: int
    urls_cached: int
    seconds: dict[str, float]
    withdrawn_cached: frozenset[str] = frozenset()
    """url_ids whose cached embedding is withdrawn now (opt-out or hash list): not reused."""


def withdrawn_image(
    hashes: ImageHashes, opt_outs: OptOutList, lists: HashLists
) -> tuple[str, str] | None:
    """Why an image must not be kept, as (reason, detail), or None: ``opted_out:sha256`` (an
    owner withdrew the file), else ``hash_list:<name>`` (the closest takedown-list match)."""
    if hashes.sha256 and opt_outs and (hit := opt_outs.match(None, hashes.sha256)):
        return hit, f"sha256 {hashes.sha256} is on the opt-out list"
    found = lists.match(hashes) if lists else None
    if found is None:
        return None
    return found.reason, f"{found.kind} {found.value} (distance {found.distance}) on {found.name}"


@dataclass
class Prepared:
    """What a fetch thread made of one URL."""

    fetched: FetchResult
    decoded: DecodedImage | None = None
    tensor: object = None
    hashes: ImageHashes = field(default_factory=ImageHashes)
    n_bytes: int | None = None
    copy_desc: str | None = None
    """The copy-detection descriptor of the decoded pixels (trace by image's near-duplicates)."""
    withdrawn: tuple[str, str] | None = None
    """(``opted_out:sha256``, ``hash_list:<name>`` or ``credentials_no_training``, detail):
    dropped after hashing (and reading provenance)."""
    provenance: dict | None = None


def prepare_url(
    fetcher: Fetcher,
    decode: DecodePolicy,
    preprocess: Callable,
    keep: bool,
    url: str,
    lists: HashLists | None = None,
    provenance: ProvenancePolicy | None = None,
) -> Prepared:
    """Runs in a fetch thread: download, hash, read provenance, decode and preprocess one
    image. The file's digests are matched and its metadata read before it is decoded, its PDQ
    hash matched before it is preprocessed; a withdrawn image's bytes and pixels are let go at
    once, as are those of an image whose credentials say ``notAllowed`` for training."""
    lists = lists or HashLists()
    opt_outs = fetcher.policy.opt_outs
    fetched = fetcher.fetch(url)
    if not fetched.ok or fetched.body is None:
        return Prepared(fetched)
    out = Prepared(fetched, hashes=file_hashes(fetched.body), n_bytes=len(fetched.body))
    out.withdrawn = withdrawn_image(out.hashes, opt_outs, lists)
    found = (provenance or ProvenancePolicy()).read(fetched.body) if not out.withdrawn else None
    if found is not None:
        out.provenance = found.columns()
        if found.training_mining == "notAllowed":
            out.withdrawn = (CREDENTIALS_NO_TRAINING, "C2PA training-mining: notAllowed")
    if out.withdrawn is None:
        out.decoded = decode_image(fetched.body, decode)
        if out.decoded.ok:
            out.hashes = dataclasses.replace(out.hashes, pdq=pdq_hash(out.decoded.image))
            out.withdrawn = withdrawn_image(out.hashes, opt_outs, lists)
            if out.withdrawn is None:
                out.copy_desc = copydetect.descriptor_hex(out.decoded.image)
                out.tensor = preprocess(out.decoded.image)
        out.decoded.image = None
    if not keep or out.withdrawn:
        fetched.body = None
    return out


def _bounded_map(pool: ThreadPoolExecutor, fn: Callable, items: Iterable, window: int) -> Iterator:
    """``pool.map`` with at most `window` items in flight, so memory stays bounded."""
    pending: deque[Future] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def outcome_of(uid: str, url: str, prepared: Prepared) -> UrlOutcome:
    """The :class:`UrlOutcome` of one prepared URL, before its image is embedded."""
    fetched, decoded, hashes = prepared.fetched, prepared.decoded, prepared.hashes
    outcome = UrlOutcome(
        url_id=uid,
        url=url,
        status=fetched.status,
        http_status=fetched.http_status,
        final_url=fetched.final_url,
        attempts=fetched.attempts,
        error=fetched.error,
        sha256=hashes.sha256,
        md5=hashes.md5,
        pdq=hashes.pdq,
        copy_desc=prepared.copy_desc,
        n_bytes=prepared.n_bytes,
        provenance=prepared.provenance,
    )
    if decoded is not None:
        outcome.status, outcome.error = decoded.status, decoded.error
        outcome.width, outcome.height = decoded.width, decoded.height
        outcome.image_format = decoded.format
        outcome.image_bytes = fetched.body
    if prepared.withdrawn:
        outcome.status, outcome.error = prepared.withdrawn
        outcome.image_bytes = None
    return outcome


def fetch_and_embed(
    urls: dict[str, str],
    clip: ClipModel,
    fetcher: Fetcher,
    decode: DecodePolicy,
    keep_images: bool = False,
    hash_lists: HashLists | None = None,
    provenance: ProvenancePolicy | None = None,
) -> Iterator[UrlOutcome]:
    """Fetch, hash, read provenance, decode and embed each URL (url_id -> url), embedding in
    batches of the model's; an image ``hash_lists`` (or an sha256 opt-out) withdraws, or whose
    credentials say ``notAllowed`` for training, is never embedded."""
    import torch

    batch: list[tuple[UrlOutcome, object]] = []

    def flush() -> Iterator[UrlOutcome]:
        if not batch:
            return
        with torch.inference_mode():
            x = torch.stack([t for _, t in batch]).to(clip.device, dtype=clip._dtype)
            feats = clip.model.encode_image(x, normalize=True).float().cpu().numpy()
        for (outcome, _), emb in zip(batch, feats, strict=True):
            outcome.embedding = emb.astype(np.float32)
            maybe_kill("clip.embedded")
            yield outcome
        batch.clear()

    def work(item: tuple[str, str]) -> tuple[str, str, Prepared]:
        uid, url = item
        prepared = prepare_url(
            fetcher, decode, clip.preprocess, keep_images, url, hash_lists, provenance
        )
        return uid, url, prepared

    with ThreadPoolExecutor(fetcher.workers, thread_name_prefix="fetch") as pool:
        for uid, url, prepared in _bounded_map(pool, work, urls.items(), fetcher.workers * 4):
            outcome = outcome_of(uid, url, prepared)
            if prepared.tensor is None:
                yield outcome
                continue
            batch.append((outcome, prepared.tensor))
            if len(batch) >= clip.spec.batch_size:
                yield from flush()
        yield from flush()


def cached_outcomes(embeddings: pa.Table | None, model_id: str, url_ids: set[str]) -> dict:
    """UrlOutcomes for URLs this model already embedded (from earlier partitions or runs)."""
    if embeddings is None or embeddings.num_rows == 0:
        return {}
    mask = pc.and_(
        pc.equal(embeddings.column("model_id"), model_id),
        pc.is_in(embeddings.column("url_id"), pa.array(sorted(url_ids), pa.string())),
    )
    rows = embeddings.filter(mask).to_pylist()
    out: dict[str, UrlOutcome] = {}
    for row in rows:
        out[row["url_id"]] = UrlOutcome(
            url_id=row["url_id"],
            url=row["url"],
            status="ok",
            width=row["width"],
            height=row["height"],
            n_bytes=row["n_bytes"],
            sha256=row["sha256"],
            md5=row.get("md5"),
            pdq=row.get("pdq"),
            copy_desc=row.get("copy_desc"),
            image_format=row["image_format"],
            embedding=np.asarray(row["embedding"], dtype=np.float32),
            image_bytes=row.get("image"),
            from_cache=True,
            provenance={c: row.get(c) for c in PROVENANCE_COLUMNS} if "ai_signals" in row else None,
        )
    return out


def score_pairs(
    pairs: pa.Table,
    clip: ClipModel,
    fetcher: Fetcher,
    decode: DecodePolicy,
    thresholds: Thresholds,
    punsafe: Head,
    pwatermark: Head,
    cached: dict[str, UrlOutcome] | None = None,
    keep_images: bool = False,
    progress: Callable[[str], None] | None = None,
    hash_lists: HashLists | None = None,
    provenance: ProvenancePolicy | None = None,
    embed: Callable[..., Iterable[UrlOutcome]] | None = None,
) -> ClipScoresResult:
    """Hop 3 over the kept rows of an ``alt_text_pairs`` partition; ``progress`` gets a line
    at every tenth of the URLs fetched. URLs on the fetcher's opt-out list are not requested
    and cached embeddings the lists withdraw now are not reused."""
    from pipeline.hops.clip.embed import cosine

    seconds: dict[str, float] = {}
    cached = cached or {}
    hash_lists = hash_lists or HashLists()
    opt_outs = fetcher.policy.opt_outs
    kept_pairs = pairs.filter(pairs.column("kept")) if "kept" in pairs.column_names else pairs
    rows = kept_pairs.select(["pair_id", "url_id", "url", "text", "language", "crawl_id"])
    rows = rows.to_pydict()
    n = len(rows["pair_id"])
    urls = dict(zip(rows["url_id"], rows["url"], strict=True))
    outcomes: dict[str, UrlOutcome] = {}
    withdrawn_cached = set()
    for uid, url in urls.items():
        if opt_outs and (hit := opt_outs.match(url)):  # the list may have grown since hop 2
            outcomes[uid] = UrlOutcome(uid, url, hit, error=f"{url} is on the opt-out list")
            if uid in cached:
                withdrawn_cached.add(uid)
        elif uid in cached:
            known = cached[uid]
            withdrawn = withdrawn_image(known.hashes, opt_outs, hash_lists)
            if withdrawn:
                withdrawn_cached.add(uid)
                known = dataclasses.replace(
                    known, status=withdrawn[0], error=withdrawn[1], embedding=None,
                    image_bytes=None,
                )  # fmt: skip
            outcomes[uid] = known
    to_fetch = {uid: url for uid, url in urls.items() if uid not in outcomes}
    started = time.perf_counter()
    step = max(1, len(to_fetch) // 10)
    fetched = (embed or fetch_and_embed)(
        to_fetch, clip, fetcher, decode, keep_images, hash_lists, provenance
    )
    for done, outcome in enumerate(fetched):
        outcomes[outcome.url_id] = outcome
        if progress is not None and ((done + 1) % step == 0 or done + 1 == len(to_fetch)):
            progress(
                f"fetched {done + 1:,} of {len(to_fetch):,} URLs "
                f"({len(urls) - len(to_fetch):,} from cache), "
                f"{time.perf_counter() - started:.0f} s"
            )
    seconds["fetch_and_embed_images"] = time.perf_counter() - started

    started = time.perf_counter()
    has_image = [outcomes[uid].embedding is not None for uid in rows["url_id"]]
    text_idx = [i for i in range(n) if has_image[i]]
    text_emb = clip.embed_texts([rows["text"][i] for i in text_idx])
    image_emb = np.stack(
        [outcomes[rows["url_id"][i]].embedding for i in text_idx]
    ) if text_idx else np.zeros((0, clip.embed_dim), np.float32)  # fmt: skip
    sims = cosine(image_emb, text_emb) if text_idx else np.zeros(0, np.float32)
    unsafe = punsafe(image_emb) if text_idx else np.zeros(0, np.float32)
    watermark = pwatermark(image_emb) if text_idx else np.zeros(0, np.float32)
    seconds["embed_texts_and_tag"] = time.perf_counter() - started

    scores = {
        i: (float(sims[k]), float(unsafe[k]), float(watermark[k])) for k, i in enumerate(text_idx)
    }
    out: dict[str, list] = {name: [] for name in CLIP_SCORES_SCHEMA.names}
    dropped: Counter[str] = Counter()
    for i in range(n):
        o = outcomes[rows["url_id"][i]]
        threshold = thresholds.for_language(rows["language"][i])
        sim, pu, pw = scores.get(i, (None, None, None))
        if o.embedding is None:
            reason = o.status
        elif sim is not None and sim < threshold:
            reason = "below_threshold"
        else:
            reason = None
        if reason:
            dropped[reason] += 1
        for name in ("pair_id", "url_id", "url", "text", "language", "crawl_id"):
            out[name].append(rows[name][i])
        out["model_id"].append(clip.model_id)
        out["fetch_status"].append(o.status)
        out["http_status"].append(o.http_status)
        out["final_url"].append(o.final_url)
        out["fetch_attempts"].append(o.attempts)
        out["from_cache"].append(o.from_cache)
        out["width"].append(o.width)
        out["height"].append(o.height)
        out["n_bytes"].append(o.n_bytes)
        out["sha256"].append(o.sha256)
        out["md5"].append(o.md5)
        out["pdq"].append(o.pdq)
        out["copy_desc"].append(o.copy_desc)
        out["similarity"].append(sim)
        out["threshold"].append(threshold)
        out["punsafe"].append(pu)
        out["pwatermark"].append(pw)
        out["kept"].append(reason is None)
        out["drop_reason"].append(reason)
        out["error"].append(o.error)
        for name in PROVENANCE_COLUMNS:
            out[name].append((o.provenance or {}).get(name))
    table = pa.Table.from_pydict(out, schema=CLIP_SCORES_SCHEMA)
    fresh = [o for o in outcomes.values() if o.embedding is not None and not o.from_cache]
    return ClipScoresResult(
        table=table,
        embeddings=embeddings_table(fresh, clip.model_id, clip.embed_dim, keep_images),
        rows_in=n,
        rows_kept=n - sum(dropped.values()),
        dropped=dropped,
        urls_fetched=len(to_fetch),
        urls_cached=sum(o.from_cache and o.embedding is not None for o in outcomes.values()),
        seconds=seconds,
        withdrawn_cached=frozenset(withdrawn_cached),
    )


def embeddings_table(
    outcomes: list[UrlOutcome], model_id: str, dim: int, keep_images: bool = False
) -> pa.Table:
    schema = embeddings_schema(dim, keep_images)
    outcomes = sorted(outcomes, key=lambda o: o.url_id)
    columns = {
        "url_id": [o.url_id for o in outcomes],
        "url": [o.url for o in outcomes],
        "model_id": [model_id] * len(outcomes),
        "sha256": [o.sha256 for o in outcomes],
        "md5": [o.md5 for o in outcomes],
        "pdq": [o.pdq for o in outcomes],
        "copy_desc": [o.copy_desc for o in outcomes],
        "width": [o.width for o in outcomes],
        "height": [o.height for o in outcomes],
        "n_bytes": [o.n_bytes for o in outcomes],
        "image_format": [o.image_format for o in outcomes],
        "embedding": [o.embedding.tolist() for o in outcomes],  # type: ignore[union-attr]
        **{c: [(o.provenance or {}).get(c) for o in outcomes] for c in PROVENANCE_COLUMNS},
    }
    if keep_images:
        columns["image"] = [o.image_bytes for o in outcomes]
    return pa.Table.from_pydict(columns, schema=schema)
