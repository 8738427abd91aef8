"""The download hop: img2dataset shards of a synthetic web, results, re-runs, S3."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import signal
import sys
import tarfile
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.hops.download.shards import (
    ShardSpec,
    ShardsResult,
    download_shards,
    read_shard_samples,
)
from pipeline.lake.keys import pair_id, url_id
from pipeline.lake.tables import DOWNLOAD_RESULTS_SCHEMA, TableName
from pipeline.synthetic.config import SyntheticWebConfig
from pipeline.synthetic.generate import WebManifest, generate_web
from pipeline.synthetic.server import SyntheticWebServer

# seed 2028: its web has a redirect into a downloadable http:// image (a redirect into
# https:// fails: the synthetic server is a plain-HTTP proxy and cannot be CONNECTed through)
SMALL = SyntheticWebConfig(seed=2028, wat_files_per_crawl=2, pages_per_crawl=60, sites=8)
SIZE = 32
HEALTHY = 36
# fault kind -> how many rows of it; every one of these fails (the server's faults are permanent)
FAULTS = {"not_found": 2, "server_error": 1, "truncated": 1, "not_image": 1, "noai": 2}
PASSING_FAULTS = {"redirect": 1, "wrong_content_type": 1}


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> WebManifest:
    return generate_web(tmp_path_factory.mktemp("shards") / "web", SMALL)


@pytest.fixture(scope="module")
def server(web: WebManifest) -> Iterator[SyntheticWebServer]:
    with SyntheticWebServer(web.root, slow_seconds=0.5) as srv:
        yield srv


def _kind(row: dict[str, Any]) -> str | None:
    if row["x_robots_tag"]:
        return "noai" if row["fault"] is None else "mixed"
    return row["fault"]


@pytest.fixture(scope="module")
def picked(web: WebManifest) -> list[dict[str, Any]]:
    """Truth rows of the subset: healthy images and some of every kind of fault."""
    want = {None: HEALTHY, **FAULTS, **PASSING_FAULTS}
    out = []
    rows = pq.read_table(web.path("truth")).to_pylist()
    by_id = {r["image_id"]: r for r in rows}
    for row in rows:
        kind = _kind(row)
        target = by_id.get(row["redirect_image_id"])
        if kind == "redirect" and (_kind(target) is not None or target["url"][:5] == "https"):
            continue  # passes only into an image that may be downloaded, over plain HTTP
        if row["role"] in ("content", "cdn") and want.get(kind, 0) > 0:
            want[kind] -= 1
            out.append({**row, "kind": kind})
    assert not any(want.values()), want
    return out


@pytest.fixture(scope="module")
def subset(picked: list[dict[str, Any]]) -> pa.Table:
    rows = []
    for row in picked:
        url, text = row["url"], row["caption_en"]
        rows.append({"pair_id": pair_id(url, text), "url_id": url_id(url), "URL": url,
                     "TEXT": text, "aesthetic": 6.0})  # fmt: skip
    return pa.Table.from_pylist(rows)


@pytest.fixture(scope="module")
def kinds(picked: list[dict[str, Any]], subset: pa.Table) -> dict[str, str | None]:
    return dict(zip(subset.column("pair_id").to_pylist(), [r["kind"] for r in picked], strict=True))


@pytest.fixture(scope="module")
def spec(server: SyntheticWebServer) -> ShardSpec:
    # The server is a plain-HTTP proxy: https:// URLs are fetched as http:// through it.
    return ShardSpec(image_size=SIZE, samples_per_shard=12, thread_count=8, timeout=5,
                     retries=0, http_proxy=server.proxy_url, https_as_http=True)  # fmt: skip


@dataclass
class Run:
    root: Path
    result: ShardsResult
    environ_changed: set[str]


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory, subset: pa.Table, spec: ShardSpec) -> Run:
    root = tmp_path_factory.mktemp("shards") / TableName.IMAGE_SHARDS
    before = dict(os.environ)
    result = download_shards(subset, str(root), spec)
    after = dict(os.environ)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    changed = {k for k in changed if "proxy" in k.lower() or k.startswith("AWS_")}
    return Run(root, result, changed)


def rows_by_id(result: ShardsResult) -> dict[str, dict[str, Any]]:
    return {r["pair_id"]: r for r in result.results.to_pylist()}


def tar_samples(path: Path) -> dict[str, dict[str, bytes]]:
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            key, _, ext = member.name.partition(".")
            samples.setdefault(key, {})[ext] = tar.extractfile(member).read()
    return samples


def tar_mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.glob("batches/*/*.tar")}


def failed_ids(result: ShardsResult) -> set[str]:
    return {r["pair_id"] for r in result.results.to_pylist() if r["status"] != "success"}


def batch_input_ids(root: Path, batch: str) -> set[str]:
    table = pq.read_table(root / "batches" / batch / "_input.parquet")
    return set(table.column("pair_id").to_pylist())


# ---------------------------------------------------------------------------------------------


def test_results_match_shard_contents(first, subset, picked, kinds, web) -> None:
    root, result = first.root, first.result
    assert result.results.schema == DOWNLOAD_RESULTS_SCHEMA
    assert result.results.column("pair_id").to_pylist() == subset.column("pair_id").to_pylist()
    assert result.attempted == subset.num_rows and result.shards_written == 4
    assert sum(result.status_counts.values()) == subset.num_rows
    assert result.status_counts == dict(Counter(result.results.column("status").to_pylist()))
    truth = dict(zip(subset.column("pair_id").to_pylist(), picked, strict=True))
    tars: dict[str, dict[str, dict[str, bytes]]] = {}
    for row in result.results.to_pylist():
        assert row["batch"] == result.batch and row["attempts"] == 1 and row["key"]
        kind = kinds[row["pair_id"]]
        if kind in FAULTS:
            assert row["status"].startswith("failed_to_"), row
            assert row["error_message"] and row["shard"] is None and row["sha256"] is None
            continue
        assert row["status"] == "success", row
        assert (row["width"], row["height"]) == (SIZE, SIZE)
        assert row["original_width"] == truth[row["pair_id"]]["width"] or kind == "redirect"
        if kind is None:
            body = (web.root / truth[row["pair_id"]]["file"]).read_bytes()
            assert row["sha256"] == hashlib.sha256(body).hexdigest()
        samples = tars.setdefault(row["shard"], tar_samples(root / row["shard"]))
        sample = samples[row["key"]]
        assert json.loads(sample["json"])["pair_id"] == row["pair_id"]
        assert sample["txt"].decode() == row["TEXT"]
        assert Image.open(io.BytesIO(sample["jpg"])).size == (SIZE, SIZE)
    stored = {key for samples in tars.values() for key in samples}
    failed_keys = {r["key"] for r in result.results.to_pylist() if r["status"] != "success"}
    assert not stored & failed_keys
    assert result.shard_uris == sorted(str(root / shard) for shard in tars)
    assert not (root / "batches" / result.batch / "_tmp").exists()
    assert not first.environ_changed  # http_proxy and no_proxy were restored
    https = [r for r in result.results.to_pylist() if r["URL"].startswith("https://")]
    assert any(r["status"] == "success" for r in https)  # fetched as http:// via the proxy


def test_status_and_error_by_fault(first, kinds) -> None:
    result = first.result
    by_kind: dict[str | None, list[dict[str, Any]]] = {}
    for row in result.results.to_pylist():
        by_kind.setdefault(kinds[row["pair_id"]], []).append(row)
    for row in by_kind["noai"]:  # img2dataset's own X-Robots-Tag check
        assert row["status"] == "failed_to_download"
        assert "X-Robots-Tag directive" in row["error_message"]
    assert {r["error_message"] for r in by_kind["not_found"]} == {"HTTP Error 404: Not Found"}
    assert "500" in by_kind["server_error"][0]["error_message"]
    assert by_kind["not_image"][0]["status"] == "failed_to_resize"
    assert by_kind["truncated"][0]["status"] == "failed_to_download"


def test_read_shard_samples_yields_exactly_the_successes(first) -> None:
    result = first.result
    successes = {r["pair_id"]: r for r in result.results.to_pylist() if r["status"] == "success"}
    samples = list(read_shard_samples(result.shard_uris))
    assert sorted(s.pair_id for s in samples) == sorted(successes)
    for sample in samples:
        row = successes[sample.pair_id]
        assert (sample.key, sample.caption) == (row["key"], row["TEXT"])
        assert sample.sha256 == row["sha256"]
        assert sample.shard.endswith(row["shard"])
        assert sample.image.mode == "RGB" and sample.image.size == (SIZE, SIZE)


def test_bad_input_is_refused(tmp_path, subset, spec) -> None:
    with pytest.raises(ValueError, match=r"lacks columns.*URL"):
        download_shards(subset.drop_columns(["URL"]), str(tmp_path), spec)
    with pytest.raises(ValueError, match="duplicate pair_ids"):
        download_shards(pa.concat_tables([subset, subset.slice(0, 1)]), str(tmp_path), spec)
    with pytest.raises(ValueError, match="previous results lack"):
        download_shards(subset, str(tmp_path), spec, previous=subset)
    assert not (tmp_path / "batches").exists()


def test_rerun_retries_only_failures_then_gives_up(first, subset, spec, tmp_path) -> None:
    root = tmp_path / TableName.IMAGE_SHARDS
    shutil.copytree(first.root, root)
    one = first.result
    failed = failed_ids(one)
    assert 0 < len(failed) < subset.num_rows

    # Nothing left to try: no img2dataset run, failures give up with their error.
    done = download_shards(subset, str(root), replace(spec, max_attempts=1), previous=one.results)
    assert (done.batch, done.attempted, done.shards_written) == (None, 0, 0)
    assert done.status_counts["gave_up"] == len(failed)
    for old, new in zip(one.results.to_pylist(), done.results.to_pylist(), strict=True):
        if old["status"] == "success":
            assert new == old
        else:
            assert new["status"] == "gave_up" and new["error_message"] == old["error_message"]
    assert sorted(p.name for p in (root / "batches").iterdir()) == [one.batch]

    # Second run: only the failed pairs go to img2dataset, into a new batch.
    mtimes = tar_mtimes(root)
    two = download_shards(subset, str(root), spec, previous=one.results)
    assert two.batch != one.batch and batch_input_ids(root, two.batch) == failed
    assert (two.attempted, two.shards_written) == (len(failed), 1)
    rows = rows_by_id(two)
    assert {pid for pid, r in rows.items() if r["batch"] == two.batch} == failed
    assert all(rows[pid]["attempts"] == 2 for pid in failed)
    assert all(row == rows[pid] for pid, row in rows_by_id(one).items() if pid not in failed)
    assert all(tar_mtimes(root)[name] == t for name, t in mtimes.items())

    # A success tar is lost: its successes and the failures are redone, nothing else.
    lost_rel = f"batches/{one.batch}/00001.tar"
    lost = str(root / lost_rel)
    lost_ids = {r["pair_id"] for r in two.results.to_pylist() if r["shard"] == lost_rel}
    assert lost_ids and lost in two.shard_uris
    Path(lost).unlink()
    mtimes = tar_mtimes(root)
    three = download_shards(subset, str(root), spec, previous=two.results)
    assert batch_input_ids(root, three.batch) == failed | lost_ids
    assert three.attempted == len(failed | lost_ids)
    assert three.shards_written == math.ceil(three.attempted / spec.samples_per_shard)
    assert tar_mtimes(root).items() >= mtimes.items()  # no other tar was rewritten
    rows = rows_by_id(three)
    assert three.results.num_rows == subset.num_rows
    assert all(rows[p]["status"] == "success" and rows[p]["attempts"] == 2 for p in lost_ids)
    assert all(rows[p]["attempts"] == 3 for p in failed)
    assert lost not in three.shard_uris and all(Path(u).exists() for u in three.shard_uris)
    assert failed_ids(three) == failed

    # max_attempts (3) reached: the failures give up and nothing runs.
    four = download_shards(subset, str(root), spec, previous=three.results)
    assert (four.batch, four.attempted, four.shards_written) == (None, 0, 0)
    assert four.status_counts == {"gave_up": len(failed), "success": subset.num_rows - len(failed)}
    assert four.shard_uris == three.shard_uris

    # Pairs that left the subset leave the results.
    fewer = subset.slice(5)
    five = download_shards(fewer, str(root), spec, previous=four.results)
    assert five.results.column("pair_id").to_pylist() == fewer.column("pair_id").to_pylist()
    assert five.batch is None


def test_crashed_run_resumes_only_missing_shards(first, subset, spec, tmp_path) -> None:
    root = tmp_path / TableName.IMAGE_SHARDS
    shutil.copytree(first.root, root)
    one = first.result
    batch_dir = root / "batches" / one.batch
    (batch_dir / "00002.tar").unlink()  # a lost tar whose stats remain
    (batch_dir / "00000_stats.json").unlink()  # a shard that was written but never finished
    (batch_dir / "_tmp").mkdir()  # img2dataset's leftovers of the crash
    mtimes = tar_mtimes(root)
    again = download_shards(subset, str(root), spec)  # same inputs -> the same batch
    assert again.batch == one.batch
    assert (again.shards_written, again.attempted) == (2, 24)
    after = tar_mtimes(root)
    assert {n for n, t in mtimes.items() if after[n] != t} == {f"batches/{one.batch}/00000.tar"}
    assert again.results.to_pylist() == one.results.to_pylist()
    assert not (batch_dir / "_tmp").exists()


# ---------------------------------------------------------------------------------------------
# S3 (a moto server on loopback)


def test_s3_root(subset, spec, kinds, s3_options, monkeypatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)  # all img2dataset gets comes from the options
    small = subset.slice(0, 14)
    root = "s3://lake/lake/image_shards/partition=X"
    result = download_shards(small, root, spec, storage_options=s3_options)
    rows = result.results.to_pylist()
    assert len(rows) == 14 and result.shards_written == 2
    ok = {r["pair_id"] for r in rows if r["status"] == "success"}
    assert ok == {pid for pid in small.column("pair_id").to_pylist() if kinds[pid] not in FAULTS}
    assert result.shard_uris and all(u.startswith(root + "/batches/") for u in result.shard_uris)
    samples = list(read_shard_samples(result.shard_uris, s3_options))
    assert sorted(s.pair_id for s in samples) == sorted(ok)
    again = download_shards(small, root, replace(spec, max_attempts=1), result.results, s3_options)
    assert (again.batch, again.attempted) == (None, 0)
    assert again.shard_uris == result.shard_uris


def test_sigint_handler_is_kept(first) -> None:
    import img2dataset.main  # noqa: F401  (imported by the download above)

    from pipeline.hops.download.shards import _sigint_kept

    module = sys.modules["img2dataset.main"]
    ours = signal.getsignal(signal.SIGINT)
    with _sigint_kept():
        module.signal.signal(signal.SIGINT, signal.SIG_IGN)  # what img2dataset does
    assert signal.getsignal(signal.SIGINT) is ours
    errors: list[BaseException] = []

    def off_main_thread() -> None:
        try:
            with _sigint_kept():
                module.signal.signal(signal.SIGINT, signal.SIG_IGN)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=off_main_thread)
    thread.start()
    thread.join()
    assert not errors and module.signal is signal


def test_download_ends_in_a_process_that_ignores_sigterm(subset, spec, tmp_path) -> None:
    """img2dataset ends its pool with SIGTERM; workers of a parent that ignores SIGTERM (an
    xdist worker, some supervisors) would inherit that and the download would never return
    (this test then fails by its timeout). More shards than a pool worker's task limit (5)
    make the pool replace its worker mid-download, which is when it hung."""
    one_each = replace(spec, samples_per_shard=1)
    saved = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        result = download_shards(subset.slice(0, 8), str(tmp_path / "shards"), one_each)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # put back as it was
    finally:
        signal.signal(signal.SIGTERM, saved)
    assert result.results.num_rows == 8 and result.shards_written == 8
