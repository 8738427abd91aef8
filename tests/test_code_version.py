"""An asset's code version is computed from the import closure of its pipeline code."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from assets_defs.metadata import code_version, import_closure
from pipeline.lake.tables import TableName

ROOT = Path(__file__).resolve().parents[1]


def _relative(paths: list[Path]) -> set[str]:
    return {str(p.relative_to(ROOT)) for p in paths}


@pytest.mark.parametrize(
    ("asset", "decides_rows"),
    [
        (TableName.WAT_IMAGE_LINKS, {"wat/links.py", "wat/url_join.py", "wat/members.py"}),
        (
            TableName.CLIP_SCORES,
            {"clip/embed.py", "clip/heads.py", "clip/fetch.py", "clip/decode.py"},
        ),
        (TableName.DIFFUSION_MODEL, {"training/data.py", "training/text.py", "training/train.py"}),
    ],
)
def test_closure_holds_the_modules_that_decide_rows(asset: str, decides_rows: set[str]) -> None:
    closure = _relative(import_closure(f"assets_defs.assets.{asset}"))
    assert {f"pipeline/hops/{m}" for m in decides_rows} <= closure
    assert "pipeline/lake/keys.py" in closure or asset != TableName.WAT_IMAGE_LINKS
    assert not any(p.startswith("quality/") for p in closure)  # checks do not decide rows


def test_editing_a_module_the_hop_imports_changes_the_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "hoppkg"
    (package / "deep").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "deep" / "__init__.py").write_text("")
    (package / "asset.py").write_text("def run():\n    from hoppkg.rules import keep\n")
    (package / "rules.py").write_text("from .deep import helper\nkeep = 1\n")
    (package / "deep" / "helper.py").write_text("X = 1\n")
    (package / "unrelated.py").write_text("Y = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = code_version("hoppkg.asset", roots=("hoppkg",))
    assert {p.name for p in import_closure("hoppkg.asset", roots=("hoppkg",))} >= {
        "asset.py",
        "rules.py",
        "helper.py",
    }
    (package / "unrelated.py").write_text("Y = 2\n")
    assert code_version("hoppkg.asset", roots=("hoppkg",)) == before
    (package / "deep" / "helper.py").write_text("X = 2\n")
    assert code_version("hoppkg.asset", roots=("hoppkg",)) != before
    sys.modules.pop("hoppkg", None)
