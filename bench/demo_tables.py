"""Run the demo on a small synthetic web from a given source tree, or compare two demo lakes.

A refactoring that promises "no behaviour change" is checked by running the same small demo
from the tree before and after it and comparing every table row for row::

    .venv/bin/python bench/demo_tables.py run --src /path/to/old/checkout --out /tmp/old
    .venv/bin/python bench/demo_tables.py run --src . --out /tmp/new
    .venv/bin/python bench/demo_tables.py compare /tmp/old/lake /tmp/new/lake

``run`` imports the project from ``--src`` (bypassing the editable install) so two trees share
one virtual environment. ``compare`` reads every table's published partitions, sorts the rows
and reports per table whether they are equal; columns that hold wall-clock times differ by
nature and are left out (``--ignore``), and each run's data directory reads as ``<data>``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

WEB = {"pages_per_crawl": 120}
TRAINING = {
    "ops": {
        "diffusion_model": {"config": {"train_steps": 40, "checkpoint_every": 20}},
        "samples": {"config": {"steps": 10}},
        "replication_audit": {"config": {"steps": 10, "captions": 8}},
    }
}
VOLATILE = ("added_at",)


def run(src: Path, out: Path) -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in repr(f)]
    sys.path.insert(0, str(src.resolve()))
    for name in [m for m in sys.modules if m.split(".")[0] in ("pipeline", "assets_defs")]:
        del sys.modules[name]
    from assets_defs.demo import run_demo

    summary = run_demo(out, slice_size=2, web=WEB, training=TRAINING)
    print(summary.render())


def _tables(lake: Path) -> dict[str, Path]:
    """Every table of a lake: Delta tables (a ``_delta_log``) or, in lakes written before the
    Delta store, Parquet partitions published by ``_MANIFEST.json``."""
    found = {str(log.parent.relative_to(lake)): log.parent for log in lake.rglob("_delta_log")}
    for manifest in lake.rglob("_MANIFEST.json"):
        found.setdefault(str(manifest.parent.parent.relative_to(lake)), manifest.parent.parent)
    return dict(sorted(found.items()))


def _read_parquet(directory: Path):
    import orjson
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = []
    for manifest_path in sorted(directory.glob("partition=*/_MANIFEST.json")):
        manifest = orjson.loads(manifest_path.read_bytes())
        for name in manifest.get("files", [manifest.get("file")]):
            table = pq.read_table(manifest_path.parent / Path(name).name)
            key = pa.array([manifest_path.parent.name] * table.num_rows)
            parts.append(table.append_column("_partition", key))
    return pa.concat_tables(parts, promote_options="default")


def _read_delta(lake: Path, table: str):
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline.lake.store import Lake

    data = Lake(str(lake)).read_with_partition(table, "_partition")
    keys = pc.binary_join_element_wise("partition=", data.column("_partition"), "")
    return data.set_column(data.num_columns - 1, "_partition", keys.cast(pa.string()))


def _read(lake: Path, table: str, ignore: tuple[str, ...]):
    import pyarrow as pa
    import pyarrow.compute as pc

    path = lake / table
    data = _read_delta(lake, table) if (path / "_delta_log").exists() else _read_parquet(path)
    data = data.drop_columns([c for c in ignore if c in data.column_names])
    root = str(lake.resolve().parent)
    for i, column in enumerate(data.schema):  # the two runs' data directories differ
        if pa.types.is_string(column.type):
            data = data.set_column(
                i, column.name, pc.replace_substring(data.column(i), root, "<data>")
            )
    sortable = [c for c in data.column_names if not pa.types.is_nested(data.schema.field(c).type)]
    return data.sort_by([(c, "ascending") for c in sortable])


def compare(old: Path, new: Path, ignore: tuple[str, ...]) -> int:
    a, b = _tables(old), _tables(new)
    differ = 0
    for table in sorted(set(a) | set(b)):
        if table not in a or table not in b:
            print(f"{table:36s} only in {'new' if table in b else 'old'}")
            differ += 1
            continue
        left, right = _read(old, table, ignore), _read(new, table, ignore)
        same = left.schema == right.schema and left.equals(right)
        differ += not same
        print(f"{table:36s} {left.num_rows:7d} rows  {'identical' if same else 'DIFFERENT'}")
    print("all tables identical" if not differ else f"{differ} tables differ")
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--src", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("compare")
    c.add_argument("old", type=Path)
    c.add_argument("new", type=Path)
    c.add_argument("--ignore", nargs="*", default=list(VOLATILE))
    args = parser.parse_args()
    if args.command == "run":
        run(args.src, args.out)
        return 0
    return compare(args.old, args.new, tuple(args.ignore))


if __name__ == "__main__":
    sys.exit(main())
