"""Jobs: register the crawl partitions, run the per-slice hops, then the per-crawl dataset."""

from dagster import AssetSelection, define_asset_job

from pipeline.lake.tables import TableName

crawl_manifest_job = define_asset_job(
    "crawl_manifest_job",
    selection=AssetSelection.assets(TableName.CRAWL_MANIFEST),
    description="List the crawls' WAT files and register one partition per slice.",
)

wat_to_pairs_job = define_asset_job(
    "wat_to_pairs_job",
    selection=AssetSelection.assets(TableName.WAT_IMAGE_LINKS, TableName.ALT_TEXT_PAIRS),
    description="Hops 1 and 2 for one slice: WAT extraction, then alt-text parsing.",
)

clip_filter_job = define_asset_job(
    "clip_filter_job",
    selection=AssetSelection.assets(TableName.CLIP_SCORES, TableName.IMAGE_EMBEDDINGS),
    description="Hop 3 for one slice: fetch, embed and score the kept pairs with CLIP.",
)

dataset_job = define_asset_job(
    "dataset_job",
    selection=AssetSelection.assets(
        TableName.LAION_DATASET,
        TableName.AESTHETIC_SCORES,
        TableName.AESTHETIC_SUBSET,
        TableName.IMAGE_SHARDS,
        TableName.DOWNLOAD_RESULTS,
        TableName.DATASET_REPORT,
        TableName.AI_SHARE,
    ),
    description="One crawl's released dataset, its aesthetic scores, the aesthetic subset, "
    "its image shards (img2dataset), its datasheet and its AI share.",
)

release_job = define_asset_job(
    "release_job",
    selection=AssetSelection.assets(
        TableName.LAION_DATASET,
        TableName.AESTHETIC_SCORES,
        TableName.AESTHETIC_SUBSET,
        TableName.AI_SHARE,
    ),
    description="One crawl's released dataset, aesthetic scores and subset, and its AI share, "
    "without downloading (the demo's feedback crawl).",
)

training_job = define_asset_job(
    "training_job",
    selection=AssetSelection.assets(
        TableName.DIFFUSION_MODEL,
        TableName.SAMPLES,
        TableName.REPLICATION_AUDIT,
        TableName.STYLE_IMITATION,
    ),
    description="Train the diffusion model on every crawl's shards, sample it, audit it "
    "(replication, style imitation).",
)

opt_out_report_job = define_asset_job(
    "opt_out_report_job",
    selection=AssetSelection.assets(TableName.OPT_OUT_REPORT, TableName.OPT_OUT_NOT_REACHED),
    description="Name the checkpoints trained on items the opt-out list withdraws, and the "
    "copies of withdrawn images on other URLs that it does not reach.",
)
