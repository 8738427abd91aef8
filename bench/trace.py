"""Benchmark lineage tracing: one URL's journey on a lake of 5 million image links.

Run from the repository root::

    .venv/bin/python bench/trace.py                                  # 5 M links, 80 partitions
    .venv/bin/python bench/trace.py --rows 500000 --partitions 10    # a quick look

1. Generates (or reuses from ``bench/out/``) a deterministic lake: ``wat_image_links`` with
   ``--rows`` links in ``--partitions`` partitions over two crawls, and the matching
   ``alt_text_pairs`` (every row decided: kept, or dropped with a reason from
   ``pipeline.lake.tables.ALT_TEXT_DROP_REASONS``). Tables are built with numpy and pyarrow
   directly, not through WAT files. About 1.7 M distinct image URLs on 210 k pages of 10 k sites:
   logos and icons appear on many pages of their site, gallery images on a few, about half
   the pages of the first crawl are captured again in the second, and an image keeps its
   alt on most pages (so a later sighting of a pair is a ``duplicate``).
2. In a fresh process, deletes the lake's lineage index and times ``LineageIndex(lake)``,
   which builds it (the cost paid once per change of the lake), with its peak RSS.
3. In another fresh process, times ``LineageIndex(lake)`` on the up-to-date index (what the
   CLI and the ``trace_url`` job pay before their first query), then ``trace(url)`` for 200
   URLs in a shuffled order: 150 seen (100 drawn uniformly from the distinct URLs, 50 from
   the rows, so popular images weigh more; every tenth written in a non-normalized form)
   and 50 never seen; then 20 ``trace_pair`` and 20 ``trace_page`` calls; with its peak RSS.

Target (printed as PASS/MISS, never the exit status): p95 of ``trace(url)`` under 200 ms.
The exit status is non-zero only when a child crashes or a trace answers wrongly (a sampled
URL not found, a never-seen one found).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT_DIR = ROOT / "bench" / "out"
GENERATOR_VERSION = 1
TARGET_MS = 200.0
MERGE_ROWS = 100_000
MERGE_PARTITION = "CC-MAIN-2024-18_99999"
"""A partition the merge step publishes (re-publishes, on later runs: a re-run partition)."""
MERGE_TARGET_S, MERGE_TARGET_MB = 5.0, 1024.0

CRAWLS = ("CC-MAIN-2024-10", "CC-MAIN-2024-18")
SITES = 10_000
SHARED_IMAGES = 20  # logos and icons: on every page of their site
GALLERY = 200  # other images of a site, each on a few of its pages
ALT_POOL = 50_000
WATS_PER_PARTITION = 4
WORDS = [
    "red",
    "blue",
    "green",
    "amber",
    "misty",
    "quiet",
    "old",
    "small",
    "golden",
    "wild",
    "dark",
    "bright",
    "house",
    "lake",
    "forest",
    "cat",
    "dog",
    "bird",
    "mountain",
    "river",
    "city",
    "street",
    "bridge",
    "garden",
    "portrait",
    "sketch",
    "painting",
    "watercolor",
    "drawing",
    "photo",
    "illustration",
    "study",
    "morning",
    "evening",
    "winter",
    "summer",
    "harbor",
    "meadow",
    "tower",
    "window",
    "door",
    "field",
]
SHORT_ALTS = ("logo", "img", "pic", "icon", "ok")
LANGUAGES = ("en",) * 8 + ("de", "fr", "es", "ja", "it", "pt", "nl", "ru")


# --- deterministic numpy hashing ------------------------------------------------------------


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a well-spread 64-bit hash of each value."""
    x = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def _hash(a: np.ndarray, b: np.ndarray | int, salt: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return _mix(_mix(a.astype(np.uint64) + np.uint64(salt)) + np.asarray(b, dtype=np.uint64))


def _uniform(a: np.ndarray, b: np.ndarray | int, salt: int) -> np.ndarray:
    return (_hash(a, b, salt) >> np.uint64(11)).astype(np.float64) * 2.0**-53


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_SHIFTS = np.arange(60, -4, -4, dtype=np.uint64)


def _hex16(h: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """16 lower-case hex digits per value (as ``pipeline.lake.keys`` writes ids); null where not
    ``valid``."""
    digits = _HEX[((h[:, None] >> _SHIFTS) & np.uint64(15)).astype(np.uint8)]
    offsets = np.arange(0, 16 * (len(h) + 1), 16, dtype=np.int32)
    array = pa.StringArray.from_buffers(len(h), pa.py_buffer(offsets), pa.py_buffer(digits))
    return array if valid is None else pc.if_else(pa.array(valid), array, None)


# --- the lake -------------------------------------------------------------------------------


@dataclass
class Plan:
    rows: int
    partitions: int
    seed: int

    @property
    def name(self) -> str:
        return f"trace-lake-r{self.rows}-p{self.partitions}-s{self.seed}-v{GENERATOR_VERSION}"


def _captures(plan: Plan) -> dict[str, np.ndarray]:
    """Page captures of both crawls in crawl order: page id, link count, crawl, partition."""
    seed = np.uint64(plan.seed)
    per_crawl = plan.rows // len(CRAWLS)
    out: dict[str, list[np.ndarray]] = {"page": [], "n": [], "crawl": [], "partition": []}
    first_crawl_pages = 0
    for c in range(len(CRAWLS)):
        count = int(per_crawl / 12)  # mean ~20 links a page: plenty
        serial = np.arange(count, dtype=np.uint64)
        if c == 0:
            page = serial
            first_crawl_pages = count
        else:
            again = _uniform(serial, c, 11 + plan.seed) < 0.5
            old = _hash(serial, c, 12 + plan.seed) % np.uint64(first_crawl_pages)
            page = np.where(again, old, np.uint64(c * 10_000_000) + serial)
        u1, u2 = _uniform(page, seed, 13), _uniform(page, seed, 14)
        normal = np.sqrt(-2 * np.log1p(-u1)) * np.cos(2 * np.pi * u2)  # Box-Muller
        n = np.clip(np.exp(2.6 + 0.9 * normal), 1, 400).astype(np.int64)
        end = np.cumsum(n)
        stop = int(np.searchsorted(end, per_crawl)) + 1
        page, n, end = page[:stop], n[:stop].copy(), end[:stop]
        n[-1] -= int(end[-1]) - per_crawl
        parts = plan.partitions // len(CRAWLS)
        partition = (c * parts + (end - n) * parts // per_crawl).astype(np.int64)
        for key, value in (("page", page), ("n", n), ("crawl", np.full(len(n), c))):
            out[key].append(value)
        out["partition"].append(partition)
    return {key: np.concatenate(value) for key, value in out.items()}


def _host(site: int) -> str:
    return f"www.{WORDS[site % len(WORDS)]}{site}.{('com', 'net', 'org', 'de', 'fr')[site % 5]}"


def _url_strings(gids: np.ndarray) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """Resolved URL, URL as written, and kind (0 ok, 1 bad_url, 2 not_http, 3 private_host)
    of each distinct image (``gid = site * images_per_site + k``)."""
    per_site = SHARED_IMAGES + GALLERY
    u = _uniform(gids, 0, 21)
    kind = np.select([u < 0.001, u < 0.004, u < 0.006], [1, 2, 3], 0)
    urls, raws = [], []
    for gid, k in zip(gids.tolist(), kind.tolist(), strict=True):
        site, image = divmod(gid, per_site)
        if k == 1:
            url = raw = f"http://[{_host(site)}/img/{image}.jpg"
        elif k == 2:
            url = raw = f"data:image/gif;base64,R0lGOD{gid:x}"
        elif k == 3:
            url = raw = f"http://10.{site % 256}.{image % 256}.7/img/{image}.jpg"
        elif image < SHARED_IMAGES:
            raw = f"/static/{WORDS[image % len(WORDS)]}-{image}.png"
            url = f"https://{_host(site)}{raw}"
        else:
            word = WORDS[gid % len(WORDS)]
            url = f"https://cdn.{_host(site)}/images/{gid % 97:02d}/{word}-{gid:x}.jpg"
            raw = (
                url if gid % 3 else f"//cdn.{_host(site)}/images/{gid % 97:02d}/{word}-{gid:x}.jpg"
            )
        urls.append(url)
        raws.append(raw)
    return pa.array(urls, pa.string()), pa.array(raws, pa.string()), kind


def _alt_pool() -> pa.Array:
    words = np.array(WORDS)
    idx = np.arange(ALT_POOL, dtype=np.uint64)
    picks = [words[(_hash(idx, i, 31) % np.uint64(len(WORDS))).astype(np.int64)] for i in range(4)]
    phrases = [
        f"{a} {b} with {c} {d} no. {i}"
        for i, (a, b, c, d) in enumerate(zip(*(p.tolist() for p in picks), strict=True))
    ]
    return pa.array([*SHORT_ALTS, "", *phrases], pa.string())


def generate(plan: Plan, dest: Path) -> dict[str, Any]:
    """Write the lake under ``dest``; return its description."""
    from pipeline.lake.store import Lake
    from pipeline.lake.tables import ALT_TEXT_SCHEMA, IMAGE_LINK_SCHEMA

    started = time.perf_counter()
    cap = _captures(plan)
    n_caps = len(cap["n"])
    row_cap = np.repeat(np.arange(n_caps), cap["n"])
    starts = np.cumsum(cap["n"]) - cap["n"]
    j = (np.arange(len(row_cap)) - starts[row_cap]).astype(np.uint64)
    page = cap["page"][row_cap]
    site = _hash(page, 0, 1 + plan.seed) % np.uint64(SITES)
    shared = _uniform(page, j, 2) < 0.25
    k = np.where(
        shared,
        (SHARED_IMAGES * _uniform(page, j, 3) ** 2).astype(np.uint64),
        np.uint64(SHARED_IMAGES) + _hash(page, j, 4) % np.uint64(GALLERY),
    )
    gid = site * np.uint64(SHARED_IMAGES + GALLERY) + k
    ugid, inverse = np.unique(gid, return_inverse=True)
    urls, raws, url_kind = _url_strings(ugid)
    kind = url_kind[inverse]

    # alt: 0..4 short, 5 empty, 6.. phrases; -1 missing. Mostly the image's own alt.
    u = _uniform(page, j, 5)
    own = _uniform(page, j, 6) < 0.8
    phrase = np.where(own, _hash(gid, 0, 7), _hash(page, j, 8)) % np.uint64(ALT_POOL)
    alt_code = np.select(
        [u < 0.12, u < 0.20, u < 0.25],
        [-1, 5, (_hash(page, j, 9) % np.uint64(5)).astype(np.int64)],
        6 + phrase.astype(np.int64),
    )
    pair_key = _hash(gid, alt_code.astype(np.uint64), 10)

    # hop 2, in rule order; dedup keeps the first (url, text) of a crawl.
    noai = (_hash(site, 0, 14) % np.uint64(100)) == 0
    reason = np.select(
        [kind == 1, kind == 2, kind == 3, noai, alt_code == -1, alt_code == 5, alt_code < 5],
        [1, 2, 3, 4, 5, 6, 7],
        0,
    )
    crawl = cap["crawl"][row_cap]
    dedup = gid * np.uint64(ALT_POOL + 8) + alt_code.astype(np.uint64)
    candidate = np.flatnonzero(reason == 0)
    keys = np.stack([crawl[candidate].astype(np.uint64), dedup[candidate]], axis=1)
    _, first = np.unique(keys, axis=0, return_index=True)
    duplicate = np.ones(len(candidate), dtype=bool)
    duplicate[first] = False
    reason[candidate[duplicate]] = 8
    reasons = pa.array([None, *_drop_reasons()], pa.string())
    language = pa.array(LANGUAGES, pa.string())

    alts = _alt_pool()
    lake = Lake(str(dest))
    cap_wat = np.zeros(n_caps, dtype=np.int64)
    for p in range(plan.partitions):
        in_p = np.flatnonzero(cap["partition"] == p)
        cap_wat[in_p] = np.arange(len(in_p)) * WATS_PER_PARTITION // max(len(in_p), 1)
    size = 2_000 + (_hash(cap["page"], 0, 15) % np.uint64(40_000)).astype(np.int64)
    wat_offset = np.zeros(n_caps, dtype=np.int64)
    for key in np.unique(cap["partition"] * WATS_PER_PARTITION + cap_wat):
        in_file = np.flatnonzero(cap["partition"] * WATS_PER_PARTITION + cap_wat == key)
        wat_offset[in_file] = np.cumsum(size[in_file]) - size[in_file]
    pages = pa.array(
        [
            f"https://{_host(s)}/{WORDS[pg % len(WORDS)]}/{pg}.html"
            for pg, s in zip(
                cap["page"].tolist(),
                (_hash(cap["page"], 0, 1 + plan.seed) % np.uint64(SITES)).tolist(),
                strict=True,
            )
        ],
        pa.string(),
    )
    cap_ids = _hash(np.arange(n_caps), 0, 16)
    wat_ids = pa.array(
        [f"<urn:uuid:{h:016x}-0000-4000-8000-000000000000>" for h in cap_ids.tolist()]
    )
    warc_ids = pa.array(
        [f"<urn:uuid:{h:016x}-0000-4000-8000-00000000000f>" for h in cap_ids.tolist()]
    )
    base = 1_708_000_000 + cap["crawl"] * 700_000 + (cap_ids % np.uint64(600_000)).astype(np.int64)
    dates = pc.strftime(pa.array(base.astype("datetime64[s]")), "%Y-%m-%dT%H:%M:%SZ")

    row_start = 0
    keys_written = []
    for p in range(plan.partitions):
        caps = np.flatnonzero(cap["partition"] == p)
        rows = int(cap["n"][caps].sum())
        sl = slice(row_start, row_start + rows)
        row_start += rows
        c = int(cap["crawl"][caps[0]])
        slice_no = p - c * (plan.partitions // len(CRAWLS))
        crawl_id = CRAWLS[c]
        rc = row_cap[sl]
        files = [
            f"crawl-data/{crawl_id}/segments/17080{slice_no:05d}.{w}/wat/"
            f"{crawl_id}-20240220-{slice_no * WATS_PER_PARTITION + w:05d}.warc.wat.gz"
            for w in range(WATS_PER_PARTITION)
        ]
        wat_path = pa.array(files).take(pa.array(cap_wat[rc]))
        warc_file = pc.replace_substring(
            pc.replace_substring(wat_path, "/wat/", "/warc/"), ".warc.wat.gz", ".warc.gz"
        )
        rca = pa.array(rc)
        inv = pa.array(inverse[sl])
        alt_idx = pa.array(alt_code[sl], mask=alt_code[sl] < 0)
        alt = alts.take(alt_idx)
        url = urls.take(inv)
        page_url = pages.take(rca)
        links = pa.table(
            {
                "pair_id": _hex16(pair_key[sl]),
                "crawl_id": pa.array([crawl_id] * rows),
                "wat_path": wat_path,
                "wat_record_offset": pa.array(wat_offset[rc]),
                "wat_record_id": wat_ids.take(rca),
                "warc_record_id": warc_ids.take(rca),
                "page_url": page_url,
                "page_date": dates.take(rca),
                "warc_filename": warc_file,
                "warc_offset": pa.array(wat_offset[rc] * 5 + 311),
                "base_url": pa.nulls(rows, pa.string()),
                "page_robots": pc.if_else(pa.array(noai[sl]), "noai, noimageai", None),
                "link_index": pa.array(j[sl].astype(np.int32)),
                "url_raw": raws.take(inv),
                "url": url,
                "alt": alt,
            },
            schema=IMAGE_LINK_SCHEMA,
        )
        r = reason[sl]
        kept = r == 0
        reached_alt = (r == 0) | (r >= 5)
        with_text = reached_alt & (alt_code[sl] >= 0)
        lang = _hash(gid[sl], 0, 17) % np.uint64(len(LANGUAGES))
        score = 0.5 + 0.5 * _uniform(gid[sl], 0, 18)
        pairs = pa.table(
            {
                "pair_id": links["pair_id"],
                "url_id": _hex16(_hash(gid[sl], 0, 19), kind[sl] == 0),
                "url": url,
                "alt": alt,
                "text": pc.if_else(pa.array(with_text), alt, None),
                "language": pc.if_else(pa.array(kept), language.take(pa.array(lang)), None),
                "language_score": pa.array(score.astype(np.float32), mask=~kept),
                "language_detector": pc.if_else(pa.array(kept), "lingua-2.1.1:high", None),
                "dedup_key": _hex16(dedup[sl], (r == 0) | (r == 8)),
                "crawl_id": links["crawl_id"],
                "page_url": page_url,
                "wat_path": wat_path,
                "wat_record_offset": links["wat_record_offset"],
                "link_index": links["link_index"],
                "kept": pa.array(kept),
                "drop_reason": reasons.take(pa.array(r)),
            },
            schema=ALT_TEXT_SCHEMA,
        )
        key = f"{crawl_id}_{slice_no:05d}"
        lake.write_partition("wat_image_links", links, key)
        lake.write_partition("alt_text_pairs", pairs, key)
        keys_written.append(key)
    counts = np.bincount(reason, minlength=9)
    rng = np.random.default_rng(plan.seed)
    by_url = rng.choice(len(ugid), 100, replace=False)  # uniform over distinct URLs
    by_row = inverse[rng.choice(len(gid), 50, replace=False)]  # weighted by sightings
    seen = [urls[int(i)].as_py() for i in np.concatenate([by_url, by_row])]
    seen = [  # every tenth as written in another form: case, default port, fragment
        u.replace("https://", "HTTPS://").replace(".com/", ".COM:443/", 1) + "#top"
        if i % 10 == 0 and u.startswith("https://")
        else u
        for i, u in enumerate(seen)
    ]
    rows_picked = rng.choice(len(gid), 40, replace=False)
    sample = {
        "seen": seen,
        "never_seen": [f"https://cdn.{_host(i)}/images/00/never-{i}.jpg" for i in range(50)],
        "pair_ids": _hex16(pair_key[rows_picked[:20]]).to_pylist(),
        "pages": pages.take(pa.array(row_cap[rows_picked[20:]])).to_pylist(),
    }
    return {
        "rows": len(gid),
        "partitions": len(keys_written),
        "distinct_urls": len(ugid),
        "page_captures": n_caps,
        "distinct_pages": len(np.unique(cap["page"])),
        "kept": int(counts[0]),
        "dropped": {name: int(counts[i + 1]) for i, name in enumerate(_drop_reasons())},
        "generated_s": round(time.perf_counter() - started, 1),
        "bytes": sum(f.stat().st_size for f in dest.rglob("*.parquet")),
        "sample": sample,
    }


def _drop_reasons() -> tuple[str, ...]:
    from pipeline.lake.tables import ALT_TEXT_DROP_REASONS as DROP_REASONS

    order = ("bad_url", "not_http", "private_host", "page_noai")
    order += ("missing_alt", "empty_alt", "alt_too_short", "duplicate")
    # the generator draws no owner opt-outs (they need an opt-out list): every other reason
    missing = set(DROP_REASONS) - set(order)
    assert set(order) <= set(DROP_REASONS) and all(r.startswith("opted_out:") for r in missing), (
        "DROP_REASONS changed: update the generator"
    )
    return order


def ensure_lake(plan: Plan) -> tuple[Path, dict[str, Any], bool]:
    """The cached lake for ``plan`` (generated into a ``.partial`` folder, then renamed)."""
    final = OUT_DIR / plan.name
    info_path = final / "info.json"
    if info_path.exists():
        return final / "lake", json.loads(info_path.read_text()), True
    partial = OUT_DIR / f"{plan.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    info = generate(plan, partial / "lake")
    (partial / "info.json").write_text(json.dumps(info, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    return final / "lake", info, False


# --- measurements (each in a fresh process) ------------------------------------------------


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_build(lake_root: str) -> dict[str, Any]:
    """Time ``LineageIndex(lake)`` on a lake without an index (it builds one)."""
    from pipeline.lake.store import Lake
    from pipeline.lineage.index import LineageIndex, default_index_dir

    lake = Lake(lake_root)
    shutil.rmtree(default_index_dir(lake), ignore_errors=True)
    started = time.perf_counter()
    index = LineageIndex(lake)
    seconds = time.perf_counter() - started
    assert index.rebuilt
    size = sum(p.stat().st_size for p in index.generation.glob("*/*.parquet"))
    return {"build_s": seconds, "index_bytes": size, "pieces": index.pieces_built,
            "rss": _peak_rss_mb()}  # fmt: skip


def child_merge(lake_root: str) -> dict[str, Any]:
    """Publish (or re-publish) a partition of ``MERGE_ROWS`` links and their hop-2 rows,
    then time ``LineageIndex(lake)`` merging it into the up-to-date index, with the peak RSS
    of the merge alone (the kernel's high-water mark is reset after the write)."""
    from pipeline.lake.store import Lake
    from pipeline.lake.tables import TableName
    from pipeline.lineage.index import LineageIndex

    lake = Lake(lake_root)
    source = lake.partitions(TableName.WAT_IMAGE_LINKS)[0]
    for table in (TableName.WAT_IMAGE_LINKS, TableName.ALT_TEXT_PAIRS):
        rows = lake.read(table, [source]).slice(0, MERGE_ROWS)
        lake.write_partition(table, rows, MERGE_PARTITION)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: measure the merge only
    started = time.perf_counter()
    index = LineageIndex(lake)
    seconds = time.perf_counter() - started
    return {"merge_s": seconds, "pieces": index.pieces_built, "rss": _peak_rss_mb()}


def _timed(call: Any, values: list[str]) -> tuple[list[float], list[int]]:
    times, sightings = [], []
    for value in values:
        started = time.perf_counter()
        journey = call(value)
        times.append(1000 * (time.perf_counter() - started))
        sightings.append(len(journey.sightings))
    return times, sightings


def child_trace(lake_root: str, sample_path: str) -> dict[str, Any]:
    """Time opening the up-to-date index, then traces by URL, pair and page."""
    from pipeline.lake.store import Lake
    from pipeline.lineage.index import LineageIndex

    sample = json.loads(Path(sample_path).read_text())
    started = time.perf_counter()
    index = LineageIndex(Lake(lake_root))
    open_s = time.perf_counter() - started
    assert not index.rebuilt
    urls = sample["seen"] + sample["never_seen"]
    order = np.random.default_rng(1).permutation(len(urls))  # seen and unseen interleaved
    times, sightings = _timed(index.trace, [urls[i] for i in order])
    by_url = dict(zip(order.tolist(), sightings, strict=True))
    pair_ms, pair_n = _timed(index.trace_pair, sample["pair_ids"])
    page_ms, page_n = _timed(index.trace_page, sample["pages"])
    return {
        "open_s": open_s,
        "trace_ms": times,
        "seen_sightings": [by_url[i] for i in range(len(sample["seen"]))],
        "unseen_sightings": [by_url[i] for i in range(len(sample["seen"]), len(urls))],
        "pair_ms": pair_ms,
        "pair_found": sum(n > 0 for n in pair_n),
        "page_ms": page_ms,
        "page_rows": page_n,
        "rss": _peak_rss_mb(),
    }


def _child(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=ROOT
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {args[0]} failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="image links in the lake")
    parser.add_argument("--partitions", type=int, default=80, help="partitions (even)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        runs = {"build": child_build, "merge": child_merge, "trace": child_trace}
        out = runs[kind](*rest)
        print(json.dumps(out))
        return 0

    started = time.perf_counter()
    plan = Plan(args.rows, args.partitions, args.seed)
    lake, info, cached = ensure_lake(plan)
    how = "cached" if cached else f"generated in {info['generated_s']:.0f} s"
    print(
        f"lake         {lake.relative_to(ROOT)} ({how})\n"
        f"             {info['rows']:,} links in {info['partitions']} partitions of "
        f"{len(CRAWLS)} crawls, {info['distinct_urls']:,} distinct URLs, "
        f"{info['distinct_pages']:,} pages ({info['page_captures']:,} captures), "
        f"{info['bytes'] / 1e6:,.0f} MB of Parquet (both tables)\n"
        f"             hop 2: {info['kept']:,} kept; dropped {info['dropped']}"
    )
    sample_path = lake.parent / "sample.json"
    sample_path.write_text(json.dumps(info["sample"]))

    b = _child("build", str(lake))
    print(
        f"index build  {b['build_s']:.1f} s (LineageIndex on the lake without an index), "
        f"{b['pieces']} pieces, {b['index_bytes'] / 1e6:,.0f} MB, peak RSS {b['rss']:,.0f} MB"
    )
    m = _child("merge", str(lake))
    merged = m["merge_s"] < MERGE_TARGET_S and m["rss"] < MERGE_TARGET_MB
    print(
        f"index merge  {m['merge_s']:.2f} s, peak RSS {m['rss']:,.0f} MB: a {MERGE_ROWS:,}-link "
        f"partition published into the indexed lake ({m['pieces']} pieces built)   "
        f"{'PASS' if merged else 'MISS'} (< {MERGE_TARGET_S:.0f} s, < {MERGE_TARGET_MB:.0f} MB)"
    )
    t = _child("trace", str(lake), str(sample_path))
    ms = t["trace_ms"]
    p50, p95 = _pct(ms, 50), _pct(ms, 95)
    verdict = "PASS" if p95 < TARGET_MS else "MISS"
    page_p95 = _pct(t["page_ms"], 95)
    page_verdict = "PASS" if page_p95 < TARGET_MS else "MISS"
    seen, unseen = t["seen_sightings"], t["unseen_sightings"]
    print(
        f"index open   {1000 * t['open_s']:.0f} ms (up to date: commit logs read, "
        "pieces found, views made)\n"
        f"trace(url)   {len(ms)} URLs: p50 {p50:.1f} ms  p95 {p95:.1f} ms  max {max(ms):.1f} ms"
        f"  (first {ms[0]:.1f} ms)   {verdict} (p95 < {TARGET_MS:.0f} ms)\n"
        f"             {sum(n > 0 for n in seen)}/{len(seen)} seen URLs found (sightings: "
        f"median {np.median(seen):.0f}, max {max(seen)}), "
        f"{sum(n == 0 for n in unseen)}/{len(unseen)} never-seen URLs not found\n"
        f"trace_pair   {len(t['pair_ms'])} pairs: p50 {_pct(t['pair_ms'], 50):.1f} ms  "
        f"max {max(t['pair_ms']):.1f} ms  ({t['pair_found']} found)\n"
        f"trace_page   {len(t['page_ms'])} pages: p50 {_pct(t['page_ms'], 50):.1f} ms  "
        f"p95 {page_p95:.1f} ms   {page_verdict}  max {max(t['page_ms']):.1f} ms  "
        f"(rows per page: median "
        f"{np.median(t['page_rows']):.0f}, max {max(t['page_rows'])})\n"
        f"peak RSS     {t['rss']:,.0f} MB while tracing (build: {b['rss']:,.0f} MB)"
    )
    print(f"\nbench/trace.py took {time.perf_counter() - started:.0f} s")
    ok = sum(n > 0 for n in seen) == len(seen) and not any(unseen)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
