"""Benchmark hop 1 (WAT extraction) against cc2dataset, on one core, on a realistic WAT file.

Run from the repository root::

    make bench                               # own .venv-bench with cc2dataset (pulls pyspark)
    .venv-bench/bin/python bench/wat_extract.py                    # 200 MB file, ours vs cc2dataset
    .venv-bench/bin/python bench/wat_extract.py --size-mb 1000 --ours-only   # the memory check
    .venv-bench/bin/python bench/wat_extract.py --source real      # the real excerpts' records

What it does:

1. Generates (or reuses from ``bench/out/``) a deterministic Common Crawl-style WAT file of at
   least ``--size-mb`` MiB compressed (see ``bench/_watgen.py``), or with ``--source real`` one
   built from the real excerpts' records with their link lists varied (``bench/_watreal.py``),
   so the ratio is also measured on pages the project did not design.
2. Times, each in a fresh subprocess pinned to CPU 0 (``os.sched_setaffinity``), best of
   ``--repeat`` runs: ISA-L member-by-member inflation alone (the floor), our
   ``pipeline.hops.wat.records.iter_image_link_batches`` (counting rows), and cc2dataset's
   ``process_wat(path, "image")``, which reads the file into memory and calls its
   ``extract_documents_from_wat`` (FastWARC + simdjson). Peak memory is the child's
   ``VmHWM`` (peak resident set), imports included. Each extractor first reads a small
   warm-up file once: what a worker process pays once (lazy imports, numba loading its
   compiled code) is timed apart, as a worker reading a crawl's files pays it once.
3. Compares the (page URL, image URL, alt) multisets of both where their rules agree: an
   ``IMG@/src`` link with a non-empty ``alt`` whose resolved URL is http(s). Ours also keeps
   links without alt, with an empty alt and with non-http URLs (hop 2 decides on them);
   those are counted as rule differences, not disagreements.

Targets (printed as PASS/MISS, never the exit status): ours at least 2x cc2dataset's pairs/s,
and ours under 400 MB peak RSS. The exit status is non-zero only when a child crashes or the
two extractors disagree beyond their rule differences.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _watgen  # the bench folder is not a package
import _watreal

ROOT = Path(__file__).resolve().parent.parent
SPEED_TARGET = 2.0
RSS_TARGET_MB = 400.0
FASTWARC_NOTE = ""


# --- children (each runs in its own process, pinned to one core) -------------------------


def _pin() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})


def use_pipeline_from(path: str | None) -> None:
    """Import ``pipeline`` from another checkout (to measure a patch before applying it):
    drop the editable-install finder, which would otherwise win over ``sys.path``."""
    if not path:
        return
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, str(Path(path).resolve()))
    import pipeline

    if not Path(pipeline.__file__).resolve().is_relative_to(Path(path).resolve()):
        raise RuntimeError(f"pipeline imported from {pipeline.__file__}, not {path}")


def warm_up_wat() -> str:
    """A small WAT file (one chunk of the generator, 300 pages) that each extractor reads once
    before the timed file: what a process pays once (lazy imports, numba loading its compiled
    code) is then timed apart, as a worker reading a crawl's files pays it once."""
    path = _watgen.OUT_DIR / "warm-up-300-pages.warc.wat.gz"
    if not path.exists():
        _watgen.OUT_DIR.mkdir(parents=True, exist_ok=True)
        stats = _watgen.ChunkStats()
        data = _watgen.warcinfo_member(path.name, stats) + _watgen.build_chunk((99, 0))[0]
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return str(path)


def _timed(work: Any) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def child_inflate(path: str) -> dict[str, Any]:
    """ISA-L member-by-member inflation only: the floor under any extractor."""
    from pipeline.hops.wat.members import iter_members

    started = time.perf_counter()
    members = inflated = 0
    with open(path, "rb") as stream:
        for member in iter_members(stream):
            members += 1
            inflated += len(member.data)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "records": members, "inflated_bytes": inflated}


def child_ours(path: str) -> dict[str, Any]:
    """Our extractor: iterate every batch and count rows (and, cheaply, the alt pairs)."""
    import pyarrow.compute as pc

    from pipeline.hops.wat.records import ExtractStats, iter_image_link_batches

    setup = _timed(lambda: sum(b.num_rows for b in iter_image_link_batches(warm_up_wat())))
    stats = ExtractStats()
    rows = pairs = 0
    started = time.perf_counter()
    for batch in iter_image_link_batches(path, "bench", stats=stats):
        rows += batch.num_rows
        comparable = pc.and_(
            pc.greater(pc.fill_null(pc.utf8_length(batch["alt"]), 0), 0),
            pc.or_(
                pc.starts_with(batch["url"], "http://"), pc.starts_with(batch["url"], "https://")
            ),
        )
        pairs += pc.sum(comparable).as_py() or 0
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "setup_seconds": setup,
        "rows": rows,
        "pairs": pairs,
        "records": stats.records_read,
        "records_with_html": stats.records_with_html,
        "records_failed": dict(stats.records_failed),
    }


