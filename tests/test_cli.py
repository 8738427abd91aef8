"""The ``crawl2diffusion`` console script: wat-links on real samples and on a bad path; opt-out
and trace on the lake the settings name (environment, then ``--lake``/``--data`` flags)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from crawl2diffusion.cli import main
from pipeline.lake.store import Lake
from pipeline.lake.tables import IMAGE_LINK_SCHEMA, TableName
from tests.conftest import REAL_WAT


def test_wat_links_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wat-links", str(REAL_WAT / "CC-MAIN-2023-06-excerpt.warc.wat.gz"), "--json"]) == 0
    out, err = capsys.readouterr()
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert len(rows) == 27
    assert list(rows[0]) == IMAGE_LINK_SCHEMA.names
    assert rows[0]["url"] == "http://19august93.nsarchive.ru/1.gif"
    assert orjson.loads(err)["image_links"] == 27


def test_wat_links_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wat-links", str(REAL_WAT / "CC-MAIN-2023-06-excerpt.warc.wat.gz")]) == 0
    first = capsys.readouterr().out.splitlines()[0].split("\t")
    assert first == [
        "http://19august93.nsarchive.ru/1.gif",
        "<no alt>",
        "http://19august93.nsarchive.ru/songs/875.html",
    ]


def test_wat_links_unopenable(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    assert main(["wat-links", str(tmp_path / "missing.wat.gz")]) == 2
    assert "missing.wat.gz" in capsys.readouterr().err


def _opt_outs(root: Path) -> list[tuple[str, str]] | None:
    table = Lake(str(root)).read(TableName.OPT_OUTS)
    return None if table is None else [(r["kind"], r["value"]) for r in table.to_pylist()]


def test_opt_out_writes_to_the_lake_of_the_environment(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CRAWL2DIFFUSION_LAKE", str(clean_env / "env-lake"))
    assert main(["opt-out", "--domain", "Artist.Example", "--note", "asked by mail"]) == 0
    assert capsys.readouterr().err == f"lake: {clean_env / 'env-lake'}\n"
    assert _opt_outs(clean_env / "env-lake") == [("domain", "artist.example")]
    assert not (clean_env / "data").exists()  # not the default ./data/lake
    assert main(["opt-out"]) == 0  # the listing reads the same lake
    assert capsys.readouterr().out.split("\t")[:2] == ["domain", "artist.example"]


def test_lake_flag_overrides_the_environment(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CRAWL2DIFFUSION_LAKE", str(clean_env / "env-lake"))
    flag = clean_env / "flag-lake"
    assert main(["opt-out", "--url", "https://a.example/x.png", "--lake", str(flag)]) == 0
    assert capsys.readouterr().err == f"lake: {flag}\n"
    assert _opt_outs(flag) == [("url", "https://a.example/x.png")]
    assert _opt_outs(clean_env / "env-lake") is None


def test_data_flag_and_variable_place_the_default_lake(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CRAWL2DIFFUSION_DATA", str(clean_env / "env-data"))
    assert main(["trace", "https://a.example/x.png"]) == 0
    out, err = capsys.readouterr()
    assert err == f"lake: {clean_env / 'env-data' / 'lake'}\n" and "never seen" in out
    assert main(["opt-out", "--domain", "a.example", "--data", str(clean_env / "flag")]) == 0
    assert capsys.readouterr().err == f"lake: {clean_env / 'flag' / 'lake'}\n"
    assert _opt_outs(clean_env / "flag" / "lake") == [("domain", "a.example")]
