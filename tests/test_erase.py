"""Erasure: one image of a small lake with real tars, embeddings (image bytes kept) and a band
grid is erased with the Dagster job; then no file of the lake and no file or event of the
Dagster instance holds its bytes, its resized bytes, its embedding, its grid or a file named
after its sha256, while decision tables keep every version and a tombstone records it."""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance
from dagster._serdes import serialize_value

from assets_defs.assets.aesthetics import aesthetic_subset
from assets_defs.assets.clip_scores import clip_scores
from assets_defs.assets.image_shards import image_shards
from assets_defs.erase_job import erase_job
from assets_defs.partitions import crawls, wat_slices
from crawl2diffusion.cli import main
from pipeline.erase.rows import byte_tables
from pipeline.erase.targets import EraseRequest, resolve
from pipeline.hops.download.shards import INPUT_FILE, read_shard_samples
from pipeline.lake.store import REPORTS, SHOWS_SUFFIX, Lake
from pipeline.lake.tables import DOWNLOAD_SUCCESS, TableName
from pipeline.lineage import ann
from tests.lake_runs import LakeRun

DECISION_TABLES = (
    TableName.CLIP_SCORES,
    TableName.LAION_DATASET,
    TableName.LAION_DATASET_DECISIONS,
    TableName.AESTHETIC_SUBSET,
    TableName.DOWNLOAD_RESULTS,
)


@dataclass
class Needles:
    """What must be gone: bytes (searched raw, inside tars, gzip and decoded Parquet) and
    base64 text (Dagster metadata), and the names no file may contain."""

    raw: dict[str, bytes] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)


@dataclass
class Erased:
    run: LakeRun
    home: Path
    url: str
    url_id: str
    pair_ids: set[str]
    key: str
    tar: Path
    members_before: dict[str, bytes]
    needles: Needles
    found_before: dict[str, list[str]]
    versions: dict[str, int]
    embeddings_version: int
    dry_run: dict
    erasure_id: str

    @property
    def lake(self) -> Lake:
        return self.run.lake


# -- searching -------------------------------------------------------------------------------


def _windows(needle: bytes) -> list[bytes]:
    """The needle, or for a long one three 48-byte windows past its headers (a copy split
    across SQLite pages still shows one of them)."""
    if len(needle) < 256:
        return [needle]
    return [needle[int(len(needle) * f) :][:48] for f in (0.5, 0.75, 0.9)]


def _column_views(array: pa.Array) -> Iterator[bytes]:
    """The bytes of a decoded Parquet column: binary and string values, and floats as
    float32 and float16 (how an embedding is stored)."""
    t = array.type
    if pa.types.is_struct(t):
        for i in range(t.num_fields):
            yield from _column_views(array.field(i))
    elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        yield from _column_views(array.flatten())
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_string(t):
        yield b"\0".join(v if isinstance(v, bytes) else v.encode() for v in array.to_pylist() if v)
    elif pa.types.is_floating(t):
        values = array.fill_null(0).to_numpy(zero_copy_only=False)
        yield values.astype(np.float32).tobytes()
        yield values.astype(np.float16).tobytes()


def _views(path: Path) -> Iterator[bytes]:
    """A file's bytes, and what it holds: Parquet values, tar members, gzip contents."""
    data = path.read_bytes()
    yield data
    if data[:4] == b"PAR1":
        table = pq.read_table(path)
        for column in table.columns:
            yield from _column_views(column.combine_chunks())
    elif data[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError):
            yield gzip.decompress(data)
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    yield tar.extractfile(member).read()  # type: ignore[union-attr]


def search(roots: list[Path], needles: Needles) -> dict[str, list[str]]:
    """Needle name -> the files that hold it (raw or base64) or are named after it."""
    found: dict[str, list[str]] = {}
    encoded = {k: base64.b64encode(v) for k, v in needles.raw.items()}
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            for name in needles.names:
                if name in path.name:
                    found.setdefault(f"name:{name}", []).append(str(path))
            views = list(_views(path))
            for key, needle in needles.raw.items():
                hits = [w for w in _windows(needle) if any(w in v for v in views)]
                hits += [w for w in _windows(encoded[key]) if any(w in v for v in views)]
                if hits:
                    found.setdefault(key, []).append(str(path))
    return found


def search_events(instance: DagsterInstance, needles: Needles) -> list[str]:
    """Needles found in any event of any run of ``instance`` (serialized, metadata included)."""
    found = []
    for run in instance.get_runs():
        text = "\n".join(serialize_value(e) for e in instance.all_logs(run.run_id)).encode()
        for key, needle in needles.raw.items():
            if any(w in text for w in _windows(base64.b64encode(needle)) + _windows(needle)):
                found.append(key)
    return found