def _install_fastwarc_shim() -> str:
    """Make cc2dataset's FastWARC calls work with the installed FastWARC, if they do not.

    cc2dataset 1.5 calls ``ArchiveIterator(BytesIO, record_types=WarcRecordType.metadata,
    parse_http=False)`` and ``simdjson.load(record.reader)``. FastWARC 2.x still accepts those
    (it detects gzip itself); should a version not, the shim wraps the stream in FastWARC's
    ``GZipStream``/``GzipReader`` and leaves cc2dataset's extraction logic untouched.
    """
    import io

    import cc2dataset.main as cc
    from fastwarc import warc

    gen = _watgen._Gen(0, 0)
    probe = gen.record("http://example.com/", "2024-05-18T01:58:10Z", gen.uuid(), b"{}")
    try:
        payloads = [
            record.reader.read()
            for record in cc.ArchiveIterator(
                io.BytesIO(probe), record_types=cc.WarcRecordType.metadata, parse_http=False
            )
        ]
        if payloads == [b"{}"]:
            return "none needed (FastWARC's API as cc2dataset calls it works unchanged)"
    except Exception:  # any failure means the shim is needed
        pass
    import fastwarc.stream_io as sio

    gzip_stream = getattr(sio, "GZipStream", None) or sio.GzipReader
    original = warc.ArchiveIterator

    def archive_iterator(stream: Any, *args: Any, **kwargs: Any) -> Any:
        return original(gzip_stream(stream), *args, **kwargs)

    cc.ArchiveIterator = archive_iterator
    return f"ArchiveIterator wrapped in {gzip_stream.__name__} (extraction logic unchanged)"


def child_cc2dataset(path: str) -> dict[str, Any]:
    """cc2dataset's per-file path: ``process_wat(path, "image")`` (reads the whole file)."""
    import cc2dataset.main as cc
    from loguru import logger

    logger.remove()  # it logs one line per file; a shard failure would show as 0 pairs
    shim = _install_fastwarc_shim()
    setup = _timed(lambda: sum(1 for _ in cc.process_wat(warm_up_wat(), "image")))
    pairs = 0
    started = time.perf_counter()
    for _ in cc.process_wat(path, "image"):
        pairs += 1
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "setup_seconds": setup, "pairs": pairs, "shim": shim}


def child_compare(path: str, examples: int = 5) -> dict[str, Any]:
    """(page, url, alt) agreement of both extractors where their rules agree."""
    import cc2dataset.main as cc
    from loguru import logger

    from pipeline.hops.wat.records import iter_image_link_batches

    logger.remove()
    _install_fastwarc_shim()
    theirs: Counter[tuple[str, str, str]] = Counter(
        (page, url, alt) for _uid, url, alt, _file, page in cc.process_wat(path, "image")
    )
    theirs_total = sum(theirs.values())
    both = 0
    ours_only: list[dict[str, Any]] = []
    ours_only_count = 0
    rule_diff: Counter[str] = Counter()
    excluded: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for batch in iter_image_link_batches(path, "bench"):
        cols = batch.select(["page_url", "url", "alt", "url_raw", "base_url"]).to_pydict()
        for page, url, alt, url_raw, base in zip(
            cols["page_url"],
            cols["url"],
            cols["alt"],
            cols["url_raw"],
            cols["base_url"],
            strict=True,
        ):
            if alt is None:
                rule_diff["IMG without alt attribute (ours keeps, hop 2 drops)"] += 1
                continue
            if not alt:
                rule_diff['IMG with alt="" (ours keeps, hop 2 drops)'] += 1
                continue
            if not _is_http(url):
                # cc2dataset drops non-http URLs after resolving; keep the rows to explain
                # any pair it found that ours resolved differently
                row = {"page_url": page, "url_raw": url_raw, "url": url, "base": base}
                excluded[(page, alt)].append(row)
                continue
            key = (page, url, alt)
            if theirs[key] > 0:
                theirs[key] -= 1
                both += 1
            else:
                ours_only_count += 1
                if len(ours_only) < examples:
                    ours_only.append({"page_url": page, "url": url, "alt": alt, "base": base})
    theirs_only: Counter[str] = Counter()
    theirs_examples: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (page, url, alt), count in theirs.items():
        if count <= 0:
            continue
        candidates = excluded.get((page, alt), [])
        match = next((r for r in candidates if r["base"] and not _is_http(r["base"])), None)
        if match is not None:
            reason = "relative Head.Base: ours did not resolve the base against the page URL"
            candidates.remove(match)
        else:
            reason = "unexplained"
            match = {}
        theirs_only[reason] += count
        if len(theirs_examples[reason]) < examples:
            theirs_examples[reason].append(
                {
                    "page_url": page,
                    "theirs_url": url,
                    "alt": alt,
                    "ours_url": match.get("url"),
                    "base": match.get("base"),
                    "url_raw": match.get("url_raw"),
                }
            )
    non_http = sum(len(v) for v in excluded.values())
    rule_diff["non-http URL after resolving, e.g. data: (ours keeps, hop 2 drops)"] = non_http - (
        theirs_only.total() - theirs_only["unexplained"]
    )
    return {
        "theirs_total": theirs_total,
        "both": both,
        "ours_only": ours_only_count,
        "ours_only_examples": ours_only,
        "theirs_only": dict(theirs_only),
        "theirs_only_examples": dict(theirs_examples),
        "rule_differences": dict(rule_diff),
    }


