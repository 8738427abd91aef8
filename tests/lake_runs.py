"""A materialized lake shared by tests: its Dagster instance and resources, built once, and
forks (a copy of the lake in a fresh instance) for tests that change it or re-run a hop."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import AssetKey, DagsterInstance, materialize

from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName

SMALL_WEB = {"pages_per_crawl": 80, "wat_files_per_crawl": 2, "sites": 8}
"""SyntheticWebResource fields of the small web: two WAT files (two slices) of one crawl."""


def every_asset() -> list:
    """Every asset of the code location that can run, so any selection can be materialized."""
    from dagster import AssetsDefinition

    from assets_defs.definitions import ASSETS

    return [asset for asset in ASSETS if isinstance(asset, AssetsDefinition)]


def checks_passed(result: Any) -> None:
    """Every asset check of a run passed (``row_count_change`` only warns)."""
    failed = [
        (c.asset_key.to_user_string(), c.check_name, c.description)
        for c in result.get_asset_check_evaluations()
        if not c.passed and c.check_name != "row_count_change"
    ]
    assert not failed, failed


@dataclass
class LakeRun:
    """One lake under ``root``, the instance that materialized it, and its partitions."""

    root: Path
    instance: DagsterInstance
    resources: dict[str, Any]
    crawl: str
    keys: list[str]

    @property
    def lake(self) -> Lake:
        return Lake(str(self.root / "lake"))

    @property
    def web(self) -> Path:
        return Path(self.resources["synthetic_web"].root)

    def run(self, *assets: Any, partition: str | None = None, run_config: dict | None = None):
        """Materialize ``assets`` (one partition) in this run's instance; assert success."""
        result = materialize(
            every_asset(),
            selection=list(assets),
            partition_key=partition,
            instance=self.instance,
            resources=self.resources,
            run_config=run_config,
        )
        assert result.success
        return result

    def metadata(self, asset: str, partition: str | None = None) -> dict:
        """The latest materialization metadata of ``asset`` (and ``partition``) as values."""
        records = self.instance.fetch_materializations(AssetKey(asset), limit=50).records
        event = next(r for r in records if r.partition_key == partition)
        return {k: v.value for k, v in event.asset_materialization.metadata.items()}

    def fork(self, root: Path) -> LakeRun:
        """A copy of the lake under ``root`` in a fresh instance with the same partitions (the
        lineage index is left behind; a trace rebuilds it)."""
        from assets_defs.partitions import crawls, wat_slices
        from assets_defs.resources import LakeResource

        shutil.copytree(
            self.root / "lake", root / "lake", ignore=shutil.ignore_patterns("_lineage")
        )
        instance = DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(crawls.name, [self.crawl])
        instance.add_dynamic_partitions(wat_slices.name, self.keys)
        resources = {**self.resources, "lake": LakeResource(root=str(root / "lake"))}
        return LakeRun(root, instance, resources, self.crawl, list(self.keys))


def small_lake_resources(root: Path) -> dict[str, Any]:
    """The resources of the small lake under ``root``: its lake, the small web, the CLIP model
    (the code location's own, for a data folder at ``root``)."""
    from assets_defs.definitions import build_resources
    from pipeline.settings import Settings

    return build_resources(Settings(data=str(root)), web=SMALL_WEB)


def open_small_lake(root: Path, instance: DagsterInstance | None = None) -> LakeRun:
    """The small lake under ``root`` with its instance (opened again when not given: another
    test process may have built it) and the crawl's two partitions."""
    from assets_defs.partitions import crawls, wat_slices

    instance = instance or DagsterInstance.from_config(str(root / "dagster_home"))
    crawl = instance.get_dynamic_partitions(crawls.name)[0]
    keys = [k for k in instance.get_dynamic_partitions(wat_slices.name) if k.startswith(crawl)]
    assert len(keys) == 2, keys
    return LakeRun(root, instance, small_lake_resources(root), crawl, keys)


def build_small_lake(root: Path) -> LakeRun:
    """The small web's crawl through hops 1-3 (one slice per WAT file), the released dataset
    and the aesthetic subset, with every check passing, in an instance kept on disk."""
    from assets_defs.assets.aesthetics import aesthetic_scores, aesthetic_subset
    from assets_defs.assets.alt_text_pairs import alt_text_pairs
    from assets_defs.assets.clip_scores import clip_scores
    from assets_defs.assets.crawl_manifest import crawl_manifest
    from assets_defs.assets.laion_dataset import laion_dataset
    from assets_defs.assets.wat_image_links import wat_image_links

    (root / "dagster_home").mkdir(parents=True, exist_ok=True)
    instance = DagsterInstance.from_config(str(root / "dagster_home"))
    run = LakeRun(root, instance, small_lake_resources(root), crawl="", keys=[])
    run.run(
        crawl_manifest,
        run_config={"ops": {TableName.CRAWL_MANIFEST: {"config": {"slice_size": 1}}}},
    )
    run = open_small_lake(root, instance)
    for key in run.keys:
        checks_passed(run.run(wat_image_links, alt_text_pairs, clip_scores, partition=key))
    checks_passed(run.run(laion_dataset, aesthetic_scores, aesthetic_subset, partition=run.crawl))
    return run


def shared_small_lake(root: Path) -> LakeRun:
    """The small lake under ``root``, built by the first test process that asks for it (a file
    lock keeps the others waiting) and opened by the rest: pytest-xdist workers share one."""
    from filelock import FileLock

    root.mkdir(parents=True, exist_ok=True)
    built = root / "BUILT"
    with FileLock(str(root.with_suffix(".lock"))):
        if built.exists():
            return open_small_lake(root)
        run = build_small_lake(root)
        built.touch()
        return run
