"""Provenance at hop 3 (real fetches from a loopback server, the shipped tiny CLIP) and the
aesthetic subset's ``ai_generated`` exclusion."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pyarrow as pa
import pytest

from pipeline.hops.aesthetic.scores import SubsetRules, apply_rules
from pipeline.hops.clip.decode import DecodePolicy
from pipeline.hops.clip.fetch import Fetcher, FetchPolicy
from pipeline.hops.clip.filter import Thresholds, cached_outcomes, score_pairs
from pipeline.lake.keys import url_id
from pipeline.lake.tables import AESTHETIC_SCORES_SCHEMA, CLIP_DROP_REASONS, TableName
from tests import provenance_images as fx

FILES = {
    "/made.png": fx.with_xmp("trainedAlgorithmicMedia"),
    "/camera.jpg": fx.with_exif("JPEG", Make="Canon", Model="EOS 5D"),
    "/plain.png": fx.plain(),
    "/no-training.png": fx.signed(
        fx.manifest([fx.created("digitalCapture")], {"cawg.ai_generative_training": "notAllowed"})
    ),
}
HOST = "art.test"


@pytest.fixture(scope="module")
def fetcher() -> Iterator[Fetcher]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = FILES.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{httpd.server_address[1]}"
    yield Fetcher(FetchPolicy(resolve={HOST: address}, resolve_only=True, retries=0), 2)
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def models() -> tuple:
    from pipeline.hops.clip.embed import ClipModel, ClipSpec
    from pipeline.hops.clip.heads import load_head

    return ClipModel(ClipSpec(device="cpu")), load_head("punsafe"), load_head("pwatermark")


def _pairs() -> pa.Table:
    urls = [f"http://{HOST}{path}" for path in FILES]
    return pa.table(
        {
            "pair_id": [f"{i:016x}" for i in range(len(urls))],
            "url_id": [url_id(u) for u in urls],
            "url": urls,
            "text": ["a picture"] * len(urls),
            "language": ["en"] * len(urls),
            "crawl_id": ["SYN"] * len(urls),
            "kept": [True] * len(urls),
        }
    )


def test_hop3_reads_provenance_before_size_rules_and_drops_no_training(fetcher, models) -> None:
    """Every fixture is under LAION's 5 KB: its provenance is read all the same; the image
    whose credentials say notAllowed is dropped before it is decoded or embedded; rows are
    conserved and the table passes its suite."""
    from quality.gx_runner import run_suite
    from quality.suites import build_suite

    clip, punsafe, pwatermark = models
    result = score_pairs(_pairs(), clip, fetcher, DecodePolicy(), Thresholds({}, -1.0),
                         punsafe, pwatermark)  # fmt: skip
    rows = {r["url"].rsplit("/", 1)[-1]: r for r in result.table.to_pylist()}
    got = {n: (r["ai_generated"], r["c2pa_state"], r["training_mining"], r["drop_reason"])
           for n, r in rows.items()}  # fmt: skip
    assert got == {
        "made.png": (True, "absent", None, "too_small"),
        "camera.jpg": (False, "absent", None, "too_small"),
        "plain.png": (None, "absent", None, "too_small"),
        "no-training.png": (False, "valid", "notAllowed", "credentials_no_training"),
    }
    assert json.loads(rows["made.png"]["ai_signals"])[0]["value"] == "trainedAlgorithmicMedia"
    assert rows["no-training.png"]["width"] is None, "not decoded"
    assert result.dropped["credentials_no_training"] == 1
    assert result.rows_in == result.rows_kept + sum(result.dropped.values())
    assert set(result.dropped) <= set(CLIP_DROP_REASONS)
    suite = run_suite(result.table, build_suite(TableName.CLIP_SCORES))
    assert suite.success, suite.summary()


def test_embeddings_carry_provenance_to_the_cache(fetcher, models) -> None:
    clip, punsafe, pwatermark = models
    result = score_pairs(_pairs(), clip, fetcher, DecodePolicy(min_bytes=0),
                         Thresholds({}, -1.0), punsafe, pwatermark)  # fmt: skip
    emb = {r["url"].rsplit("/", 1)[-1]: r for r in result.embeddings.to_pylist()}
    assert sorted(emb) == ["camera.jpg", "made.png", "plain.png"]  # no-training: not embedded
    assert emb["made.png"]["ai_generated"] is True
    cached = cached_outcomes(result.embeddings, clip.model_id, {r["url_id"] for r in emb.values()})
    again = score_pairs(_pairs(), clip, fetcher, DecodePolicy(min_bytes=0), Thresholds({}, -1.0),
                        punsafe, pwatermark, cached=cached)  # fmt: skip
    assert again.urls_cached == 3
    columns = ["url", "ai_generated", "c2pa_state", "training_mining", "drop_reason"]
    assert again.table.select(columns).to_pylist() == result.table.select(columns).to_pylist()


def _scored(ai: list[bool | None]) -> pa.Table:
    n = len(ai)
    columns = {name: [None] * n for name in AESTHETIC_SCORES_SCHEMA.names}
    for name in ("url_id", "URL", "TEXT", "sha256", "crawl_id", "LANGUAGE"):
        if name in columns:
            columns[name] = [f"{name}{i}" for i in range(n)]
    columns.update(pair_id=[f"{i:016x}" for i in range(n)], aesthetic=[7.0] * n,
                   punsafe=[0.0] * n, pwatermark=[0.0] * n)  # fmt: skip
    return pa.table(columns).cast(AESTHETIC_SCORES_SCHEMA)


def test_aesthetic_subset_leaves_out_ai_generated_by_default() -> None:
    scored = _scored([True, False, None])
    ai = {"0000000000000000"}
    result = apply_rules(scored, SubsetRules(), ai)
    assert result.table.column("drop_reason").to_pylist() == ["ai_generated", None, None]
    assert result.dropped == {"ai_generated": 1}
    kept = apply_rules(scored, SubsetRules(exclude_ai_generated=False), ai)
    assert kept.table.column("kept").to_pylist() == [True, True, True]


def test_ai_generated_pairs_are_looked_up_in_clip_scores(tmp_path) -> None:
    from pipeline.lake.store import Lake
    from pipeline.lake.tables import CLIP_SCORES_SCHEMA
    from pipeline.provenance.lake import ai_generated_pairs

    lake = Lake(str(tmp_path / "lake"))
    assert ai_generated_pairs(lake, ["a" * 16]) == frozenset()  # no table yet
    n = 3
    columns = {name: [None] * n for name in CLIP_SCORES_SCHEMA.names}
    columns.update(pair_id=["a" * 16, "b" * 16, "c" * 16], kept=[True] * n,
                   ai_generated=[True, False, None])  # fmt: skip
    lake.write_partition(TableName.CLIP_SCORES, pa.table(columns).cast(CLIP_SCORES_SCHEMA), "p0")
    assert ai_generated_pairs(lake, ["a" * 16, "b" * 16, "c" * 16, "d" * 16]) == {"a" * 16}
