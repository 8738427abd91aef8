"""Jobs: register the crawl partitions, then run the per-slice hops."""

from dagster import AssetSelection, define_asset_job

from assets_defs.partitions import wat_slices

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
