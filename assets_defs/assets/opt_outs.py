"""``opt_outs`` (the list, kept in the lake and edited with ``crawl2diffusion opt-out``),
``opt_out_report``: the checkpoints that were trained on items the list now withdraws, and
``opt_out_not_reached``: copies of withdrawn images on URLs the list does not name."""

import json

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
from pipeline.hops.dataset import hash_lists, opt_out_reach
from pipeline.hops.dataset.opt_outs import load, trained_on_opted_out
from pipeline.hops.training.model_card import write_model_cards
from pipeline.lake.store import Lake
from pipeline.lake.tables import NOT_REACHED_MATCHES, TableName

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


def rewrite_current_cards(lake_: Lake) -> list[str]:
    """Rewrite the model cards of the run the current checkpoint belongs to (none: no model)."""
    from pipeline.hops.training.publish import CURRENT  # imports torch: not at load

    try:
        with lake_.fs.open(lake_.path(CURRENT), "rb") as fh:
            fingerprint = json.loads(fh.read())["fingerprint"]
    except FileNotFoundError:
        return []
    return write_model_cards(lake_, fingerprint)


@table_asset(
    TableName.OPT_OUT_NOT_REACHED,
    __name__,
    deps=[
        TableName.OPT_OUTS,
        TableName.CLIP_SCORES,
        TableName.LAION_DATASET,
        TableName.AESTHETIC_SUBSET,
        TableName.DOWNLOAD_RESULTS,
        TableName.DIFFUSION_MODEL,
    ],
    group_name="automation",
    kinds={"parquet"},
    checks=(
        AssetCheckSpec(
            "opt_outs_reach_every_copy",
            asset=TableName.OPT_OUT_NOT_REACHED,
            description="no copy of a withdrawn image (redirect, same file, near-duplicate) is "
            "still held by the release, the subset, the shards or a checkpoint",
        ),
    ),
)
def opt_out_not_reached(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    """Copies of withdrawn images served from URLs the opt-out list does not name (other
    domains' reposts, redirects), found by sha256 and the near-duplicate search, with the
    tables and checkpoints that still hold each."""
    started = stopwatch()
    lake_ = lake.lake()
    table = opt_out_reach.not_reached(lake_)
    uri = lake_.write_partition(TableName.OPT_OUT_NOT_REACHED, table)
    held = opt_out_reach.still_held(table)
    cards = rewrite_current_cards(lake_)  # the cards name the copies their model trained on
    by_match = {kind: table.column("match").to_pylist().count(kind) for kind in NOT_REACHED_MATCHES}
    by_entry: dict[str, int] = {}
    for entry in held.column("opt_out").to_pylist():
        by_entry[entry] = by_entry.get(entry, 0) + 1
    return table_result(
        context,
        TableName.OPT_OUT_NOT_REACHED,
        table,
        uri,
        started=started,
        checks=[
            AssetCheckResult(
                check_name="opt_outs_reach_every_copy",
                passed=held.num_rows == 0,
                severity=AssetCheckSeverity.WARN,
                metadata={"copies_found": table.num_rows, "still_held": held.num_rows},
            )
        ],
        metadata={
            "copies_found": MetadataValue.int(table.num_rows),
            "still_held": MetadataValue.int(held.num_rows),
            "by_match": MetadataValue.json(by_match),
            "still_held_by_opt_out": MetadataValue.json(by_entry),
            "not_reached": MetadataValue.md("\n".join(opt_out_reach.summary_lines(table))),
            "model_cards": MetadataValue.json(cards),
        },
    )
