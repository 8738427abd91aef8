"""The download hop: the aesthetic subset's images into WebDataset shards, with img2dataset.

Layout under ``root`` (a local directory or an fsspec URI such as ``s3://bucket/prefix``)::

    batches/{batch}/_input.parquet     the URLs of one batch: URL, TEXT, pair_id, url_id
    batches/{batch}/00000.tar          img2dataset's WebDataset shard (jpg, txt, json per sample)
    batches/{batch}/00000.parquet      one row per URL of the shard: key, status, error, sizes
    batches/{batch}/00000_stats.json   written last by img2dataset: the shard is complete

A shard counts only when its stats, tar and parquet all exist; anything less is deleted and
redone by img2dataset's incremental mode. Results (one row per subset ``pair_id``) are
returned, not written: the caller publishes them (e.g. as a lake partition), and passes them
back as ``previous`` next time, so that a re-run downloads only what is missing:

- a success is kept while its tar exists; a lost tar's rows are downloaded again;
- a failure is retried by later runs until it has been attempted ``max_attempts`` times, then
  it stays ``gave_up`` with its last error;
- a refusal (``content_changed``, ``private_host``, ``decompression_bomb``) is a decision, not a
  fault: it is kept as it is, unless hop 3 now scored the very bytes a ``content_changed`` row
  downloaded (then it is downloaded again); a success whose sha256 is no longer the scored one
  is downloaded again;
- the batch name is a hash of what is to be done (pair_ids, their attempt counts, the shard
  layout), so re-running after a crash, with the same ``previous``, resumes the same batch and
  img2dataset redoes only the shards that lack their stats.

Verification: when the subset has a ``sha256`` column (hop 3's hash of the bytes it scored),
each success's sha256 (img2dataset's, of the original bytes) must equal it, else the row is
``content_changed`` (:mod:`.verify`). Every request of img2dataset's workers, redirects
included, goes through a guard proxy (:mod:`.guard`) that applies hop 3's private-address rule
(``private_host``), and images declaring more than ``max_image_pixels`` are refused before
they are decoded (:mod:`.bombs`, ``decompression_bomb``).

S3: img2dataset opens every path with ``fsspec.core.url_to_fs(path)`` and no storage options,
in the calling process and in its spawned workers. For ``s3://`` roots the endpoint and
credentials of ``storage_options`` (``key``, ``secret``, ``token``, ``endpoint_url`` or
``client_kwargs.endpoint_url``, ``client_kwargs.region_name``) are therefore passed to it as
``AWS_*`` environment variables for the duration of the call (workers inherit them); other
options cannot reach img2dataset. On a Spark or Ray cluster the executors need their own
credentials. The writes go straight to S3 (no local staging). With ``http_proxy`` set, the S3
endpoint's ``host:port`` is the only ``no_proxy`` entry: botocore honours the proxy variables
too. The guard listens on the caller's loopback: a Spark or Ray cluster's remote executors
cannot reach it (use the ``multiprocessing`` distributor, or local mode).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import logging
import math
import multiprocessing
import os
import re
import signal
import sys
import threading
import types
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from pipeline.engine.worker_env import s3_env
from pipeline.faults import maybe_kill
from pipeline.hops.clip.decode import DecodePolicy
from pipeline.hops.dataset.opt_outs import OptOutList
from pipeline.hops.download.bombs import bombs_refused
from pipeline.hops.download.guard import GuardProxy
from pipeline.hops.download.verify import content_changed, mark_changed, verified
from pipeline.lake.tables import DOWNLOAD_CONTENT_CHANGED as CONTENT_CHANGED
from pipeline.lake.tables import DOWNLOAD_FAILED_STATUSES as FAILED_STATUSES
from pipeline.lake.tables import DOWNLOAD_GAVE_UP as GAVE_UP
from pipeline.lake.tables import DOWNLOAD_NOT_ATTEMPTED as NOT_ATTEMPTED
from pipeline.lake.tables import DOWNLOAD_REFUSED_STATUSES as REFUSED_STATUSES
from pipeline.lake.tables import DOWNLOAD_RESULTS_SCHEMA
from pipeline.lake.tables import DOWNLOAD_SUCCESS as SUCCESS
from pipeline.lake.urls import HostPolicy

log = logging.getLogger(__name__)


SUBSET_COLUMNS = ("pair_id", "url_id", "URL", "TEXT")
SCORED_SHA256 = "sha256"
"""Optional subset column: hop 3's sha256 of the bytes it scored (null: not verified)."""
INPUT_FILE = "_input.parquet"
_OOM_SHARD_COUNT = 5  # img2dataset names shards {id:05d}
_PARTS = frozenset({".tar", ".parquet", "_stats.json"})
_SHARD_FILE = re.compile(r"^(\d+)(\.tar|\.parquet|_stats\.json)$")
_RESULT_COLUMNS = (
    "pair_id", "key", "status", "error_message", "width", "height",
    "original_width", "original_height", "sha256",
)  # fmt: skip
_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


