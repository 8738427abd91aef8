"""Model cards and training energy: a tiny run is published into a lake with opt-outs and a
takedown list; every checkpoint gets ``README.md`` whose facts match the lake, and its energy
follows from the CPU seconds recorded at that checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from pipeline.hops.clip.embed import ClipModel, ClipSpec
from pipeline.hops.dataset import hash_lists, opt_outs
from pipeline.hops.training.energy import (
    CARBON_INTENSITY_G_PER_KWH,
    EnergyPolicy,
    estimate,
)
from pipeline.hops.training.model import DiffusionTrainConfig
from pipeline.hops.training.model_card import read_front_matter, write_model_cards
from pipeline.hops.training.publish import publish_run, run_dir
from pipeline.hops.training.text import OpenClipTextEncoder
from pipeline.hops.training.train import TrainingExample, run_fingerprint, train_diffusion
from pipeline.lake.store import Lake
from pipeline.lake.tables import AUDIT_SCHEMA, TableName
from pipeline.models.training.samples import make_sample
from pipeline.settings import Settings

TINY = DiffusionTrainConfig(
    resolution=16,
    block_out_channels=(8, 16),
    attention_head_dim=4,
    train_steps=4,
    batch_size=4,
    warmup_steps=1,
    checkpoint_every=2,
)
POLICY = EnergyPolicy(country="FRA", watts_per_core=12.5)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory):
    """A lake with two opt-outs and a takedown list, and a tiny published run (2 checkpoints)."""
    root = tmp_path_factory.mktemp("card")
    lake = Lake(str(root / "lake"))
    opt_outs.add(lake, [("domain", "artist.example"), ("url", "http://a.example/x.png")])
    hash_lists.add(lake, "ncmec-test", [("md5", "0" * 32), ("md5", "1" * 32), ("sha256", "2" * 64)])
    examples = []
    for i in range(6):
        s = make_sample("card", i, 0.0, 0.0)
        source = {"url_id": f"{i:016x}", "URL": f"http://s.example/{i}.png", "sha256": "a" * 64,
                  "crawl": "SYN-2026-01" if i < 4 else "SYN-2026-02", "shard": "00000.tar",
                  "key": f"{i:09d}", "download_results_version": 3 + (i >= 4), "md5": None,
                  "pdq": None}  # fmt: skip
        examples.append(TrainingExample(f"pair-{i:02d}", s.captions["en"], s.image, source))
    encoder = OpenClipTextEncoder(ClipModel(ClipSpec(device="cpu")))
    out = run_dir(lake, run_fingerprint(TINY, examples, encoder.source), root / "work")
    run = train_diffusion(examples, encoder, TINY, out, log=lambda m: None, energy=POLICY)
    return lake, run, publish_run(lake, run)


def test_every_checkpoint_has_a_card_whose_facts_match_the_lake(published) -> None:
    lake, run, out = published
    manifest = DeltaTable(lake.table_uri(TableName.TRAINING_MANIFEST)).to_pyarrow_table()
    assert [c.step for c in run.checkpoints] == [2, 4]
    assert out.model_card_uri == str(Path(run.final.path) / "README.md")
    for ck in run.checkpoints:
        text = (Path(ck.path) / "README.md").read_text()
        front = read_front_matter(text)
        assert front["library_name"] == "diffusers"
        assert front["pipeline_tag"] == "text-to-image"
        assert front["datasets"] == ["SYN-2026-01", "SYN-2026-02"]
        mine = [r for r in manifest.to_pylist() if r["checkpoint_sha256"] == ck.sha256]
        pairs = len({r["pair_id"] for r in mine})
        draws = sum(r["times_seen"] for r in mine)
        assert draws == ck.step * TINY.batch_size
        assert f"Image-text pairs trained on: {pairs:,} ({draws:,} draws" in text
        assert ck.sha256 in text
        versions = sorted({r["download_results_version"] for r in mine})
        assert f"`download_results` v{', v'.join(map(str, versions))}" in text
        assert "Owners' opt-outs in force: 1 by domain, 1 by url" in text
        assert "`ncmec-test` (3 hashes)" in text
        assert "no `ai_generated` column" in text
        assert "None yet: materialize `replication_audit`" in text
        assert "## Known limits" in text


def test_energy_per_checkpoint_follows_its_cpu_seconds(published) -> None:
    _, run, _ = published
    info = json.loads((Path(run.out_dir) / "training.json").read_text())
    first, last = run.checkpoints
    assert 0 < first.cpu_seconds < last.cpu_seconds  # cumulative over the run
    for ck, entry in zip(run.checkpoints, info["checkpoints"], strict=True):
        energy = entry["energy"]
        assert energy["cpu_seconds"] == pytest.approx(ck.cpu_seconds, abs=1e-3)
        kwh = ck.cpu_seconds * 12.5 / 3.6e6
        assert energy["energy_kwh"] == pytest.approx(kwh, rel=1e-3)
        assert energy["emissions_g"] == pytest.approx(kwh * CARBON_INTENSITY_G_PER_KWH["FRA"])
        assert energy["method"] == "cpu_seconds_x_watts_per_core"
        front = read_front_matter((Path(ck.path) / "README.md").read_text())
        co2 = front["co2_eq_emissions"]
        assert co2["emissions"] == pytest.approx(energy["emissions_g"], abs=1e-6)
        assert co2["geographical_location"] == "FRA"
        assert "cpu_seconds_x_watts_per_core" in co2["source"]


def test_cards_are_rewritten_when_an_audit_lands(published) -> None:
    lake, run, _ = published
    final = run.final
    rows = [
        {"prompt_pair_id": "pair-00", "prompt": "p", "seed": s, "nearest_pair_id": "pair-01",
         "similarity": 0.9, "next_similarity": 0.5, "margin": 0.4,
         "nearest_is_prompt_pair": False, "flagged": s == 0, "checkpoint_sha256": final.sha256,
         "descriptor": "pixels"}
        for s in range(3)
    ]  # fmt: skip
    audit = pa.Table.from_pylist(rows, schema=AUDIT_SCHEMA)
    lake.write_partition(TableName.REPLICATION_AUDIT, audit, final.sha256[:16])
    write_model_cards(lake, run.fingerprint)
    text = (Path(final.path) / "README.md").read_text()
    assert "replication (pixels): 3 samples, 1 flagged as copies" in text
    earlier = (Path(run.checkpoints[0].path) / "README.md").read_text()
    assert "None yet" in earlier  # the audit is of the final checkpoint only


def test_cards_name_the_style_imitation_audit(published) -> None:
    """A real (tiny) audit of the final checkpoint, against three roster artists' portfolios:
    the card names it with every artist's scores, and its table passes its suite."""
    from pipeline.datasheet.terms import synthetic_artist_names
    from pipeline.hops.audit.style import StyleDescriptor
    from pipeline.hops.audit.style_imitation import StyleRules, audit_style
    from pipeline.hops.audit.style_references import artist_references
    from pipeline.hops.samples.sample import Generator, SampleSpec
    from quality.gx_runner import run_suite
    from quality.suites import build_suite

    lake, run, _ = published
    final = run.final
    encoder = OpenClipTextEncoder(ClipModel(ClipSpec(device="cpu")))
    generator = Generator(final.path, encoder, device="cpu")
    artists = [*synthetic_artist_names()[:3], "Nobody Known"]
    references = artist_references([], artists, min_references=4, portfolio_size=4)
    rules = StyleRules(subjects=("a star",), seeds=(0, 1))
    result = audit_style(generator, references, rules, SampleSpec(steps=2), StyleDescriptor(16))
    assert run_suite(result.table, build_suite(TableName.STYLE_IMITATION)).success
    lake.write_partition(TableName.STYLE_IMITATION, result.table, final.sha256[:16])
    write_model_cards(lake, run.fingerprint)
    text = (Path(final.path) / "README.md").read_text()
    rows = result.table.to_pylist()
    imitated = sum(r["imitated"] for r in rows)
    assert f"Style imitation (`style` descriptor): {imitated} of 3 artists imitated" in text
    for row in rows[:3]:
        assert row["sample_count"] == 2 and row["reference_source"] == "portfolio"
        assert f"{row['artist']}: imitation {row['imitation']:+.3f}" in text
    assert "not scored (too few references): Nobody Known" in text
    earlier = (Path(run.checkpoints[0].path) / "README.md").read_text()
    assert "Style imitation" not in earlier


