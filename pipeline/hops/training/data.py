"""Training examples from the image shards: the successful downloads of chosen crawls."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.hops.download.shards import read_shard_samples
from pipeline.hops.training.train import TrainingExample
from pipeline.lake.store import Lake
from pipeline.lake.tables import TRAINING_SOURCE_COLUMNS as SOURCE_COLUMNS
from pipeline.lake.tables import TableName


def successful_downloads(lake: Lake, crawls: Sequence[str]) -> pa.Table | None:
    """``download_results`` rows with status success, read at one pinned version of the
    table, with their ``crawl``, the shard root of their crawl (``shards_root``), that
    version (``download_results_version``) and hop 3's ``md5`` and ``pdq`` of the image."""
    version = lake.version(TableName.DOWNLOAD_RESULTS)
    if version is None:
        return None
    tables = []
    for crawl in crawls:
        results = lake.read(TableName.DOWNLOAD_RESULTS, [crawl], version=version)
        if results is None:
            continue
        ok = results.filter(pc.equal(results.column("status"), "success"))
        root = lake.partition_uri(TableName.IMAGE_SHARDS, crawl)
        n = ok.num_rows
        ok = ok.append_column("crawl", pa.array([crawl] * n, pa.string()))
        ok = ok.append_column("shards_root", pa.array([root] * n, pa.string()))
        ok = ok.append_column("download_results_version", pa.array([version] * n, pa.int64()))
        tables.append(ok)
    if not tables:
        return None
    return _with_image_hashes(lake, pa.concat_tables(tables))


def _with_image_hashes(lake: Lake, downloads: pa.Table) -> pa.Table:
    """``downloads`` with the ``md5`` and ``pdq`` hop 3 computed of the same bytes (the
    download is verified against hop 3's sha256, so hop 3's hashes are the file's)."""
    scores = lake.read(TableName.CLIP_SCORES, columns=["sha256", "md5", "pdq"])
    found: dict[str, dict] = {}
    for row in scores.to_pylist() if scores is not None else []:
        if row["sha256"] and (row["md5"] or row["pdq"]):
            known = found.setdefault(row["sha256"], {"md5": None, "pdq": None})
            known["md5"] = known["md5"] or row["md5"]
            known["pdq"] = known["pdq"] or row["pdq"]
    shas = downloads.column("sha256").to_pylist()
    for name in ("md5", "pdq"):
        values = [found.get(sha, {}).get(name) for sha in shas]
        downloads = downloads.append_column(name, pa.array(values, pa.string()))
    return downloads


def load_examples(
    lake: Lake, crawls: Sequence[str], pair_ids: set[str] | None = None
) -> list[TrainingExample]:
    """Every successfully downloaded image of ``crawls`` (optionally only ``pair_ids``), read
    from its WebDataset shard, once per pair_id, sorted by pair_id; each carries its source
    (URL, url_id, sha256, crawl, shard, key, pinned ``download_results`` version)."""
    ok = successful_downloads(lake, crawls)
    if ok is None:
        return []
    rows = ok.select(["pair_id", "shards_root", *SOURCE_COLUMNS]).to_pylist()
    sources = {}
    for r in rows:
        if (pair_ids is None or r["pair_id"] in pair_ids) and r["pair_id"] not in sources:
            sources[r["pair_id"]] = r
    shards = sorted({f"{r['shards_root']}/{r['shard']}" for r in sources.values()})
    examples: dict[str, TrainingExample] = {}
    for sample in read_shard_samples(shards, lake.storage_options):
        if sample.pair_id in sources and sample.pair_id not in examples:
            source = {k: sources[sample.pair_id][k] for k in SOURCE_COLUMNS}
            examples[sample.pair_id] = TrainingExample(
                sample.pair_id, sample.caption, sample.image, source
            )
    return [examples[k] for k in sorted(examples)]
