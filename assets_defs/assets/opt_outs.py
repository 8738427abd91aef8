"""``opt_outs`` (the list, kept in the lake and edited with ``crawl2diffusion opt-out``) and
``opt_out_report``: the checkpoints that were trained on items the list now withdraws."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
)

from assets_defs.factory import table_asset, table_result
from assets_defs.metadata import stopwatch
from assets_defs.resources import LakeResource
from pipeline.hops.dataset import hash_lists
from pipeline.hops.dataset.opt_outs import load, trained_on_opted_out
from pipeline.lake.tables import TableName

opt_outs = AssetSpec(
    TableName.OPT_OUTS,
    group_name="automation",
    kinds={"parquet"},
    description="URLs, domains and image sha256s withdrawn by their owners (lake table "
    "`opt_outs`; add with `crawl2diffusion opt-out`). The opt-out sensor records each change.",
)


@table_asset(
    TableName.OPT_OUT_REPORT,
    __name__,
    deps=[TableName.OPT_OUTS, TableName.HASH_LISTS, TableName.DIFFUSION_MODEL],
    group_name="automation",
    kinds={"parquet"},
    checks=(
        AssetCheckSpec(
            "no_opted_out_training",
            asset=TableName.OPT_OUT_REPORT,
            description="no checkpoint was trained on an item the opt-out list withdraws",
        ),
    ),
)
def opt_out_report(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    """Every (checkpoint, withdrawn pair) it trained on, with how the pair matched."""
    started = stopwatch()
    lake_ = lake.lake()
    listed = load(lake_)
    lists = hash_lists.load(lake_)
    manifest = lake_.read_with_partition(TableName.TRAINING_MANIFEST, "run_fingerprint")
    report = trained_on_opted_out(listed, manifest, lists)
    uri = lake_.write_partition(TableName.OPT_OUT_REPORT, report)
    checkpoints = sorted(set(report.column("checkpoint_sha256").to_pylist()))
    lines = [
        f"- `{sha}`: {report.column('checkpoint_sha256').to_pylist().count(sha)} withdrawn pairs"
        for sha in checkpoints
    ]
    entries = lake_.read(TableName.OPT_OUTS)
    return table_result(
        context,
        TableName.OPT_OUT_REPORT,
        report,
        uri,
        started=started,
        checks=[
            AssetCheckResult(
                check_name="no_opted_out_training",
                passed=not checkpoints,
                severity=AssetCheckSeverity.WARN,
                metadata={"checkpoints": len(checkpoints), "pairs": report.num_rows},
            )
        ],
        metadata={
            "opt_out_entries": MetadataValue.int(entries.num_rows if entries is not None else 0),
            "checkpoints_trained_on_opted_out": MetadataValue.json(checkpoints),
            "report": MetadataValue.md("\n".join(lines) or "No checkpoint trained on them."),
        },
    )