# -- the erased lake -------------------------------------------------------------------------


def _persistent(small_lake: LakeRun, root: Path) -> tuple[LakeRun, Path]:
    """A fork of the small lake in an instance with SQLite storage under ``root/home``."""
    run = small_lake.fork(root)
    home = root / "home"
    home.mkdir()
    run.instance = DagsterInstance.local_temp(str(home))
    run.instance.add_dynamic_partitions(crawls.name, [run.crawl])
    run.instance.add_dynamic_partitions(wat_slices.name, run.keys)
    return run, home


def _pick(lake: Lake, crawl: str) -> dict:
    """A downloaded image that the band grid shows."""
    sidecar = lake.path(REPORTS, f"aesthetic_subset-{crawl}-bands.png{SHOWS_SUFFIX}")
    shown = set(orjson.loads(Path(sidecar).read_bytes())["url_id"])
    results = lake.read(TableName.DOWNLOAD_RESULTS, [crawl]).to_pylist()
    return next(r for r in results if r["status"] == DOWNLOAD_SUCCESS and r["url_id"] in shown)


def _members(tar: Path) -> dict[str, bytes]:
    with tarfile.open(tar) as handle:
        return {m.name: handle.extractfile(m).read() for m in handle.getmembers()}  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def erased(small_lake: LakeRun, tmp_path_factory: pytest.TempPathFactory) -> Erased:
    run, home = _persistent(small_lake, tmp_path_factory.mktemp("erase"))
    lake = run.lake
    run.run(image_shards, partition=run.crawl)
    run.run(aesthetic_subset, partition=run.crawl)  # the band grid, into this instance
    target = _pick(lake, run.crawl)
    scores = lake.read_with_partition(TableName.CLIP_SCORES, "slice")
    slice_key = next(r["slice"] for r in scores.to_pylist() if r["url_id"] == target["url_id"])
    # hop 3 again with image bytes kept (an embedding cached elsewhere would not be fetched)
    shutil.rmtree(lake.path(TableName.IMAGE_EMBEDDINGS))
    keep = {"ops": {TableName.CLIP_SCORES: {"config": {"keep_images": True}}}}
    run.run(clip_scores, partition=slice_key, run_config=keep)

    stored = lake.read(TableName.IMAGE_EMBEDDINGS).to_pylist()
    row = next(r for r in stored if r["url_id"] == target["url_id"])
    assert row["image"] and row["sha256"] == target["sha256"]
    tar = Path(lake.path(TableName.IMAGE_SHARDS, f"partition={run.crawl}", target["shard"]))
    members = _members(tar)
    grid = Path(lake.path(REPORTS, f"aesthetic_subset-{run.crawl}-bands.png"))
    needles = Needles(
        raw={
            "original_bytes": row["image"],
            "resized_bytes": members[f"{target['key']}.jpg"],
            "embedding_f32": np.asarray(row["embedding"], np.float32).tobytes(),
            "embedding_f16": np.asarray(row["embedding"], np.float16).tobytes(),
            "grid_png": grid.read_bytes(),
        },
        names={target["sha256"]},
    )
    # the ANN indexes trace by image builds (one holds the embedding's float32 bytes)
    ann.partition_indexes(lake, TableName.IMAGE_EMBEDDINGS, row["model_id"])
    ann.partition_indexes(lake, TableName.CLIP_SCORES)
    found_before = search([lake_root(run)], needles)
    versions = {t: lake.version(t) for t in DECISION_TABLES}
    embeddings_version = lake.version(TableName.IMAGE_EMBEDDINGS)

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["erase", "--url", target["URL"], "--lake", lake.root, "--dry-run"]) == 0
    dry_run = orjson.loads(out.getvalue())
    assert _members(tar) == members and grid.exists()

    result = erase_job.execute_in_process(
        run_config={"ops": {"erase_images": {"config": {"urls": [target["URL"]]}}}},
        instance=run.instance,
        resources={"lake": run.resources["lake"]},
    )
    assert result.success
    pair_ids = {
        r["pair_id"]
        for r in lake.read(TableName.CLIP_SCORES).to_pylist()
        if r["url_id"] == target["url_id"]
    }
    return Erased(
        run, home, target["URL"], target["url_id"], pair_ids, target["key"], tar, members,
        needles, found_before, versions, embeddings_version, dry_run,
        result.output_for_node("erase_images"),
    )  # fmt: skip


def lake_root(run: LakeRun) -> Path:
    return run.root / "lake"


# -- tests -----------------------------------------------------------------------------------


