"""The table registry describes every table once, correctly, and nothing else names a table."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from dagster import TableColumnLineage

from assets_defs.column_lineage import column_lineage
from pipeline.lake.tables import TABLES, TableName, TableSpec, embeddings_schema, spec

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "pipeline" / "lake" / "tables.py"
CODE_DIRS = ("pipeline", "assets_defs", "quality", "crawl2diffusion", "tests")


def _columns(entry: TableSpec) -> set[str]:
    if entry.name == TableName.IMAGE_EMBEDDINGS:
        return set(embeddings_schema(128).names)
    assert entry.schema is not None, entry.name
    return set(entry.schema.names)


def _expectation_columns(entry: TableSpec) -> set[str]:
    named = set()
    for expect in entry.expectations:
        for key in ("column", "column_A", "column_B"):
            if key in expect.kwargs:
                named.add(expect.kwargs[key])
        named.update(expect.kwargs.get("column_list", []))
    return named


@pytest.mark.parametrize("name", [n for n, e in TABLES.items() if not e.files])
def test_every_column_the_registry_names_exists(name: str) -> None:
    entry = TABLES[name]
    columns = _columns(entry)
    assert set(entry.keys) <= columns
    assert set(entry.traced) <= columns
    assert _expectation_columns(entry) <= columns
    assert set(entry.lineage) <= columns
    for column, sources in entry.lineage.items():
        for upstream, upstream_column in sources:
            assert upstream_column in _columns(TABLES[upstream]), (name, column, upstream)
    if "drop_reason" in columns and "kept" in columns:
        assert entry.drop_reasons, f"{name} drops rows but declares no reasons"


def test_traced_tables_say_how_to_sort() -> None:
    for entry in TABLES.values():
        assert bool(entry.traced) == bool(entry.trace_order), entry.name


def test_every_asset_is_a_registered_table() -> None:
    from assets_defs.definitions import defs

    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys <= set(TABLES), keys - set(TABLES)
    assert spec(TableName.CLIP_SCORES).name == TableName.CLIP_SCORES
    with pytest.raises(KeyError, match="no table 'nope'"):
        spec("nope")


def _table_name_literals(path: Path) -> list[tuple[int, str]]:
    names = set(TABLES)
    return [
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
    ]


def test_no_table_name_literal_outside_the_registry() -> None:
    found = {
        str(path.relative_to(ROOT)): hits
        for directory in CODE_DIRS
        for path in sorted((ROOT / directory).rglob("*.py"))
        if path != REGISTRY and (hits := _table_name_literals(path))
    }
    assert found == {}, "use pipeline.lake.tables.TableName instead"


def test_the_literal_check_can_fail(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    name = TableName.CLIP_SCORES
    module.write_text(f'lake.read("{name}")\nx = "{name} is a table"\n')
    assert _table_name_literals(module) == [(1, name)]


def test_metadata_entry_is_dagster_column_lineage() -> None:
    entry = column_lineage(TableName.LAION_DATASET)["dagster/column_lineage"]
    lineage = entry.value
    assert isinstance(lineage, TableColumnLineage)
    assert [d.column_name for d in lineage.deps_by_column["TEXT"]] == ["text"]
    assert lineage.deps_by_column["TEXT"][0].asset_key.to_user_string() == TableName.CLIP_SCORES
    assert column_lineage(TableName.CRAWL_MANIFEST) == {}
