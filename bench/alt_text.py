"""Benchmark hop 2 (alt-text parsing) on one core, on a realistic hop-1 table.

Run from the repository root::

    .venv-bench/bin/python bench/alt_text.py                 # 5 MB generated WAT, all its links
    .venv-bench/bin/python bench/alt_text.py --size-mb 200 --rows 100000 --low-accuracy
    .venv-bench/bin/python bench/alt_text.py --wat data/web/crawl/some.warc.wat.gz   # any WAT file

The hop-1 table comes from our extractor
(``pipeline.hops.wat.records.extract_image_links``) run over a
deterministic Common Crawl-style WAT file (``bench/_watgen.py``, cached in ``bench/out/``)
or over ``--wat``. Then, in a fresh subprocess pinned to CPU 0 (lingua's worker threads
included), it times:

- the language detector's first use (lingua loads its models lazily), apart;
- ``parse_alt_texts`` as is (best of ``--repeat``), with ``detect_languages`` wrapped in a
  timer: detection is that time, rules+cleaning (URL rules, opt-out, ftfy cleaning, dedup,
  the table build) the rest;
- for information, the two costly rule parts alone: ``clean_alt`` over every alt and
  ``check_url`` + ``normalize_url`` over every URL.

Prints rows/s, kept pairs/s, the time split between rules+cleaning and language detection,
the drop reasons, the top languages and the child's peak RSS. Exit status non-zero only on
a crash.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _watgen  # the bench folder is not a package

ROOT = Path(__file__).resolve().parent.parent


def child(table_path: str, repeat: int, low_accuracy: bool) -> dict[str, Any]:
    """Time hop 2 on the hop-1 table saved at ``table_path`` (runs pinned to one core)."""
    import pyarrow.parquet as pq

    import pipeline.hops.alt_text.pairs as alt_text
    from pipeline.lake.urls import HostPolicy, check_url, normalize_url

    links = pq.read_table(table_path)
    rules = alt_text.AltTextRules(low_accuracy_language_mode=low_accuracy)
    out: dict[str, Any] = {"rows": links.num_rows}

    started = time.perf_counter()
    alt_text.detect_languages(["a small red house by the lake", "ein kleines Haus"], rules)
    out["detector_warmup_s"] = time.perf_counter() - started

    alts = [a for a in links.column("alt").to_pylist() if a is not None]
    started = time.perf_counter()
    for alt in alts:
        alt_text.clean_alt(alt)
    out["clean_alt_s"] = time.perf_counter() - started
    out["clean_alt_n"] = len(alts)

    urls = links.column("url").to_pylist()
    policy = HostPolicy.from_list(rules.private_host_allowlist)
    started = time.perf_counter()
    for url in urls:
        if check_url(url, policy)[0]:
            normalize_url(url)
    out["url_rules_s"] = time.perf_counter() - started

    real_detect = alt_text.detect_languages
    detect_times: list[float] = []
    detect_counts: list[int] = []

    def timed_detect(texts: Any, rules_: Any) -> list[tuple[str | None, float]]:
        started = time.perf_counter()
        found = real_detect(texts, rules_)
        detect_times.append(time.perf_counter() - started)
        detect_counts.append(len(texts))
        return found

    runs = []
    alt_text.detect_languages = timed_detect  # type: ignore[assignment]
    try:
        for _ in range(repeat):
            detect_times.clear()
            detect_counts.clear()
            started = time.perf_counter()
            result = alt_text.parse_alt_texts(links, rules)
            total = time.perf_counter() - started
            runs.append((total, sum(detect_times), sum(detect_counts)))
    finally:
        alt_text.detect_languages = real_detect  # type: ignore[assignment]
    total, detect, detect_n = min(runs)
    out["full_s"] = total
    out["full_all_s"] = [round(run[0], 2) for run in runs]
    out["detect_s"] = detect
    out["detect_n"] = detect_n
    out["rules_s"] = total - detect
    out["kept"] = result.rows_kept
    out["dropped"] = dict(result.dropped.most_common())
    languages = Counter(
        code
        for code, kept in zip(
            result.table.column("language").to_pylist(),
            result.table.column("kept").to_pylist(),
            strict=True,
        )
        if kept
    )
    out["languages"] = languages.most_common(12)
    out["peak_rss_mb"] = _watgen.peak_rss_mb()
    return out


def build_links_table(wat: Path, rows: int, dest: Path) -> tuple[int, float]:
    """Run our extractor over ``wat`` (the first ``rows`` links, 0 = all) into ``dest``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.hops.wat.records import iter_image_link_batches

    started = time.perf_counter()
    batches = []
    count = 0
    for batch in iter_image_link_batches(str(wat), "bench"):
        if rows and count + batch.num_rows > rows:
            batch = batch.slice(0, rows - count)
        batches.append(batch)
        count += batch.num_rows
        if rows and count >= rows:
            break
    pq.write_table(pa.Table.from_batches(batches), dest)
    return count, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=5, help="generated WAT size, MiB")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wat", type=Path, help="use this WAT file instead of generating one")
    parser.add_argument("--rows", type=int, default=0, help="first N image links (0 = all)")
    parser.add_argument("--repeat", type=int, default=1, help="timed full runs, best kept")
    parser.add_argument("--low-accuracy", action="store_true", help="lingua low-accuracy mode")
    parser.add_argument("--child", nargs=1, metavar="TABLE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {0})
        print(json.dumps(child(args.child[0], args.repeat, args.low_accuracy)))
        return 0

    started = time.perf_counter()
    if args.wat:
        wat_path = args.wat
        print(f"WAT file      {wat_path}")
    else:
        wat = _watgen.ensure_wat(args.size_mb, args.seed)
        wat_path = wat.path
        how = "cached" if wat.cached else f"generated in {wat.seconds:.1f} s"
        print(
            f"WAT file      {wat.path.relative_to(ROOT)} ({how}; "
            f"{wat.path.stat().st_size / 1e6:.1f} MB, {wat.stats.img_links:,} IMG@/src links)"
        )
    table = _watgen.OUT_DIR / f"links-{wat_path.name}-{args.rows}.parquet"
    _watgen.OUT_DIR.mkdir(parents=True, exist_ok=True)
    rows, seconds = build_links_table(wat_path, args.rows, table)
    print(f"hop-1 table   {rows:,} rows (extracted in {seconds:.1f} s)")

    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(table), "--repeat", str(args.repeat)]
        + (["--low-accuracy"] if args.low_accuracy else []),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    table.unlink(missing_ok=True)
    if proc.returncode != 0:
        print(f"CRASH parse_alt_texts child (rc={proc.returncode}):\n{proc.stderr[-3000:]}")
        return 1
    r = json.loads(proc.stdout.strip().splitlines()[-1])

    mode = "low" if args.low_accuracy else "high"
    full, rules_s, detect_s = r["full_s"], r["rules_s"], r["detect_s"]
    if r["kept"] != r["detect_n"]:
        print(f"note: {r['detect_n']:,} texts went to detection, {r['kept']:,} rows kept")
    print(f"\nparse_alt_texts on one core (lingua {mode}-accuracy, all languages)")
    print(
        f"  full            {full:7.2f} s  {r['rows'] / full:10,.0f} rows/s  "
        f"{r['kept'] / full:9,.0f} kept pairs/s   runs {r['full_all_s']}"
    )
    split = rules_s + detect_s
    print(
        f"  rules+cleaning  {rules_s:7.2f} s  {r['rows'] / rules_s:10,.0f} rows/s   "
        f"({100 * rules_s / split:.0f}% of rules+detection)"
    )
    print(
        f"    of which ftfy clean_alt {r['clean_alt_s']:.2f} s for {r['clean_alt_n']:,} alts "
        f"({1e6 * r['clean_alt_s'] / max(r['clean_alt_n'], 1):.1f} us each), URL rules "
        f"{r['url_rules_s']:.2f} s for {r['rows']:,} URLs "
        f"({1e6 * r['url_rules_s'] / max(r['rows'], 1):.1f} us each)"
    )
    print(
        f"  lang detection  {detect_s:7.2f} s  {r['detect_n'] / detect_s:10,.0f} texts/s  "
        f"({100 * detect_s / split:.0f}% of rules+detection; "
        f"{1e6 * detect_s / max(r['detect_n'], 1):.0f} us a text)"
    )
    print(f"  detector warm-up (model loading) {r['detector_warmup_s']:.2f} s, not counted above")
    print(f"  peak RSS        {r['peak_rss_mb']:.0f} MB")
    print(f"\n  kept {r['kept']:,} of {r['rows']:,} rows; dropped: {r['dropped']}")
    print(f"  languages of kept rows: {r['languages']}")

    print(f"\nbench/alt_text.py took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
