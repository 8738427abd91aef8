"""``crawl2diffusion provenance FILE [--json]``: the hop-3 reader on one file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawl2diffusion.cli import main
from tests import provenance_images as fx


def test_json_uses_the_column_names(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = fx.manifest([fx.created("trainedAlgorithmicMedia")], {"cawg.ai_training": "notAllowed"})
    path = tmp_path / "mine.png"
    path.write_bytes(fx.signed(spec))
    assert main(["provenance", str(path), "--json", "--trust-anchors", str(fx.CA)]) == 0
    found = json.loads(capsys.readouterr().out)
    assert sorted(found) == ["ai_generated", "ai_signals", "c2pa_state", "training_mining"]
    assert (found["ai_generated"], found["c2pa_state"], found["training_mining"]) == (
        True, "trusted", "notAllowed")  # fmt: skip
    assert {s["kind"] for s in found["ai_signals"]} == {"digital_source_type", "training_mining"}


def test_text_output_says_what_is_not_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "edited.png"
    path.write_bytes(fx.tamper_pixels(fx.signed(fx.manifest([fx.created("compositeSynthetic")]))))
    assert main(["provenance", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ai_generated     null" in out and "c2pa_state       invalid" in out
    assert "assertion.dataHash.mismatch" in out and "not counted" in out


def test_a_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["provenance", str(tmp_path / "none.png")]) == 2
    assert "cannot read" in capsys.readouterr().err
