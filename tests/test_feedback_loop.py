"""The feedback loop in the synthetic web (pipeline/synthetic/feedback.py) and the AI share per
crawl (pipeline/provenance/ai_share.py, asset ``ai_share``).

A tiny web grows by a feedback crawl whose "AI" images are drawn, not sampled (unit tests
only: the image source is a parameter; the demo samples the trained checkpoint). Every file
is checked against the truth with the provenance reader; hops 1-3, the release, the subset
and ``ai_share`` then run on the new crawl, and each figure is checked against the truth and
an independent DuckDB query of the lake.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, PipesSubprocessClient, materialize
from PIL import Image, ImageOps

from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName
from pipeline.provenance.ai_share import SIGNALS, signal_names
from pipeline.provenance.reader import read_provenance
from pipeline.synthetic import SyntheticWebConfig, generate_web
from pipeline.synthetic.feedback import (
    SHARES,
    AiImageSource,
    FeedbackConfig,
    GrownElsewise,
    grow_web,
)
from tests.lake_runs import checks_passed, every_asset

WEB = {"crawl_ids": ["SYNTH-2026-10"], "pages_per_crawl": 24, "wat_files_per_crawl": 1,
       "sites": 6}  # fmt: skip
FEEDBACK = FeedbackConfig(wat_files=1, per_signal=1, not_allowed=1, reposts=2)
CRAWL = FEEDBACK.crawl_id


def _web_config() -> SyntheticWebConfig:
    return SyntheticWebConfig(**{**WEB, "crawl_ids": tuple(WEB["crawl_ids"])})


def drawn_source(root: Path) -> AiImageSource:
    """ "AI" images without a model: each prompt's own drawing in the web, mirrored (so that
    CLIP finds its prompt in it and its bytes are new). Unit tests only."""
    truth = pq.read_table(root / "truth.parquet").to_pylist()
    by_caption = {}
    for row in sorted(truth, key=lambda r: r["url"]):
        if row["file"] and row["fault"] is None and row["format"] != "GIF":
            by_caption.setdefault(row["caption_en"], row["file"])

    def make(prompts: Sequence[str], seeds: Sequence[int]) -> list[Image.Image]:
        out = []
        for prompt in prompts:
            with Image.open(root / by_caption[prompt]) as image:
                out.append(ImageOps.mirror(image.convert("RGB")))
        return out

    return AiImageSource("drawn:mirrored-web-drawings", "0" * 64, 10, make)


def _grown(root: Path) -> Path:
    generate_web(root, _web_config())
    grow_web(root, drawn_source(root), FEEDBACK)
    return root


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _grown(tmp_path_factory.mktemp("feedback") / "web")


def _feedback_truth(root: Path) -> list[dict]:
    rows = pq.read_table(root / "truth.parquet").to_pylist()
    return [r for r in rows if r["first_crawl_id"] == CRAWL]


def test_each_file_carries_its_one_signal(web: Path) -> None:
    rows = _feedback_truth(web)
    ai = [r for r in rows if r["ai_generated"]]
    assert len(ai) == FEEDBACK.per_signal * len(SHARES) * FEEDBACK.reposts
    assert len(rows) - len(ai) == FEEDBACK.not_allowed * FEEDBACK.reposts
    manifest = json.loads((web / "manifest.json").read_text())
    ca = str(web / manifest["feedback"]["c2pa_trust_anchor"])
    for row in rows:
        body = (web / row["file"]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == row["sha256"]
        prov = read_provenance(body, trust_anchors=ca)
        declared = signal_names(prov.ai_signals)
        if row["ai_signal"]:
            assert prov.ai_generated is True and declared == [row["ai_signal"]], row
            assert len(body) >= 5 * 1024  # upscaled past the 5 KB rule
        elif row["metadata_stripped"]:
            assert prov.ai_generated is None and json.loads(prov.ai_signals) == []
        else:  # a human drawing whose credentials forbid AI training
            assert row["training_mining"] == "notAllowed" and not row["ai_generated"]
            assert prov.training_mining == "notAllowed" and prov.ai_generated is False
        assert prov.c2pa_state == ("trusted" if row["ai_signal"] in ("c2pa", None)
                                   and not row["metadata_stripped"] else "absent")  # fmt: skip
    # reposted across sites with the prompt as alt text
    pages = [r for r in pq.read_table(web / "pages.parquet").to_pylist() if r["crawl_id"] == CRAWL]
    captions = {r["url"]: r["caption_en"] for r in rows}
    assert {p["image_url"] for p in pages} == set(captions)
    assert all(p["alt"] == captions[p["image_url"]] for p in pages)
    originals = [r for r in ai if r["repost_of"] is None]
    assert all(len({r["host"] for r in ai if r["sha256"] == o["sha256"]}) == FEEDBACK.reposts
               for o in originals)  # fmt: skip


def test_growing_is_a_new_crawl_deterministic_and_idempotent(web: Path, tmp_path: Path) -> None:
    index = json.loads((web / "collinfo.json").read_text())
    assert [e["id"] for e in index] == [CRAWL, *WEB["crawl_ids"]]  # newest first, as CC lists
    manifest = json.loads((web / "manifest.json").read_text())
    assert manifest["crawl_ids"] == [*WEB["crawl_ids"], CRAWL]
    assert manifest["fingerprint"] == _web_config().fingerprint()  # generate_web reuses it
    assert generate_web(web, _web_config()).crawl_ids == (*WEB["crawl_ids"], CRAWL)
    ids = [json.loads(line)["image_id"] for line in (web / "routes.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids))  # the new routes take new image ids
    before = (web / "truth.parquet").read_bytes()
    grow_web(web, drawn_source(web), FEEDBACK)  # the same again: nothing changes
    assert (web / "truth.parquet").read_bytes() == before
    with pytest.raises(GrownElsewise, match="under other settings"):
        grow_web(web, drawn_source(web), FeedbackConfig(wat_files=1, per_signal=1))
    other = _grown(tmp_path / "again")
    a, b = _feedback_truth(web), _feedback_truth(other)
    signed = {"sha256", "n_bytes"}  # C2PA's salts are random: its files differ in those only
    for x, y in zip(a, b, strict=True):
        c2pa = x["ai_signal"] == "c2pa" or x["training_mining"] == "notAllowed"
        assert {k: v for k, v in x.items() if not (c2pa and k in signed)} == (
            {k: v for k, v in y.items() if not (c2pa and k in signed)}
        )
    for rel in manifest["paths"]["wat"][CRAWL]:
        assert (web / rel).read_bytes() == (other / rel).read_bytes()


@pytest.fixture(scope="module")
def lake_run(web: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, dict, Path]:
    """Hops 1-3, the release, the aesthetic subset and ``ai_share`` on the feedback crawl."""
    from assets_defs.partitions import wat_slices
    from assets_defs.resources import (
        ClipModelResource,
        CrawlSourceResource,
        EngineResource,
        LakeResource,
        SyntheticWebResource,
    )

    root = tmp_path_factory.mktemp("feedback-lake")
    shutil.copytree(web, root / "web")
    resources = {
        "lake": LakeResource(root=str(root / "lake")),
        "crawl_source": CrawlSourceResource(data_root=str(root / "web"), crawl_ids=[CRAWL],
                                            collinfo_uri=str(root / "web" / "collinfo.json")),
        "synthetic_web": SyntheticWebResource(root=str(root / "web"), **WEB),
        "clip_model": ClipModelResource(),
        "pipes_subprocess_client": PipesSubprocessClient(),
        "engine": EngineResource(),
    }  # fmt: skip
    instance = DagsterInstance.ephemeral()

    def run(*names: str, partition: str | None = None, config: dict | None = None):
        result = materialize(every_asset(), selection=list(names), partition_key=partition,
                             instance=instance, resources=resources, run_config=config)  # fmt: skip
        assert result.success
        checks_passed(result)
        return result

    slices = {"ops": {TableName.CRAWL_MANIFEST: {"config": {"slice_size": 1}}}}
    run(TableName.CRAWL_MANIFEST, config=slices)
    languages = {"ops": {TableName.ALT_TEXT_PAIRS: {"config": {"languages": ["en"]}}}}  # prompts
    for key in instance.get_dynamic_partitions(wat_slices.name):
        run(TableName.WAT_IMAGE_LINKS, TableName.ALT_TEXT_PAIRS, TableName.CLIP_SCORES,
            TableName.IMAGE_EMBEDDINGS, partition=key, config=languages)  # fmt: skip
    result = run(TableName.LAION_DATASET, TableName.AESTHETIC_SCORES,
                 TableName.AESTHETIC_SUBSET, TableName.AI_SHARE, partition=CRAWL)  # fmt: skip
    (event,) = [e for e in result.get_asset_materialization_events()
                if e.asset_key.to_user_string() == TableName.AI_SHARE]  # fmt: skip
    meta = event.step_materialization_data.materialization.metadata
    metadata = {k: v.value for k, v in meta.items()}
    return Lake(str(root / "lake")), metadata, root / "web"


def _lake_db(lake: Lake) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for table in (TableName.CLIP_SCORES, TableName.LAION_DATASET, TableName.AESTHETIC_SUBSET,
                  TableName.AI_SHARE):  # fmt: skip
        con.register(table, lake.read(table))
    return con


def _figures(lake: Lake) -> dict[tuple[str, str, str], dict]:
    rows = lake.read(TableName.AI_SHARE).to_pylist()
    return {(r["section"], r["stage"], r["signal"]): r for r in rows}


def test_ai_share_by_signal_matches_an_independent_query(lake_run) -> None:
    lake, metadata, _ = lake_run
    con, figures = _lake_db(lake), _figures(lake)
    # signals read back in SQL from the JSON hop 3 wrote: counted signals declaring a model
    con.execute(f"""CREATE VIEW sig AS SELECT pair_id, kept, ai_generated,
        CASE WHEN s.source LIKE 'c2pa%' THEN 'c2pa' WHEN s.source IN ('xmp', 'exif')
             THEN s.source WHEN s.value = 'automatic1111' THEN 'a1111' ELSE s.value END AS sig
        FROM (SELECT pair_id, kept, ai_generated, unnest(from_json(ai_signals,
              '[{{"source": "VARCHAR", "value": "VARCHAR", "declares": "VARCHAR",
                 "counted": "BOOLEAN"}}]')) AS s FROM {TableName.CLIP_SCORES})
        WHERE s.declares = 'ai' AND coalesce(s.counted, TRUE)""")
    stages = {
        TableName.CLIP_SCORES: f"SELECT pair_id FROM {TableName.CLIP_SCORES}",
        "release": f"SELECT pair_id FROM {TableName.LAION_DATASET}",
        TableName.AESTHETIC_SUBSET: f"SELECT pair_id FROM {TableName.AESTHETIC_SUBSET} WHERE kept",
    }
    seen = set()
    for stage, rows in stages.items():
        (total,) = con.execute(f"SELECT count(*) FROM ({rows})").fetchone()
        for signal, n in con.execute(
            f"SELECT sig, count(DISTINCT pair_id) FROM sig WHERE pair_id IN ({rows}) GROUP BY 1"
        ).fetchall():
            fig = figures[("share", stage, signal)]
            assert (fig["count"], fig["total"]) == (n, total), (stage, signal)
            seen.add(signal)
        (n,) = con.execute(
            f"SELECT count(*) FROM {TableName.CLIP_SCORES} WHERE ai_generated "
            f"AND pair_id IN ({rows})"
        ).fetchone()
        assert (
            figures[("share", stage, "any")]["count"],
            figures[("share", stage, "any")]["total"],
        ) == (n, total)
    assert set(SIGNALS[1:6]) <= seen  # each signal of the truth is read
    # the exclusion: no AI image in the subset; without it, those it dropped
    assert figures[("share", TableName.AESTHETIC_SUBSET, "any")]["count"] == 0
    (excluded,) = con.execute(
        f"SELECT count(*) FROM {TableName.AESTHETIC_SUBSET} WHERE drop_reason = 'ai_generated'"
    ).fetchone()
    released_ai = figures[("share", "release", "any")]["count"]
    assert 0 < excluded <= released_ai
    without = figures[("share", TableName.AESTHETIC_SUBSET, "any")]
    assert without["without_exclusion"] == excluded
    assert without["without_total"] == without["total"] + excluded
    assert figures[("share", "release", "any")]["without_exclusion"] == released_ai
    assert ("share", "training_shards", "any") not in figures  # not downloaded
    assert metadata[TableName.AI_SHARE].startswith("| stage |")
    assert Path(metadata["ai_share_plot_path"]).read_bytes()[:4] == b"\x89PNG"


def _share_of(row: dict) -> str | None:
    return row["ai_signal"] or ("stripped" if row["metadata_stripped"] else None)


def test_recall_and_credentials_against_the_truth(lake_run) -> None:
    lake, metadata, web = lake_run
    figures = _figures(lake)
    truth = {r["url"]: r for r in _feedback_truth(web)}
    clip = lake.read(TableName.CLIP_SCORES).to_pylist()
    read = {r["url"]: r for r in clip if r["c2pa_state"] is not None and r["url"] in truth}
    for share in SHARES:
        urls = [u for u in read if _share_of(truth[u]) == share]
        flagged = [u for u in urls if read[u]["ai_generated"]]
        fig = figures[("recall", TableName.CLIP_SCORES, share)]
        assert (fig["count"], fig["total"]) == (len(flagged), len(urls)) and urls, share
        assert fig["share"] == (0.0 if share == "stripped" else 1.0), share
    human = [u for u in read if truth[u]["training_mining"] == "notAllowed"]
    assert figures[("recall", TableName.CLIP_SCORES, "not_allowed")]["count"] == len(human) > 0
    assert figures[("recall", TableName.CLIP_SCORES, "human")]["count"] == 0  # no false positive
    dropped = [r for r in clip if r["drop_reason"] == "credentials_no_training"]
    assert figures[("dropped", TableName.CLIP_SCORES, "credentials_no_training")]["count"] == len(
        dropped
    )
    assert {r["url"] for r in dropped} == set(human)
    stripped = figures[("recall", TableName.CLIP_SCORES, "stripped")]["total"]
    assert f"{stripped} stripped (undetectable by metadata)" in metadata["summary"]


def test_undetected_ai_rows_follow_the_truth(lake_run) -> None:
    lake, _, web = lake_run
    figures = _figures(lake)
    truly_ai = {r["url"] for r in _feedback_truth(web) if r["ai_generated"]}
    clip = lake.read(TableName.CLIP_SCORES).to_pylist()
    missed = {r["pair_id"] for r in clip if r["url"] in truly_ai and not r["ai_generated"]}
    fig = figures[("undetected", TableName.CLIP_SCORES, "truth_ai")]
    assert (fig["count"], fig["total"]) == (sum(r["pair_id"] in missed for r in clip), len(clip))
    kept = [r for r in lake.read(TableName.AESTHETIC_SUBSET).to_pylist() if r["kept"]]
    fig = figures[("undetected", TableName.AESTHETIC_SUBSET, "truth_ai")]
    assert (fig["count"], fig["total"]) == (sum(r["pair_id"] in missed for r in kept), len(kept))
    stripped = {r["url"] for r in _feedback_truth(web) if r["metadata_stripped"]}
    assert missed and {r["url"] for r in clip if r["pair_id"] in missed} <= stripped  # they slip by