@dataclass(frozen=True)
class ShardSpec:
    """How img2dataset downloads, resizes and shards; and how often a URL may be tried."""

    image_size: int = 64
    resize_mode: str = "center_crop"
    encode_format: str = "jpg"
    samples_per_shard: int = 256
    processes_count: int = 1
    thread_count: int = 16
    distributor: str = "multiprocessing"
    """img2dataset's distributor: ``multiprocessing``, ``pyspark`` or ``ray``."""
    timeout: int = 10
    retries: int = 1
    """img2dataset's own retries of a URL within one run."""
    max_attempts: int = 3
    """Runs that may try a failing URL; after that it is ``gave_up``."""
    shard_retries: int = 2
    """With the ``ray`` distributor (which ignores shard statuses and ``max_shard_retry``),
    img2dataset is run again this many times for shards a run left incomplete."""
    disallowed_header_directives: tuple[str, ...] = ("noai", "noimageai", "noindex", "noimageindex")
    user_agent_token: str | None = "crawl2diffusion"
    http_proxy: str | None = None
    """An HTTP proxy that reaches the web (the synthetic web's server): the guard proxy, which
    img2dataset's workers use for http, https and ftp, forwards to it. ``no_proxy`` is cleared
    but for the S3 endpoint; the environment is restored afterwards."""
    host_policy: HostPolicy = field(default_factory=HostPolicy)
    """Hop 3's private-address rule (and its allowlist), applied to every request."""
    opt_outs: OptOutList = field(default_factory=OptOutList)
    """Owners' URL and domain withdrawals, applied to every request (redirects included):
    refused as ``opted_out:url|domain``."""
    max_image_pixels: int = DecodePolicy.max_pixels
    """Images declaring more pixels are refused before decoding (hop 3's limit)."""
    https_as_http: bool = False
    """Fetch ``https://`` URLs as ``http://`` (so they go through ``http_proxy``): only for the
    synthetic web, whose server speaks plain HTTP and cannot tunnel TLS. Results keep the
    original URL; img2dataset's own parquet and sample json hold the fetched one."""


@dataclass
class ShardsResult:
    results: pa.Table
    """:data:`DOWNLOAD_RESULTS_SCHEMA`, one row per subset pair, in subset order."""
    batch: str | None
    """The batch run this time (None when nothing was left to do)."""
    shards_written: int
    """Shards img2dataset completed in this call."""
    attempted: int
    """URLs sent to img2dataset in this call."""
    status_counts: dict[str, int]
    shard_uris: list[str]
    """Every tar that holds a current success (full URI), sorted."""
    unverified: int = 0
    """Rows without a scored sha256 (their downloads were not compared)."""
    guard_refusals: dict[str, int] | None = None
    """Requests the guard proxy refused in this call, by reason (redirects included)."""


@dataclass
class ShardSample:
    key: str
    pair_id: str
    caption: str
    image: Image.Image
    sha256: str | None
    shard: str


