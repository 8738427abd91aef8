"""bench/scale_model.py (docs/scale.md's tables): it runs, its arithmetic holds together, and
its measured inputs are still the figures bench/README.md reports."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_model():
    spec = importlib.util.spec_from_file_location("scale_model", ROOT / "bench/scale_model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["scale_model"] = module  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


sm = _load_model()


@pytest.fixture(scope="module")
def figures():
    return sm.load_figures()


def test_prints_the_tables_the_doc_quotes(capsys: pytest.CaptureFixture[str]) -> None:
    assert sm.main(["--days", "7"]) == 0
    out = capsys.readouterr().out
    for heading in ("### one crawl:", "### LAION-5B-sized:", "### Slicing one crawl"):
        assert heading in out
    doc = (ROOT / "docs/scale.md").read_text(encoding="utf-8")
    for line in out.splitlines():
        if line.startswith("| **total**") or line.startswith("| 50 |"):
            assert line in doc, f"docs/scale.md is out of date: rerun bench/scale_model.py\n{line}"


def test_measured_inputs_are_the_bench_readme_figures(figures) -> None:
    readme = (ROOT / "bench/README.md").read_text(encoding="utf-8")
    measured = {n: f for n, f in figures.items() if f.kind == "measured"}
    assert measured and all(f.readme for f in measured.values())
    for name, fig in measured.items():
        assert fig.readme in readme, f"{name}: {fig.readme!r} is no longer in bench/README.md"
    assert {f.kind for f in figures.values()} == {"measured", "cited", "assumed"}


def test_workloads_and_costs_add_up(figures) -> None:
    crawl = sm.one_crawl(figures)
    assert crawl.wat_files == 90_000
    assert crawl.links > crawl.kept > crawl.candidates > crawl.released > 0
    laion = sm.laion_sized(figures)
    assert laion.candidates == pytest.approx(50e9)  # the cited candidate count, by construction
    assert laion.wat_files * sm.per_wat_candidates(figures) == pytest.approx(50e9)
    rows = sm.hop_costs(crawl, figures)
    hop1 = rows[0]
    core_seconds = 90_000 * 250 / figures["hop1_mb_per_core_s"].value
    assert hop1.node_hours == pytest.approx(core_seconds / 3600 / 16)
    for row in rows:
        price = figures[f"{row.node}_node_usd_h"].value
        assert row.usd == pytest.approx(row.node_hours * price)
        assert row.nodes_for(7) * 7 * 24 >= row.node_hours > (row.nodes_for(7) - 1) * 7 * 24
    total = sm.totals(rows)
    assert total["usd"] == pytest.approx(sum(r.usd for r in rows if r.in_total))
    fixed = [r for r in rows if not r.scales]
    assert total["usd_data"] == pytest.approx(total["usd"] - sum(r.usd for r in fixed))
    alternative = [r for r in rows if not r.in_total]
    assert len(alternative) == 1 and alternative[0].usd > 0  # CPU CLIP is shown, not summed
    # hops that scale with the input double with it; training's budget does not
    twice = sm.hop_costs(sm._workload("twice", 180_000, figures), figures)
    for one, two in zip(rows, twice, strict=True):
        expected = 2 * one.node_hours if one.scales else one.node_hours
        assert two.node_hours == pytest.approx(expected)


def test_a_faster_rate_moves_the_cost_and_an_unknown_figure_is_refused(figures) -> None:
    faster = sm.with_values(figures, hop2_langid_per_core_s=4900)
    assert faster["hop2_langid_per_core_s"].kind == "assumed"
    slow = sm.hop_costs(sm.one_crawl(figures), figures)[2]
    fast = sm.hop_costs(sm.one_crawl(faster), faster)[2]
    assert fast.node_hours == pytest.approx(slow.node_hours / 10)
    with pytest.raises(KeyError):
        sm.with_values(figures, no_such_rate=1)


def test_slicing_stays_within_the_partition_advice(figures) -> None:
    rows = {r["slice_size"]: r for r in sm.slicing(figures)}
    assert rows[50]["partitions_per_crawl"] == 1_800
    assert rows[50]["crawls_within_advice"] == 13  # 25,000 // 1,800
    assert rows[1]["crawls_within_advice"] == 0  # one file per partition: over the advice
    assert rows[100]["hop1_core_minutes"] == pytest.approx(2 * rows[50]["hop1_core_minutes"])
    assert math.isclose(rows[500]["hop3_fetch_node_hours"], 10 * rows[50]["hop3_fetch_node_hours"])


def test_a_bad_rates_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "rates.toml"
    bad.write_text('[figures.x]\nvalue = 1\nkind = "guessed"\nunit = "u"\nsource = "s"\n')
    with pytest.raises(ValueError, match="kind must be one of"):
        sm.load_figures(bad)
    bad.write_text('[figures.x]\nvalue = 1\nkind = "cited"\n')
    with pytest.raises(ValueError, match="missing"):
        sm.load_figures(bad)
