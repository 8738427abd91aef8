"""Declared column lineage names real columns of real tables, and reaches Dagster metadata."""

from __future__ import annotations

from dagster import TableColumnLineage

from assets_defs.column_lineage import LINEAGE, column_lineage
from pipeline.aesthetic import SCORES_SCHEMA, SUBSET_SCHEMA
from pipeline.alt_text import ALT_TEXT_SCHEMA
from pipeline.clip_filter import CLIP_SCORES_SCHEMA, embeddings_schema
from pipeline.dataset import RELEASE_SCHEMA
from pipeline.shards import DOWNLOAD_RESULTS_SCHEMA
from pipeline.wat import IMAGE_LINK_SCHEMA

SCHEMAS = {
    "wat_image_links": IMAGE_LINK_SCHEMA,
    "alt_text_pairs": ALT_TEXT_SCHEMA,
    "clip_scores": CLIP_SCORES_SCHEMA,
    "image_embeddings": embeddings_schema(128),
    "laion_dataset": RELEASE_SCHEMA,
    "aesthetic_scores": SCORES_SCHEMA,
    "aesthetic_subset": SUBSET_SCHEMA,
    "download_results": DOWNLOAD_RESULTS_SCHEMA,
}


def test_every_declared_column_exists_downstream_and_upstream() -> None:
    for asset, deps in LINEAGE.items():
        assert set(deps) <= set(SCHEMAS[asset].names), asset
        for column, sources in deps.items():
            for upstream, upstream_column in sources:
                assert upstream_column in SCHEMAS[upstream].names, (asset, column, upstream)


def test_metadata_entry_is_dagster_column_lineage() -> None:
    entry = column_lineage("laion_dataset")["dagster/column_lineage"]
    lineage = entry.value
    assert isinstance(lineage, TableColumnLineage)
    assert [d.column_name for d in lineage.deps_by_column["TEXT"]] == ["text"]
    assert lineage.deps_by_column["TEXT"][0].asset_key.to_user_string() == "clip_scores"
    assert column_lineage("crawl_manifest") == {}