# ---------------------------------------------------------------------------------------------
# Public API


def download_shards(
    subset: pa.Table,
    root: str,
    spec: ShardSpec,
    previous: pa.Table | None = None,
    storage_options: dict[str, Any] | None = None,
    cluster: Callable[[dict[str, str | None]], AbstractContextManager[Any]] | None = None,
) -> ShardsResult:
    """Download the subset's images into shards under ``root``, redoing only what is missing.

    ``subset`` needs ``pair_id``, ``url_id``, ``URL``, ``TEXT`` (unique, non-null pair_ids);
    ``previous`` is the ``results`` of an earlier call (its rows for pairs no longer in the
    subset are dropped). To do: pairs without a success whose tar still exists, except
    failures already tried ``max_attempts`` times (kept as ``gave_up``). Nothing to do: no
    img2dataset run. Rows of a shard that img2dataset did not complete are
    ``not_attempted_yet`` (attempts unchanged), and are resumed by the next call.
    ``cluster`` (the ``ray`` distributor) joins the Ray cluster around each img2dataset call,
    given the environment the workers need (guard proxy, S3 variables).
    """
    rows = _subset_rows(subset)
    scored = _scored(subset)
    if spec.max_attempts < 1 or spec.samples_per_shard < 1:
        raise ValueError("max_attempts and samples_per_shard must be >= 1")
    options = dict(storage_options or {})
    fs, root_path = fsspec.core.url_to_fs(root.rstrip("/"), **options)
    root_path = root_path.rstrip("/")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]

    prev = _previous_rows(previous, {r["pair_id"] for r in rows})
    present = _present_tars(fs, root_path, prev.values())
    carried: dict[str, dict[str, Any]] = {}
    todo: list[tuple[dict[str, Any], int]] = []
    for row in rows:
        old = prev.get(row["pair_id"])
        want = scored.get(row["pair_id"])
        attempts = int(old["attempts"] or 0) if old else 0
        if old is None or old["status"] == NOT_ATTEMPTED:
            todo.append((row, attempts))
        elif old["status"] == SUCCESS and old["shard"] in present:
            if content_changed(old, want):  # hop 3 scored other bytes since: fetch again
                todo.append((row, attempts))
            else:
                carried[row["pair_id"]] = {**old, **row}
        elif old["status"] == CONTENT_CHANGED and want is not None and old["sha256"] == want:
            todo.append((row, attempts))  # what was downloaded is now what was scored
        elif old["status"] == CONTENT_CHANGED and want is not None:
            carried[row["pair_id"]] = mark_changed({**old, **row}, want)
        elif old["status"] in REFUSED_STATUSES:
            carried[row["pair_id"]] = {**old, **row}
        elif old["status"] in (*FAILED_STATUSES, GAVE_UP) and attempts >= spec.max_attempts:
            carried[row["pair_id"]] = {**old, **row, "status": GAVE_UP, "shard": None}
        else:  # a failure with attempts left, or a success whose tar is gone
            todo.append((row, attempts))

    batch: str | None = None
    shards_written = attempted = 0
    fresh: dict[str, dict[str, Any]] = {}
    refusals: dict[str, int] = {}
    if todo:
        todo.sort(key=lambda item: item[0]["pair_id"])
        batch = _batch_name(todo, spec)
        fresh, shards_written, attempted, refusals = _run_batch(
            fs, protocol, root_path, batch, todo, spec, options, cluster
        )
        fresh = {pid: verified(rec, scored.get(pid)) for pid, rec in fresh.items()}

    out = [carried.get(r["pair_id"]) or fresh[r["pair_id"]] for r in rows]
    results = pa.Table.from_pylist(
        [{name: row.get(name) for name in DOWNLOAD_RESULTS_SCHEMA.names} for row in out],
        schema=DOWNLOAD_RESULTS_SCHEMA,
    )
    tars = sorted({r["shard"] for r in out if r["status"] == SUCCESS and r["shard"]})
    counts = Counter(r["status"] for r in out)
    return ShardsResult(
        results=results,
        batch=batch,
        shards_written=shards_written,
        attempted=attempted,
        status_counts=dict(sorted(counts.items())),
        shard_uris=[_uri(protocol, f"{root_path}/{tar}") for tar in tars],
        unverified=sum(scored.get(r["pair_id"]) is None for r in rows),
        guard_refusals=refusals,
    )


