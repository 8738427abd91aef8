"""``dagster/column_lineage``: which upstream columns each table's columns derive from."""

from __future__ import annotations

from dagster import AssetKey, MetadataValue, TableColumnDep, TableColumnLineage

_Deps = dict[str, list[tuple[str, str]]]


def _same(upstream: str, *columns: str) -> _Deps:
    return {c: [(upstream, c)] for c in columns}


_RELEASED = (
    "pair_id",
    "url_id",
    "URL",
    "TEXT",
    "LANGUAGE",
    "WIDTH",
    "HEIGHT",
    "similarity",
    "punsafe",
    "pwatermark",
    "sha256",
)
"""The released dataset's columns that aesthetic_scores and aesthetic_subset carry unchanged."""

LINEAGE: dict[str, _Deps] = {
    "alt_text_pairs": {
        **_same(
            "wat_image_links",
            "pair_id",
            "url",
            "alt",
            "crawl_id",
            "page_url",
            "wat_path",
            "wat_record_offset",
            "link_index",
        ),
        "url_id": [("wat_image_links", "url")],
        "text": [("wat_image_links", "alt")],
        "language": [("wat_image_links", "alt")],
        "dedup_key": [("wat_image_links", "url"), ("wat_image_links", "alt")],
        "drop_reason": [
            ("wat_image_links", "url"),
            ("wat_image_links", "alt"),
            ("wat_image_links", "page_robots"),
        ],
    },
    "clip_scores": {
        **_same("alt_text_pairs", "pair_id", "url_id", "url", "text", "language", "crawl_id"),
        "similarity": [("alt_text_pairs", "text"), ("image_embeddings", "embedding")],
        "punsafe": [("image_embeddings", "embedding")],
        "pwatermark": [("image_embeddings", "embedding")],
        **_same("image_embeddings", "sha256", "width", "height", "n_bytes"),
    },
    "image_embeddings": {
        "url_id": [("alt_text_pairs", "url_id")],
        "url": [("alt_text_pairs", "url")],
    },
    "laion_dataset": {
        "URL": [("clip_scores", "url")],
        "TEXT": [("clip_scores", "text")],
        "WIDTH": [("clip_scores", "width")],
        "HEIGHT": [("clip_scores", "height")],
        "LANGUAGE": [("clip_scores", "language")],
        **_same(
            "clip_scores",
            "similarity",
            "punsafe",
            "pwatermark",
            "pair_id",
            "url_id",
            "sha256",
            "crawl_id",
        ),
        "subset": [("clip_scores", "language")],
    },
    "aesthetic_scores": {
        **_same("laion_dataset", *_RELEASED),
        "aesthetic": [("image_embeddings", "embedding")],
    },
    "aesthetic_subset": {
        **_same("aesthetic_scores", *_RELEASED, "aesthetic"),
        "aesthetic_band": [("aesthetic_scores", "aesthetic")],
        "drop_reason": [("aesthetic_scores", c) for c in ("aesthetic", "punsafe", "pwatermark")],
    },
    "download_results": {
        **_same("aesthetic_subset", "pair_id", "url_id", "URL", "TEXT"),
    },
}


def column_lineage(asset: str) -> dict[str, MetadataValue]:
    """The ``dagster/column_lineage`` entry for ``asset`` (empty if none is declared)."""
    deps = LINEAGE.get(asset)
    if not deps:
        return {}
    lineage = TableColumnLineage(
        deps_by_column={
            column: [TableColumnDep(AssetKey(a), c) for a, c in sources]
            for column, sources in deps.items()
        }
    )
    return {"dagster/column_lineage": MetadataValue.column_lineage(lineage)}
