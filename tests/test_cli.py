"""The ``crawl2diffusion`` console script: wat-links on real samples and on a bad path."""

from __future__ import annotations

import orjson
import pytest

from crawl2diffusion.cli import main
from pipeline.lake.tables import IMAGE_LINK_SCHEMA
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