def read_shard_samples(
    shard_uris: list[str], storage_options: dict[str, Any] | None = None
) -> Iterator[ShardSample]:
    """Samples of WebDataset tars (read with webdataset's tar iterators), images as RGB."""
    from webdataset.tariterators import group_by_keys, tar_file_expander

    for uri in shard_uris:
        with fsspec.open(uri, "rb", **(storage_options or {})) as stream:
            for sample in group_by_keys(tar_file_expander([{"url": uri, "stream": stream}])):
                meta = json.loads(sample["json"]) if "json" in sample else {}
                data = next((sample[ext] for ext in _IMAGE_EXTENSIONS if ext in sample), None)
                if data is None:
                    raise ValueError(f"{uri}: sample {sample['__key__']} holds no image")
                with Image.open(io.BytesIO(data)) as img:
                    image = img.convert("RGB")
                yield ShardSample(
                    key=sample["__key__"],
                    pair_id=meta.get("pair_id"),
                    caption=sample.get("txt", b"").decode("utf-8"),
                    image=image,
                    sha256=meta.get("sha256"),
                    shard=uri,
                )


# ---------------------------------------------------------------------------------------------
# Inputs


def _subset_rows(subset: pa.Table) -> list[dict[str, Any]]:
    missing = [c for c in SUBSET_COLUMNS if c not in subset.column_names]
    if missing:
        raise ValueError(f"subset lacks columns {missing} (needs {list(SUBSET_COLUMNS)})")
    rows = subset.select(list(SUBSET_COLUMNS)).to_pylist()
    if any(r["pair_id"] is None or r["URL"] is None for r in rows):
        raise ValueError("subset has rows without pair_id or URL")
    dupes = [pid for pid, n in Counter(r["pair_id"] for r in rows).items() if n > 1]
    if dupes:
        raise ValueError(f"subset has duplicate pair_ids, e.g. {dupes[:3]}")
    return rows


def _scored(subset: pa.Table) -> dict[str, str]:
    """Hop 3's sha256 by pair_id, where the subset has one."""
    if SCORED_SHA256 not in subset.column_names:
        return {}
    ids, shas = subset.column("pair_id").to_pylist(), subset.column(SCORED_SHA256).to_pylist()
    return {pid: sha for pid, sha in zip(ids, shas, strict=True) if sha}


