"""Standard Dagster metadata for a lake table."""

from __future__ import annotations

import ast
import hashlib
import importlib.machinery
import importlib.util
import resource
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from dagster import MetadataValue, TableColumn, TableSchema

from pipeline.lake.store import Lake
from pipeline.reports import markdown_link


def column_schema(schema: pa.Schema) -> TableSchema:
    return TableSchema(
        columns=[TableColumn(name=f.name, type=str(f.type), description=None) for f in schema]
    )


def table_metadata(schema: pa.Schema, rows: int, uri: str) -> dict[str, Any]:
    """``dagster/row_count``, ``dagster/column_schema`` and ``dagster/uri`` for one write."""
    return {
        "dagster/row_count": MetadataValue.int(rows),
        "dagster/column_schema": MetadataValue.table_schema(column_schema(schema)),
        "dagster/uri": MetadataValue.path(uri),
    }


def report_metadata(
    lake: Lake,
    key: str,
    name: str,
    png: bytes,
    alt: str,
    shows: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """Write ``png`` to the lake's ``_reports/name`` and refer to it: ``key`` (a Markdown
    link) and ``key_png`` (its path). Metadata never holds the bytes, so erasing the file
    (``shows``: the images a grid shows) reaches it."""
    uri = lake.write_report(name, png, shows)
    return {key: MetadataValue.md(markdown_link(uri, alt)), f"{key}_png": MetadataValue.path(uri)}


@dataclass(frozen=True)
class Stopwatch:
    """Wall and CPU clocks at a step's start (:func:`stopwatch`)."""

    wall: float
    cpu: float
    """User + system seconds of this process, all threads (``time.process_time``)."""
    children: float
    """User + system seconds of its finished, waited-for child processes."""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stopwatch() -> Stopwatch:
    """Start timing a step: pass the result to ``table_result(started=...)``."""
    return Stopwatch(time.perf_counter(), time.process_time(), _children_cpu())


def elapsed_metadata(started: Stopwatch | float) -> dict[str, Any]:
    """``duration_s`` (wall) since ``started`` and, for a :class:`Stopwatch`, ``cpu_s``: CPU
    seconds of the step, its own threads (``cpu_s/process``) plus its child processes
    (``cpu_s/children``: worker pools, a training child), so a hop's CPU cost adds up."""
    if not isinstance(started, Stopwatch):
        return {"duration_s": MetadataValue.float(round(time.perf_counter() - started, 3))}
    own = time.process_time() - started.cpu
    children = _children_cpu() - started.children
    return {
        "duration_s": MetadataValue.float(round(time.perf_counter() - started.wall, 3)),
        "cpu_s": MetadataValue.float(round(own + children, 3)),
        "cpu_s/process": MetadataValue.float(round(own, 3)),
        "cpu_s/children": MetadataValue.float(round(children, 3)),
    }


def counts_metadata(prefix: str, counts: Mapping[str, int], names: tuple[str, ...] = ()) -> dict:
    """One int entry per reason (every known reason present, zero when unseen)."""
    keys = sorted(set(names) | set(counts))
    return {f"{prefix}/{k}": MetadataValue.int(int(counts.get(k, 0))) for k in keys}


def import_closure(module: str, roots: tuple[str, ...] = ("pipeline",)) -> list[Path]:
    """The source files of ``module`` and of every module under ``roots`` that it imports,
    directly or through each other, at module level or inside functions (read from the
    source, so lazy imports count), sorted."""
    seen: dict[str, Path] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        found = _find_spec(name)
        if found is None or not found.origin or not found.origin.endswith(".py"):
            continue
        path = Path(found.origin)
        seen[name] = path
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported in _imports(path, package):
            if imported.split(".")[0] in roots and imported not in seen:
                pending.append(imported)
    return sorted(set(seen.values()))


def _find_spec(name: str) -> importlib.machinery.ModuleSpec | None:
    """The spec of module ``name`` without importing anything (``importlib.util.find_spec``
    would import its parents, and so torch for a hop that uses it); None when ``name`` is not
    a module (``a.b`` where ``b`` is a name in module ``a``)."""
    top, *rest = name.split(".")
    found = importlib.util.find_spec(top)
    for i in range(len(rest)):
        if found is None or found.submodule_search_locations is None:
            return None
        full = ".".join([top, *rest[: i + 1]])
        found = importlib.machinery.PathFinder.find_spec(full, found.submodule_search_locations)
    return found


def _imports(path: Path, package: str) -> list[str]:
    """Module names imported by the source at ``path`` (``from a import b`` yields ``a`` and
    ``a.b``, since ``b`` may be a submodule)."""
    names = []
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names]
    return names


def code_version(module: str, roots: tuple[str, ...] = ("pipeline",)) -> str:
    """A Dagster code version that changes whenever the source of ``module`` (the asset's
    own module) or of any ``pipeline`` module in its import closure changes."""
    digest = hashlib.sha256()
    for path in import_closure(module, roots):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]
