"""Jobs: register the crawl partitions, run the per-slice hops, then the per-crawl dataset."""

from dagster import AssetSelection, define_asset_job

from assets_defs.partitions import crawls, wat_slices

crawl_manifest_job = define_asset_job(
    "crawl_manifest_job",
    selection=AssetSelection.assets("crawl_manifest"),
    description="List the crawls' WAT files and register one partition per slice.",
)

wat_to_pairs_job = define_asset_job(
    "wat_to_pairs_job",
    selection=AssetSelection.assets("wat_image_links", "alt_text_pairs"),
    partitions_def=wat_slices,
    description="Hops 1 and 2 for one slice: WAT extraction, then alt-text parsing.",
)

clip_filter_job = define_asset_job(
    "clip_filter_job",
    selection=AssetSelection.assets("clip_scores", "image_embeddings"),
    partitions_def=wat_slices,
    description="Hop 3 for one slice: fetch, embed and score the kept pairs with CLIP.",
)

dataset_job = define_asset_job(
    "dataset_job",
    selection=AssetSelection.assets(
        "laion_dataset", "aesthetic_scores", "aesthetic_subset", "image_shards", "download_results"
    ),
    partitions_def=crawls,
    description="One crawl's released dataset, its aesthetic scores, the aesthetic subset and "
    "its image shards (img2dataset).",
)

training_job = define_asset_job(
    "training_job",
    selection=AssetSelection.assets("diffusion_model", "samples", "replication_audit"),
    description="Train the diffusion model on every crawl's shards, sample it, audit it.",
)

opt_out_report_job = define_asset_job(
    "opt_out_report_job",
    selection=AssetSelection.assets("opt_out_report"),
    description="Name the checkpoints trained on items the opt-out list withdraws.",
)
