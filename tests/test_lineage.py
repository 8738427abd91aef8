"""Record-level lineage: trace URLs kept, dropped and never seen, as a story and as JSON."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pipeline.alt_text import parse_alt_texts
from pipeline.cli import main
from pipeline.lake import Lake
from pipeline.lineage import LineageIndex
from pipeline.wat import extract_image_links


@pytest.fixture
def lake(mini_crawl: Path, tmp_path: Path) -> Lake:
    """Hops 1 and 2 of the mini crawl, one partition per WAT file."""
    lake = Lake(str(tmp_path / "lake"))
    for i, wat in enumerate(sorted((mini_crawl / "crawl-data").rglob("*.warc.wat.gz"))):
        key = f"MINI-2026-01_{i:05d}"
        links, _ = extract_image_links(str(wat), "MINI-2026-01")
        lake.write_partition("wat_image_links", links, key)
        lake.write_partition("alt_text_pairs", parse_alt_texts(links).table, key)
    return lake


def test_trace_kept_url(lake: Lake) -> None:
    journey = LineageIndex(lake).trace("http://site0.test/img/0-0.png")
    assert journey.seen
    # page 0 of site 0, and its re-crawl in the last file
    assert len(journey.sightings) == 2
    assert {s["wat_path"].rsplit("/", 1)[1] for s in journey.sightings} == {
        "MINI-00000.warc.wat.gz",
        "MINI-00003.warc.wat.gz",
    }
    assert [d["kept"] for d in journey.decisions] == [True, True]  # separate partitions
    story = journey.story()
    assert "kept as 'a green triangle on white number 0'" in story
    assert "MINI-00000.warc.wat.gz @ 0" in story


def test_trace_dropped_url_gives_reason(lake: Lake) -> None:
    journey = LineageIndex(lake).trace("http://site1.test/img/10-1.png")
    assert [d["drop_reason"] for d in journey.decisions] == ["alt_too_short"]
    assert "dropped (alt_too_short)" in journey.story()


def test_trace_normalizes_the_query(lake: Lake) -> None:
    journey = LineageIndex(lake).trace("HTTP://site1.test:80/img/10-0.png#x")
    assert journey.seen


def test_trace_never_seen(lake: Lake) -> None:
    journey = LineageIndex(lake).trace("http://elsewhere.test/x.png")
    assert not journey.seen
    assert "never seen" in journey.story()


def test_trace_by_pair_and_page(lake: Lake) -> None:
    index = LineageIndex(lake)
    pair = index.trace("http://site2.test/img/20-0.png").sightings[0]["pair_id"]
    assert index.trace_pair(pair).sightings[0]["url"] == "http://site2.test/img/20-0.png"
    page = index.trace_page("http://site2.test/p0.html")
    assert len(page.sightings) == 5


def test_trace_cli_json(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "http://site1.test/img/10-2.png", "--json", "--lake", lake.root]) == 0
    data = orjson.loads(capsys.readouterr().out)
    assert data["seen"] and data["decisions"][0]["drop_reason"] == "empty_alt"
    assert main(["trace", "http://site1.test/img/10-2.png", "--lake", lake.root]) == 0
    assert "dropped (empty_alt)" in capsys.readouterr().out


def test_trace_url_job_shows_markdown(lake: Lake) -> None:
    from dagster import DagsterInstance

    from assets_defs.resources import LakeResource
    from assets_defs.trace_job import trace_url

    with DagsterInstance.ephemeral() as instance:
        result = trace_url.execute_in_process(
            instance=instance,
            run_config={
                "ops": {"trace_one_url": {"config": {"url": "http://site1.test/img/10-1.png"}}}
            },
            resources={"lake": LakeResource(root=lake.root)},
        )
    assert result.success and result.output_for_node("trace_one_url") is True
    outputs = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = outputs[0].event_specific_data.metadata
    assert "dropped (alt_too_short)" in metadata["journey"].value
    assert metadata["journey_json"].value["decisions"][0]["drop_reason"] == "alt_too_short"
