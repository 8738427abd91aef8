"""Training examples from the image shards: the successful downloads of chosen crawls."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from pipeline.hops.download.shards import read_shard_samples
from pipeline.hops.training.train import TrainingExample
from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName


def successful_downloads(lake: Lake, crawls: Sequence[str]) -> pa.Table | None:
    """``download_results`` rows with status success, with the shard root of their crawl."""
    tables = []
    for crawl in crawls:
        results = lake.read(TableName.DOWNLOAD_RESULTS, [crawl])
        if results is None:
            continue
        ok = results.filter(pa.compute.equal(results.column("status"), "success"))
        root = lake.partition_uri(TableName.IMAGE_SHARDS, crawl)
        tables.append(ok.append_column("shards_root", pa.array([root] * ok.num_rows)))
    return pa.concat_tables(tables) if tables else None


def load_examples(
    lake: Lake, crawls: Sequence[str], pair_ids: set[str] | None = None
) -> list[TrainingExample]:
    """Every successfully downloaded image of ``crawls`` (optionally only ``pair_ids``), read
    from its WebDataset shard, once per pair_id, sorted by pair_id."""
    ok = successful_downloads(lake, crawls)
    if ok is None:
        return []
    rows = ok.select(["pair_id", "shard", "shards_root"]).to_pylist()
    wanted = {r["pair_id"] for r in rows if pair_ids is None or r["pair_id"] in pair_ids}
    shards = sorted({f"{r['shards_root']}/{r['shard']}" for r in rows if r["pair_id"] in wanted})
    examples: dict[str, TrainingExample] = {}
    for sample in read_shard_samples(shards, lake.storage_options):
        if sample.pair_id in wanted and sample.pair_id not in examples:
            examples[sample.pair_id] = TrainingExample(sample.pair_id, sample.caption, sample.image)
    return [examples[k] for k in sorted(examples)]
