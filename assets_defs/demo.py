"""The main job on the embedded default: generate and serve the synthetic web, then
materialize every asset for every partition through a persistent Dagster instance."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dagster import DagsterInstance

from assets_defs.definitions import build_definitions
from assets_defs.demo_profiles import DEFAULT, DemoProfile
from assets_defs.partitions import wat_slices
from assets_defs.progress import PROGRESS_LOGS
from pipeline.lake.tables import DOWNLOAD_REFUSED_STATUSES, TABLES, TableName
from pipeline.settings import Settings

LOCAL_INSTANCE_YAML = """\
# Local instance for the demo (SQLite under DAGSTER_HOME). Production: infra/dagster.yaml.
telemetry:
  enabled: false
freshness:
  enabled: true
"""


@dataclass
class DemoSummary:
    """What the demo did, for the closing printout."""

    dagster_home: Path
    lake_root: str
    partitions: list[str]
    runs: int
    profile: str = DEFAULT.name
    table_rows: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    later_drops: dict[str, dict[str, int]] = field(default_factory=dict)
    downloads: dict[str, int] = field(default_factory=dict)
    training: dict[str, object] = field(default_factory=dict)
    feedback: dict[str, object] = field(default_factory=dict)
    ai_share: dict[str, str] = field(default_factory=dict)
    """Per crawl: its AI share (``ai_share`` asset) in one line."""
    seconds: float = 0.0

    def render(self) -> str:
        lines = [
            f"crawl2diffusion demo ({self.profile}): {self.runs} runs, "
            f"{len(self.partitions)} partitions, {self.seconds:.0f} s",
            f"  lake: {self.lake_root}",
        ]
        lines += [f"  {name}: {rows:,} rows" for name, rows in self.table_rows.items()]
        if self.dropped:
            drops = ", ".join(f"{k} {v:,}" for k, v in sorted(self.dropped.items()))
            lines.append(f"  alt_text_pairs dropped: {drops}")
        for table, reasons in self.later_drops.items():
            drops = ", ".join(f"{k} {v:,}" for k, v in sorted(reasons.items()))
            lines.append(f"  {table} dropped: {drops or 'none'}")
        if self.downloads:
            status = ", ".join(f"{k} {v:,}" for k, v in sorted(self.downloads.items()))
            lines.append(f"  download_results: {status}")
            refused = ", ".join(
                f"{s} {self.downloads.get(s, 0):,}" for s in DOWNLOAD_REFUSED_STATUSES
            )
            lines.append(
                "  refused at download (bytes changed since hop 3, private redirect, bomb, "
                "withdrawn): " + refused
            )
        for key, value in self.training.items():
            lines.append(f"  {key}: {value}")
        for key, value in self.feedback.items():
            lines.append(f"  feedback crawl {key}: {value}")
        for crawl, line in self.ai_share.items():
            lines.append(f"  AI share of {crawl}: {line}")
        lines.append(
            f"  open the UI: DAGSTER_HOME={self.dagster_home} "
            ".venv/bin/dagster dev -w workspace.yaml   (or: make ui)"
        )
        return "\n".join(lines)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _outcome(result) -> str:
    """Per asset the run materialized: rows kept and dropped (or rows), from its metadata."""
    parts = []
    for event in result.get_asset_materialization_events():
        m = event.step_materialization_data.materialization
        meta = {k: v.value for k, v in m.metadata.items()}
        name = m.asset_key.to_user_string()
        if "rows_kept" in meta:
            dropped = meta.get("rows_in", meta["rows_kept"]) - meta["rows_kept"]
            parts.append(f"{name} {meta['rows_kept']:,} kept, {dropped:,} dropped")
        elif "dagster/row_count" in meta:
            parts.append(f"{name} {meta['dagster/row_count']:,} rows")
        else:
            parts.append(name)
    return "; ".join(parts)


def _run(job, instance: DagsterInstance, partition: str | None, run_config: dict):
    """Run ``job`` (one line as it starts and one as it ends) and raise if it fails."""
    label = f"{job.name}" + (f" [{partition}]" if partition else "")
    _say(f"-> {label}")
    started = time.perf_counter()
    result = job.execute_in_process(
        instance=instance, partition_key=partition, run_config={**run_config, **PROGRESS_LOGS}
    )
    seconds = time.perf_counter() - started
    if not result.success:
        _say(f"!! {label} failed after {seconds:.0f} s")
        raise RuntimeError(f"{job.name} failed" + (f" for {partition}" if partition else ""))
    _say(f"<- {label} {seconds:.0f} s: {_outcome(result)}")
    return result


def prepare_instance(data_dir: Path) -> DagsterInstance:
    """A persistent instance under ``data_dir/dagster_home`` (created on first use)."""
    home = data_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(LOCAL_INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return DagsterInstance.get()


def run_demo(
    data_dir: str | Path = "data",
    slice_size: int | None = None,
    web: dict | None = None,
    training: dict | None = None,
    profile: DemoProfile = DEFAULT,
    engine: str | None = None,
    ray_address: str | None = None,
) -> DemoSummary:
    """Run the main job at the size ``profile`` names (its web, slicing and jobs' run config)
    in ``data_dir``; ``slice_size``, ``web`` (SyntheticWebResource fields) and ``training``
    (``training_job``'s run config) replace the profile's when given. ``engine="ray"`` runs
    hops 1, 3 and the download on the Ray cluster at ``ray_address``, or on a local cluster
    started for the demo when no address is given."""
    chosen = Settings.from_env().override(engine=engine, ray_address=ray_address)
    if chosen.engine == "ray" and not chosen.ray_address:  # one local cluster for every run
        from pipeline.engine.cluster import LocalRayCluster

        with LocalRayCluster(num_cpus=os.cpu_count() or 2) as cluster:
            _say(f"local Ray cluster at {cluster.address} ({cluster.startup_s:.0f} s to start)")
            return run_demo(data_dir, slice_size, web, training, profile, "ray", cluster.address)
    started = time.perf_counter()
    slice_size = profile.slice_size if slice_size is None else slice_size
    web = profile.web if web is None else web
    training = profile.run_config("training_job") if training is None else training
    data = Path(data_dir).resolve()
    instance = prepare_instance(data)
    defs = build_definitions("demo", data, web, settings=chosen)
    _run(
        defs.resolve_job_def("crawl_manifest_job"),
        instance,
        None,
        {"ops": {TableName.CRAWL_MANIFEST: {"config": {"slice_size": slice_size}}}},
    )
    lake = defs.resources["lake"].lake()
    web_crawls = defs.resources["synthetic_web"].web_config().crawl_ids
    keys = _registered_slices(lake, instance, web_crawls)
    runs = 1 + _slice_jobs(defs, instance, keys, profile)
    dataset = defs.resolve_job_def("dataset_job")
    for crawl in web_crawls:
        _run(dataset, instance, crawl, profile.run_config("dataset_job"))
        runs += 1
    trained = _run(defs.resolve_job_def("training_job"), instance, None, training or {})
    runs += 1
    summary = DemoSummary(
        dagster_home=data / "dagster_home",
        lake_root=lake.root,
        partitions=keys,
        runs=runs,
        profile=profile.name,
    )
    _summarize_training(summary, lake, trained)
    if profile.feedback is not None:
        _feedback_loop(defs, instance, lake, profile, slice_size, summary, data)
    _summarize_ai_share(summary, lake)
    for table, entry in TABLES.items():  # every dataset table the demo wrote, in hop order
        manifests = [] if entry.files else lake.manifests(table)
        if manifests and entry.partitioning in ("none", "wat_slices", "crawls"):
            summary.table_rows[table] = sum(m["rows"] for m in manifests)
    pairs = lake.read(TableName.ALT_TEXT_PAIRS, columns=["kept", "drop_reason"])
    if pairs is not None:
        summary.table_rows["alt_text_pairs (kept)"] = int(sum(pairs.column("kept").to_pylist()))
        for reason in pairs.column("drop_reason").to_pylist():
            if reason:
                summary.dropped[reason] = summary.dropped.get(reason, 0) + 1
    for table in (TableName.CLIP_SCORES, TableName.AESTHETIC_SUBSET):
        data = lake.read(table, columns=["kept", "drop_reason"])
        if data is None:
            continue
        summary.table_rows[f"{table} (kept)"] = int(sum(data.column("kept").to_pylist()))
        reasons: dict[str, int] = {}
        for reason in data.column("drop_reason").to_pylist():
            if reason:
                reasons[reason] = reasons.get(reason, 0) + 1
        summary.later_drops[table] = reasons
    summary.seconds = time.perf_counter() - started
    return summary


def _registered_slices(lake, instance: DagsterInstance, crawl_ids) -> list[str]:
    """The manifest's slices of ``crawl_ids``, checked to be registered as partitions."""
    from pipeline.hops.crawl.manifest import crawl_of_partition

    manifest = lake.read(TableName.CRAWL_MANIFEST)
    keys = sorted(
        k for k in set(manifest.column("partition_key").to_pylist())
        if crawl_of_partition(k) in crawl_ids
    )  # fmt: skip
    registered = set(instance.get_dynamic_partitions(wat_slices.name))
    missing = [k for k in keys if k not in registered]
    if missing:
        raise RuntimeError(f"crawl_manifest did not register partitions {missing}")
    return keys


def _slice_jobs(defs, instance: DagsterInstance, keys: list[str], profile: DemoProfile) -> int:
    """Hops 1-3 for every slice in ``keys``, in order; the number of runs."""
    runs = 0
    for job_name in ("wat_to_pairs_job", "clip_filter_job"):
        job = defs.resolve_job_def(job_name)
        for key in keys:
            _run(job, instance, key, profile.run_config(job_name))
            runs += 1
    return runs


def _feedback_loop(defs, instance, lake, profile: DemoProfile, slice_size: int,
                   summary: DemoSummary, data: Path) -> None:  # fmt: skip
    """Grow the web by the feedback crawl from the trained checkpoint's samples, then run
    hops 1-3, the release, the aesthetic subset and the AI share on it."""
    from assets_defs.checkpoint import current_generator
    from pipeline.synthetic.feedback import GrownElsewise, grow_web, model_source

    started, cpu = time.perf_counter(), time.process_time()
    config = profile.feedback
    assert config is not None
    web = defs.resources["synthetic_web"]
    generator, _ = current_generator(lake, defs.resources["clip_model"], str(data / "work"))
    try:
        grow_web(web.root, model_source(generator, profile.feedback_steps), config)
        _say(f"<- feedback crawl {config.crawl_id} from checkpoint {generator.sha256[:16]}")
    except GrownElsewise as error:  # grown before from another checkpoint: keep that crawl
        _say(f"!! {error}; the feedback crawl is kept as it was")
    grown = json.loads((Path(web.root) / "manifest.json").read_text())["feedback"]
    _run(
        defs.resolve_job_def("crawl_manifest_job"),
        instance,
        None,
        {"ops": {TableName.CRAWL_MANIFEST: {"config": {"slice_size": slice_size}}}},
    )
    keys = _registered_slices(lake, instance, (config.crawl_id,))
    runs = 1 + _slice_jobs(defs, instance, keys, profile)
    _run(defs.resolve_job_def("release_job"), instance, config.crawl_id, {})
    summary.runs += runs + 1
    summary.partitions = summary.partitions + keys
    summary.feedback[config.crawl_id] = (
        f"{len(keys)} slice(s), images from checkpoint {grown['checkpoint_sha256'][:16]}, "
        f"{time.perf_counter() - started:.0f} s ({time.process_time() - cpu:.0f} s CPU)"
    )


def _summarize_ai_share(summary: DemoSummary, lake) -> None:
    """One line per crawl from the ``ai_share`` table."""
    from pipeline.provenance.ai_share_report import summary_line

    for crawl in lake.partitions(TableName.AI_SHARE):
        figures = lake.read(TableName.AI_SHARE, [crawl])
        if figures is not None:
            summary.ai_share[crawl] = summary_line(figures)


def _summarize_training(summary: DemoSummary, lake, trained) -> None:
    """Download statuses, the checkpoint, and the samples' and audit's verdicts."""
    results = lake.read(TableName.DOWNLOAD_RESULTS, columns=["status"])
    for status in results.column("status").to_pylist() if results is not None else []:
        summary.downloads[status] = summary.downloads.get(status, 0) + 1
    meta = {}
    for event in trained.get_asset_materialization_events():
        m = event.step_materialization_data.materialization
        meta[m.asset_key.to_user_string()] = {k: v.value for k, v in m.metadata.items()}
    model = meta.get(TableName.DIFFUSION_MODEL, {})
    summary.training[TableName.DIFFUSION_MODEL] = (
        f"{model.get('training_pairs')} pairs, {model.get('steps')} steps, final loss "
        f"{model.get('final_loss')}, checkpoint {str(model.get('checkpoint_sha256'))[:16]}"
    )
    for check in trained.get_asset_check_evaluations():
        values = {k: v.value for k, v in check.metadata.items()}
        if check.check_name == "follows_prompts":
            summary.training[TableName.SAMPLES] = (
                f"own-prompt CLIP similarity {values['own_prompt_similarity']:.3f} vs other "
                f"prompts {values['other_prompt_similarity']:.3f} (passed: {check.passed})"
            )
        if check.check_name == "no_replication":
            summary.training[TableName.REPLICATION_AUDIT] = (
                f"{values['flagged']} of {values['audited']} samples flagged as copies"
            )
        if check.check_name == "no_style_imitation":
            summary.training[TableName.STYLE_IMITATION] = (
                f"{len(values['imitated'])} of {values['scored']} artists imitated by name"
                + (f" ({', '.join(values['imitated'])})" if values["imitated"] else "")
            )
