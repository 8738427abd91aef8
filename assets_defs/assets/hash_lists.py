"""``hash_lists``: takedown lists of image hashes, kept in the lake and edited with
``crawl2diffusion opt-out --hash-list FILE --name NAME``; the opt-out sensor records changes."""

from dagster import AssetSpec

from pipeline.lake.tables import TableName

hash_lists = AssetSpec(
    TableName.HASH_LISTS,
    group_name="automation",
    kinds={"parquet"},
    description="Named takedown lists of image hashes (md5, sha256, PDQ): hop 3 drops a fetched "
    "image that matches (`hash_list:<name>`), laion_dataset re-matches stored hashes when a list "
    "grows. Add with `crawl2diffusion opt-out --hash-list FILE --name NAME`.",
)