def test_search_finds_the_image_before_erasure(erased: Erased) -> None:
    """The search can fail: before erasure it finds every copy the lake held."""
    before = erased.found_before
    assert {"original_bytes", "resized_bytes", "embedding_f32", "grid_png"} <= set(before)
    assert any(TableName.IMAGE_EMBEDDINGS in p for p in before["original_bytes"])
    assert any(p.endswith(".tar") for p in before["resized_bytes"])
    assert any(p.endswith(".png") for p in before["grid_png"])
    assert any(p.endswith(".usearch") for p in before["embedding_f32"])


def test_no_copy_is_left_in_the_lake_or_the_dagster_storage(erased: Erased) -> None:
    found = search([lake_root(erased.run), erased.home], erased.needles)
    assert found == {}
    assert search_events(erased.run.instance, erased.needles) == []
    grid_events = [
        serialize_value(e)
        for r in erased.run.instance.get_runs()
        for e in erased.run.instance.all_logs(r.run_id)
    ]
    assert any("aesthetic_subset-" in e and "-bands.png" in e for e in grid_events)


def test_tar_lost_exactly_the_erased_members(erased: Erased) -> None:
    after = _members(erased.tar)
    erased_names = {n for n in erased.members_before if n.split(".", 1)[0] == erased.key}
    assert len(erased_names) >= 3  # image, caption, json
    assert after == {n: b for n, b in erased.members_before.items() if n not in erased_names}
    samples = list(read_shard_samples([str(erased.tar)]))
    assert len(samples) == len({n.split(".", 1)[0] for n in after})
    assert erased.key not in {s.key for s in samples}
    assert not erased.pair_ids & {s.pair_id for s in samples}
    batch = erased.tar.parent
    for parquet in [erased.tar.with_suffix(".parquet"), batch / INPUT_FILE]:
        rows = pq.read_table(parquet).to_pylist()
        assert rows and not any(r["url_id"] == erased.url_id for r in rows)


def test_byte_tables_lose_rows_and_history_decision_tables_keep_it(erased: Erased) -> None:
    lake = erased.lake
    assert set(byte_tables(lake)) == {TableName.IMAGE_EMBEDDINGS}
    embeddings = lake.read(TableName.IMAGE_EMBEDDINGS, columns=["url_id"])
    assert erased.url_id not in embeddings.column("url_id").to_pylist()
    assert embeddings.num_rows > 0
    with pytest.raises(FileNotFoundError):  # vacuumed: the version holding the row has no files
        lake.read(TableName.IMAGE_EMBEDDINGS, version=erased.embeddings_version)
    for table, version in erased.versions.items():
        assert lake.version(table) == version, table  # erasure never writes a decision table
        for v in (1, version):
            old = lake.read(table, version=v)
            assert old is not None and old.num_rows > 0, (table, v)
        ids = lake.read(table, columns=["url_id"]).column("url_id")
        assert pc.any(pc.equal(ids, erased.url_id)).as_py(), table


def test_tombstone_records_the_erasure(erased: Erased) -> None:
    stones = erased.lake.read(TableName.ERASURES, [erased.erasure_id]).to_pylist()
    assert {s["pair_id"] for s in stones} == erased.pair_ids
    assert {s["url_id"] for s in stones} == {erased.url_id}
    assert {s["reason"] for s in stones} == {"owner_request"}
    what = set(stones[0]["what"])
    assert TableName.IMAGE_EMBEDDINGS in what
    assert any(w.startswith("tar:") and w.endswith(f"#{erased.key}") for w in what)
    assert any(w.startswith("report:aesthetic_subset-") for w in what)
    assert stones[0]["erased_at"].tzinfo is not None
    # what the erasure named is withdrawn too: no later hop fetches the image again
    from pipeline.hops.dataset.opt_outs import load

    assert load(erased.lake).match(erased.url) == "opted_out:url"


def test_dry_run_counted_what_the_erasure_removed(erased: Erased) -> None:
    dry = erased.dry_run
    assert dry["dry_run"] and dry["tar_members"] == 3 and dry["tombstones"] == len(erased.pair_ids)
    assert dry["table_rows"] == {TableName.IMAGE_EMBEDDINGS: 1}
    assert dry["reports"] == [f"aesthetic_subset-{erased.run.crawl}-bands.png"]
    # erasing again finds the pairs (decisions keep them) but no bytes left to remove
    again = resolve(erased.lake, EraseRequest(urls=(erased.url,)))
    assert again.url_ids == {erased.url_id}


def test_request_needs_a_target_and_valid_hashes() -> None:
    with pytest.raises(ValueError, match="name a URL"):
        EraseRequest()
    with pytest.raises(ValueError, match="sha256"):
        EraseRequest(sha256s=("abc",))