CHILDREN = {
    "inflate": child_inflate,
    "ours": child_ours,
    "cc2dataset": child_cc2dataset,
    "compare": child_compare,
}


def run_child(
    kind: str, path: Path, ours_path: str | None = None, timeout: float = 3600
) -> dict[str, Any]:
    """Run one child in a fresh interpreter; its result (plus peak RSS) comes back as JSON."""
    extra = ["--ours-path", ours_path] if ours_path else []
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} child failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def best_of(kind: str, path: Path, repeat: int, ours_path: str | None) -> dict[str, Any]:
    runs = [run_child(kind, path, ours_path) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["seconds"])
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    best["all_seconds"] = [round(r["seconds"], 2) for r in runs]
    return best


# --- report ---------------------------------------------------------------------------------


def _mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=200, help="compressed size, MiB")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--source",
        choices=("generator", "real"),
        default="generator",
        help="generator: bench/_watgen.py's pages; real: the real excerpts' records, link "
        "lists varied (bench/_watreal.py)",
    )
    parser.add_argument("--repeat", type=int, default=2, help="timed runs each, best kept")
    parser.add_argument("--ours-only", action="store_true", help="skip cc2dataset")
    parser.add_argument("--no-compare", action="store_true", help="skip the agreement check")
    parser.add_argument(
        "--ours-path",
        help="import our pipeline package from this directory instead (to measure a patch)",
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        kind, path = args.child
        _pin()
        use_pipeline_from(args.ours_path)
        result = CHILDREN[kind](path)
        result["peak_rss_mb"] = _watgen.peak_rss_mb()
        print(json.dumps(result))
        return 0

    started = time.perf_counter()
    if args.source == "real":
        wat = _watreal.ensure_real_wat(args.size_mb, args.seed)
    else:
        wat = _watgen.ensure_wat(args.size_mb, args.seed)
    st = wat.stats
    size = wat.path.stat().st_size
    how = "cached" if wat.cached else f"generated in {wat.seconds:.1f} s"
    print(f"WAT file      {wat.path.relative_to(ROOT)} ({how})")
    if args.ours_path:
        print(f"  ours from   {args.ours_path} (--ours-path)")
    print(
        f"  size        {size / 1e6:.1f} MB compressed, {st.inflated_bytes / 1e6:.1f} MB "
        f"inflated (x{st.inflated_bytes / size:.2f})"
    )
    print(
        f"  records     {st.records:,} ({st.pages:,} pages + warcinfo); links {st.links:,}; "
        f"IMG@/src {st.img_links:,}; IMG with non-empty alt {st.img_with_alt:,}"
    )
    per50 = 50 * 1e6 / size
    print(
        f"  per 50 MB   {st.records * per50:,.0f} records, {st.img_with_alt * per50:,.0f} IMG "
        f"with alt, {st.inflated_bytes * per50 / 1e6:.0f} MB inflated "
        f"(real CC WAT: 17,569 records, 209k, 224 MB)"
    )
    print(
        f"  pages       {st.pages_with_base:,} with Head.Base "
        f"({st.pages_with_relative_base:,} relative), {st.pages_noai:,} with robots noai"
    )

    failed = False
    results: dict[str, dict[str, Any]] = {}
    kinds = ["inflate", "ours"] + ([] if args.ours_only else ["cc2dataset"])
    for kind in kinds:
        try:
            results[kind] = best_of(kind, wat.path, args.repeat, args.ours_path)
        except Exception as exc:  # report and go on with the others
            print(f"CRASH {kind}: {exc}")
            failed = True

    print(f"\nTimings on one core (best of {args.repeat}; peak RSS = max over runs)")
    if "inflate" in results:
        r = results["inflate"]
        print(
            f"  ISA-L inflate only   {r['seconds']:7.2f} s  "
            f"{r['inflated_bytes'] / r['seconds'] / 1e6:6.0f} MB/s inflated   "
            f"peak RSS {r['peak_rss_mb']:6.0f} MB   runs {r['all_seconds']}"
        )
    ours = results.get("ours")
    theirs = results.get("cc2dataset")
    if ours:
        print(
            f"  ours                 {ours['seconds']:7.2f} s  {ours['rows']:,} IMG@/src rows "
            f"({ours['rows'] / ours['seconds']:,.0f} links/s), {ours['pairs']:,} alt pairs "
            f"({ours['pairs'] / ours['seconds']:,.0f} pairs/s)   peak RSS "
            f"{ours['peak_rss_mb']:6.0f} MB   runs {ours['all_seconds']}"
        )
        print(f"                       once per process (set-up): {ours['setup_seconds']:.2f} s")
        print(
            f"                       records {ours['records']:,}, with HTML "
            f"{ours['records_with_html']:,}, failed {ours['records_failed'] or 0}"
        )
        if ours["records"] != st.records:
            print(f"  ERROR ours read {ours['records']:,} records, the file has {st.records:,}")
            failed = True
    if theirs:
        print(
            f"  cc2dataset           {theirs['seconds']:7.2f} s  {theirs['pairs']:,} alt pairs "
            f"({theirs['pairs'] / theirs['seconds']:,.0f} pairs/s)   peak RSS "
            f"{theirs['peak_rss_mb']:6.0f} MB   runs {theirs['all_seconds']}"
        )
        print(f"                       once per process (set-up): {theirs['setup_seconds']:.2f} s")
        print(f"                       FastWARC compatibility shim: {theirs['shim']}")
        if theirs["pairs"] == 0 and ours and ours["pairs"]:
            print("  ERROR cc2dataset found no pairs (a whole-shard failure)")
            failed = True

    print("\nTargets")
    if ours and theirs:
        ratio = (ours["pairs"] / ours["seconds"]) / (theirs["pairs"] / theirs["seconds"])
        print(
            f"  {_mark(ratio >= SPEED_TARGET)}  ours/cc2dataset pairs/s = {ratio:.2f}x "
            f"(target >= {SPEED_TARGET:.0f}x; same-file time ratio "
            f"{theirs['seconds'] / ours['seconds']:.2f}x)"
        )
        first = (theirs["seconds"] + theirs["setup_seconds"]) / (
            ours["seconds"] + ours["setup_seconds"]
        )
        print(f"  info  a fresh process's first file, set-up included: {first:.2f}x")
    if ours:
        rss_ok = ours["peak_rss_mb"] < RSS_TARGET_MB
        print(
            f"  {_mark(rss_ok)}  ours peak RSS {ours['peak_rss_mb']:.0f} MB "
            f"(target < {RSS_TARGET_MB:.0f} MB; file {size / 1e6:.0f} MB)"
        )
    if theirs:
        print(f"  info  cc2dataset peak RSS {theirs['peak_rss_mb']:.0f} MB (reads the whole file)")

    if not args.ours_only and not args.no_compare and ours and theirs:
        try:
            cmp = run_child("compare", wat.path, args.ours_path)
        except Exception as exc:
            print(f"CRASH compare: {exc}")
            return 1
        print("\nAgreement on (page URL, image URL, alt) where both rules apply")
        print(
            f"  in both {cmp['both']:,}   only ours {cmp['ours_only']:,}   only cc2dataset "
            f"{sum(cmp['theirs_only'].values()):,}   (cc2dataset total {cmp['theirs_total']:,})"
        )
        print("  rule differences (rows ours keeps for hop 2, cc2dataset drops by design):")
        for reason, count in sorted(cmp["rule_differences"].items()):
            print(f"    {count:10,}  {reason}")
        for reason, count in cmp["theirs_only"].items():
            print(f"  only cc2dataset: {count:,}  {reason}")
            for ex in cmp["theirs_only_examples"][reason][:3]:
                print(f"    e.g. {json.dumps(ex, ensure_ascii=False)}")
        if cmp["ours_only"]:
            print(f"  only ours: {cmp['ours_only']:,}  unexplained")
            for ex in cmp["ours_only_examples"][:3]:
                print(f"    e.g. {json.dumps(ex, ensure_ascii=False)}")
        disagreements = cmp["ours_only"] + sum(cmp["theirs_only"].values())
        agree = disagreements == 0
        print(
            f"  {'PASS' if agree else 'FAIL'}  {disagreements:,} disagreements beyond rule "
            "differences"
            + ("" if agree else " (ours loses or invents pairs: a bug to fix, see above)")
        )
        failed = failed or not agree

    print(f"\nbench/wat_extract.py took {time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