def test_cards_name_the_copies_an_opt_out_did_not_reach(published) -> None:
    """An image of the withdrawn domain was fetched once; the training images are the same
    file on another domain: the opt-out did not reach them, and the cards say so once
    ``opt_out_not_reached`` is built (before: not checked)."""
    from pipeline.hops.dataset.opt_out_reach import not_reached

    lake, run, _ = published
    final = Path(run.final.path) / "README.md"
    assert "Copies of withdrawn images on other URLs: not checked" in final.read_text()
    urls = ["http://artist.example/original.png"] + [f"http://s.example/{i}.png" for i in range(6)]
    ids = ["f" * 16] + [f"{i:016x}" for i in range(6)]
    fetches = pa.table(
        {"url_id": ids, "url": urls, "final_url": urls, "sha256": ["a" * 64] * 7,
         "copy_desc": pa.nulls(7, pa.string())}
    )  # fmt: skip
    lake.write_partition(TableName.CLIP_SCORES, fetches, "slice-0")
    lake.write_partition(TableName.OPT_OUT_NOT_REACHED, not_reached(lake))
    write_model_cards(lake, run.fingerprint)
    manifest = lake.read(TableName.TRAINING_MANIFEST).to_pylist()
    for ck in run.checkpoints:
        text = (Path(ck.path) / "README.md").read_text()
        count = len({r["url_id"] for r in manifest if r["checkpoint_sha256"] == ck.sha256})
        assert count > 0
        line = f"the opt-outs did not reach, trained on: {count} ({count} by sha256; "
        assert line in text, text
        assert "(sha256 of http://artist.example/original.png)" in text


def test_energy_policy_defaults_and_errors() -> None:
    assert EnergyPolicy() == EnergyPolicy(Settings().energy_country, Settings().cpu_watts_per_core)
    env = {"CRAWL2DIFFUSION_ENERGY_COUNTRY": "DEU", "CRAWL2DIFFUSION_CPU_WATTS_PER_CORE": "7.5"}
    assert EnergyPolicy.from_settings(Settings.from_env(env)) == EnergyPolicy("DEU", 7.5)
    assert estimate(3600.0, EnergyPolicy("SWE", 1000.0)).energy_kwh == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no carbon intensity"):
        EnergyPolicy(country="ATLANTIS")
    with pytest.raises(ValueError, match="positive"):
        EnergyPolicy(watts_per_core=0)
