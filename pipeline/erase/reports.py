"""Erase report grids (``_reports/*.png``) that show an erased image.

A grid is written with a sidecar naming the ``url_id``s and ``pair_id``s it shows
(:meth:`pipeline.lake.store.Lake.write_report`); a grid showing a target is deleted with its
sidecar (its source images are not kept, so it cannot be drawn again without them). Dagster
metadata only links to report files, so the grid is gone from there too.
"""

from __future__ import annotations

import orjson

from pipeline.erase.targets import Targets
from pipeline.lake.store import REPORTS, SHOWS_SUFFIX, Lake


def erase_reports(lake: Lake, targets: Targets, dry_run: bool = False) -> dict[str, set[str]]:
    """Report name -> the target url_ids it showed, for every grid deleted."""
    if not targets:
        return {}
    fs = lake.fs
    fs.invalidate_cache()
    by_pair = {t.pair_id: t.url_id for t in targets.rows if t.pair_id}
    removed: dict[str, set[str]] = {}
    for sidecar in sorted(fs.glob(lake.path(REPORTS, "*" + SHOWS_SUFFIX))):
        shows = orjson.loads(fs.cat_file(sidecar))
        hit = set(shows.get("url_id", [])) & targets.url_ids
        hit |= {by_pair[p] for p in shows.get("pair_id", []) if p in by_pair}
        if not hit:
            continue
        report = sidecar[: -len(SHOWS_SUFFIX)]
        removed[report.rsplit("/", 1)[-1]] = hit
        if not dry_run:
            if fs.exists(report):
                fs.rm_file(report)
            fs.rm_file(sidecar)
    return removed