def _previous_rows(previous: pa.Table | None, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """Rows of earlier results by pair_id, only for pairs still in the subset."""
    if previous is None:
        return {}
    missing = [c for c in DOWNLOAD_RESULTS_SCHEMA.names if c not in previous.column_names]
    if missing:
        raise ValueError(f"previous results lack columns {missing}")
    rows = previous.select(DOWNLOAD_RESULTS_SCHEMA.names).to_pylist()
    return {r["pair_id"]: r for r in rows if r["pair_id"] in wanted}


def _present_tars(fs: Any, root_path: str, rows: Iterable[dict[str, Any]]) -> set[str]:
    """Which of the success rows' tars still exist (paths relative to the root)."""
    wanted = {r["shard"] for r in rows if r["status"] == SUCCESS and r["shard"]}
    if not wanted:
        return set()
    fs.invalidate_cache()
    found = fs.glob(f"{root_path}/batches/*/*.tar")
    prefix = root_path + "/"
    return wanted & {p[len(prefix) :] for p in found if p.startswith(prefix)}


def _batch_name(todo: list[tuple[dict[str, Any], int]], spec: ShardSpec) -> str:
    """12 hex of sha256 over the shard layout and the sorted (pair_id, attempts) to do.

    The attempts make a retry of the same failures a new batch (the old one is complete and
    would be skipped); the layout keeps a resumed batch from mixing two shardings."""
    digest = hashlib.sha256(
        f"{spec.samples_per_shard}|{spec.image_size}|{spec.resize_mode}|{spec.encode_format}|"
        f"{spec.https_as_http}|{spec.max_image_pixels}\n".encode()
    )
    for row, attempts in todo:
        digest.update(f"{row['pair_id']}\t{attempts}\n".encode())
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# One batch


def _run_batch(
    fs: Any,
    protocol: str,
    root_path: str,
    batch: str,
    todo: list[tuple[dict[str, Any], int]],
    spec: ShardSpec,
    options: dict[str, Any],
    cluster: Callable[[dict[str, str | None]], AbstractContextManager[Any]] | None = None,
) -> tuple[dict[str, dict[str, Any]], int, int, dict[str, int]]:
    """Run (or resume) one batch: (result row by pair_id, shards written, URLs attempted,
    the guard's refusals by reason)."""
    batch_dir = f"{root_path}/batches/{batch}"
    per_shard = spec.samples_per_shard
    n_shards = math.ceil(len(todo) / per_shard)
    _write_input(fs, protocol, batch_dir, [row for row, _ in todo], spec.https_as_http)

    before = _shard_files(fs, batch_dir)
    redo = [i for i in range(n_shards) if before.get(i) != _PARTS]
    for i in redo:  # stats first: without them img2dataset redoes the shard
        for part in ("_stats.json", ".tar", ".parquet"):
            if part in before.get(i, ()):
                fs.rm_file(f"{batch_dir}/{_shard_name(i)}{part}")
    refusals: Counter[str] = Counter()
    runs = 1 + (spec.shard_retries if spec.distributor == "ray" else 0)
    after = before
    for run in range(runs if redo else 0):
        _remove_tmp(fs, batch_dir)
        refusals.update(_call_img2dataset(protocol, batch_dir, spec, options, cluster))
        _remove_tmp(fs, batch_dir)
        after = _shard_files(fs, batch_dir)
        left = [i for i in redo if after.get(i) != _PARTS]
        if not left:
            break
        if run + 1 < runs:  # img2dataset's incremental mode redoes only these
            log.warning("img2dataset left shards %s incomplete; running it again", left)
    if redo:
        maybe_kill("download.batch")
    after = _shard_files(fs, batch_dir)
    done = {i for i in range(n_shards) if after.get(i) == _PARTS}
    attempted = sum(min(per_shard, len(todo) - i * per_shard) for i in redo)

    found: dict[str, dict[str, Any]] = {}
    for i in sorted(done):
        with fs.open(f"{batch_dir}/{_shard_name(i)}.parquet", "rb") as handle:
            table = pq.read_table(handle, columns=list(_RESULT_COLUMNS))
        tar = f"batches/{batch}/{_shard_name(i)}.tar"
        for rec in table.to_pylist():
            rec["shard"] = tar if rec["status"] == SUCCESS else None
            found[rec["pair_id"]] = rec

    fresh: dict[str, dict[str, Any]] = {}
    for n, (row, attempts) in enumerate(todo):
        rec = found.get(row["pair_id"])
        if rec is None:  # its shard did not complete: try again next run, attempts unchanged
            fresh[row["pair_id"]] = {
                **row,
                "batch": batch,
                "status": NOT_ATTEMPTED,
                "error_message": f"img2dataset did not complete shard {n // per_shard}",
                "attempts": attempts,
            }
        else:
            fresh[row["pair_id"]] = {**rec, **row, "batch": batch, "attempts": attempts + 1}
    return fresh, len(done.intersection(redo)), attempted, dict(sorted(refusals.items()))


def _shard_name(shard_id: int) -> str:
    return f"{shard_id:0{_OOM_SHARD_COUNT}d}"


def _uri(protocol: str, path: str) -> str:
    return path if protocol in ("file", "local") else f"{protocol}://{path}"


def _shard_files(fs: Any, directory: str) -> dict[int, frozenset[str]]:
    """Files img2dataset wrote, by shard id: which of .tar, .parquet, _stats.json exist."""
    fs.invalidate_cache(directory)
    try:
        paths = fs.ls(directory, detail=False)
    except FileNotFoundError:
        return {}
    parts: dict[int, set[str]] = defaultdict(set)
    for path in paths:
        match = _SHARD_FILE.match(path.rstrip("/").rsplit("/", 1)[-1])
        if match:
            parts[int(match[1])].add(match[2])
    return {shard: frozenset(found) for shard, found in parts.items()}


def _write_input(
    fs: Any, protocol: str, batch_dir: str, rows: list[dict[str, Any]], https_as_http: bool
) -> None:
    """The batch's URL list, sorted by pair_id; an existing one for other pairs is replaced."""
    path = f"{batch_dir}/{INPUT_FILE}"
    ids = [r["pair_id"] for r in rows]
    if fs.exists(path):
        try:
            with fs.open(path, "rb") as handle:
                if pq.read_table(handle, columns=["pair_id"]).column(0).to_pylist() == ids:
                    return
        except (OSError, pa.ArrowException):
            pass
        log.warning("batch folder %s holds another input; starting it over", batch_dir)
        fs.rm(batch_dir, recursive=True)
    table = pa.table(
        {
            "URL": [_fetch_url(r["URL"], https_as_http) for r in rows],
            "TEXT": [r["TEXT"] for r in rows],
            "pair_id": ids,
            "url_id": [r["url_id"] for r in rows],
        }
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    data = sink.getvalue().to_pybytes()
    fs.makedirs(batch_dir, exist_ok=True)
    if protocol in ("file", "local"):  # write aside, then rename: never a half file
        tmp = f"{batch_dir}/.{INPUT_FILE}.{uuid.uuid4().hex[:8]}"
        fs.pipe_file(tmp, data)
        fs.mv(tmp, path)
    else:  # one PUT
        fs.pipe_file(path, data)


def _fetch_url(url: str, https_as_http: bool) -> str:
    if https_as_http and url[:8].lower() == "https://":
        return "http://" + url[8:]
    return url


def _remove_tmp(fs: Any, batch_dir: str) -> None:
    tmp = f"{batch_dir}/_tmp"
    if fs.exists(tmp):
        fs.rm(tmp, recursive=True)


# ---------------------------------------------------------------------------------------------
# img2dataset


def _call_img2dataset(
    protocol: str,
    batch_dir: str,
    spec: ShardSpec,
    options: dict[str, Any],
    cluster: Callable[[dict[str, str | None]], AbstractContextManager[Any]] | None = None,
) -> dict[str, int]:
    """Run img2dataset behind the guard proxy and the bomb check; the guard's refusals."""
    if spec.distributor in ("pyspark", "ray"):
        module = spec.distributor
        if importlib.util.find_spec(module) is None:  # img2dataset's ray stub silently does nothing
            raise ValueError(f"distributor {spec.distributor!r} needs {module} installed")
    from img2dataset import download

    folder = _uri(protocol, batch_dir)
    guard = GuardProxy(
        spec.host_policy,
        upstream=spec.http_proxy,
        timeout_s=spec.timeout + 5,
        withdrawn=(lambda url: spec.opt_outs.match(url)) if spec.opt_outs else None,
    )
    with guard, bombs_refused(spec.max_image_pixels):
        env = _env_for(guard.url, protocol, options)
        joined = cluster(env) if cluster is not None else nullcontext()
        with (
            _environ(env),
            _s3_cache_cleared(protocol),
            _sigint_kept(),
            _sigterm_heeded(),
            _loggers_reaped(),
            joined,
        ):
            _download(download, folder, spec)
    return dict(sorted(guard.refused.items()))


def _download(download: Any, folder: str, spec: ShardSpec) -> None:
    download(
        url_list=f"{folder}/{INPUT_FILE}",
        input_format="parquet",
        url_col="URL",
        caption_col="TEXT",
        save_additional_columns=["pair_id", "url_id"],
        output_format="webdataset",
        output_folder=folder,
        incremental_mode="incremental",
        compute_hash="sha256",
        enable_wandb=False,
        extract_exif=False,
        image_size=spec.image_size,
        resize_mode=spec.resize_mode,
        encode_format=spec.encode_format,
        number_sample_per_shard=spec.samples_per_shard,
        oom_shard_count=_OOM_SHARD_COUNT,
        processes_count=spec.processes_count,
        thread_count=spec.thread_count,
        distributor=spec.distributor,
        timeout=spec.timeout,
        retries=spec.retries,
        disallowed_header_directives=list(spec.disallowed_header_directives),
        user_agent_token=spec.user_agent_token,
    )


def _env_for(proxy: str, protocol: str, options: dict[str, Any]) -> dict[str, str | None]:
    """Environment for img2dataset and its workers: S3 endpoint/credentials, and ``proxy``
    (the guard) for every scheme urllib may follow a redirect to (http, https, ftp)."""
    env: dict[str, str | None] = {}
    bypass: list[str] = []
    if protocol in ("s3", "s3a"):
        env.update(s3_env(options))
        endpoint = env.get("AWS_ENDPOINT_URL")
        if endpoint and urlsplit(endpoint).hostname:
            bypass.append(urlsplit(endpoint).netloc)  # with its port: only the lake
    no_proxy = ",".join(bypass) or None
    for scheme in ("http", "https", "ftp"):
        env.update({f"{scheme}_proxy": proxy, f"{scheme.upper()}_PROXY": proxy})
    env.update(no_proxy=no_proxy, NO_PROXY=no_proxy, all_proxy=None, ALL_PROXY=None)
    return env


@contextmanager
def _environ(updates: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) environment variables; restore them afterwards.

    The environment is process-wide: concurrent calls in threads of one process would see
    each other's settings (Dagster runs steps in processes of their own).
    """
    saved = {name: os.environ.get(name) for name in updates}
    try:
        for name, value in updates.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _s3_cache_cleared(protocol: str) -> Iterator[None]:
    """img2dataset's option-less S3 filesystems must not outlive (or predate) our environment."""
    if protocol not in ("s3", "s3a"):
        yield
        return
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    try:
        yield
    finally:
        s3fs.S3FileSystem.clear_instance_cache()


@contextmanager
def _sigterm_heeded() -> Iterator[None]:
    """img2dataset's pool workers inherit an ignored SIGTERM (a process started by a parent
    that ignores it: pytest-xdist's workers, some supervisors) and then never die when its
    ``Pool.terminate`` ends the download: let them heed it while img2dataset runs."""
    on_main = threading.current_thread() is threading.main_thread()
    if not on_main or signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextmanager
def _sigint_kept() -> Iterator[None]:
    """img2dataset installs its own SIGINT handler: restore ours (or, off the main thread,
    where ``signal.signal`` raises, skip its handler)."""
    if threading.current_thread() is threading.main_thread():
        saved = signal.getsignal(signal.SIGINT)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, saved)
        return
    module = sys.modules["img2dataset.main"]
    real = module.signal
    module.signal = types.SimpleNamespace(SIGINT=signal.SIGINT, signal=lambda *args: None)
    try:
        yield
    finally:
        module.signal = real


@contextmanager
def _loggers_reaped() -> Iterator[None]:
    """If img2dataset raises, end its logger process (it would otherwise run forever)."""
    before = set(multiprocessing.active_children())
    try:
        yield
    except BaseException:
        for child in multiprocessing.active_children():
            if child not in before and type(child).__name__ == "LoggerProcess":
                child.terminate()
                child.join(5)
        raise
