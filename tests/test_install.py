"""tools/install.py passes pip's indexes on to uv, scope by scope as pip ranks them."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import install  # noqa: E402  (tools/ is not a package)


def test_pip_settings_reach_uv_with_the_environment_over_config_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "pip.conf"
    config.write_text(
        "[global]\nindex-url = https://config.example/simple\n"
        "extra-index-url = file:///srv/a/simple file:///srv/b/simple\n"
        "constraint = /srv/pins.txt\n"
    )
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    monkeypatch.setenv("PIP_INDEX_URL", "https://env.example/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "/srv/wheels")
    monkeypatch.setenv("PIP_CERT", "/srv/ca.pem")
    settings = install.pip_settings(sys.executable)
    assert settings["index-url"] == ["https://env.example/simple"]  # the environment wins
    assert settings["extra-index-url"] == ["file:///srv/a/simple", "file:///srv/b/simple"]
    assert settings["find-links"] == ["/srv/wheels"] and settings["cert"] == ["/srv/ca.pem"]
    command = install.uv_command("uv", "py", settings, ["-e", "."])
    flags = [(a, b) for a, b in itertools.pairwise(command) if a.startswith("--")]
    assert ("--default-index", "https://env.example/simple") in flags
    assert ("--index", "file:///srv/b/simple") in flags
    assert ("--find-links", "/srv/wheels") in flags
    assert ("--constraints", "/srv/pins.txt") in flags
    assert ("--index-strategy", "unsafe-best-match") in flags
    assert command[-2:] == ["-e", "."]


def test_no_pip_configuration_gives_plain_uv(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PIP_CONFIG_FILE": "/dev/null"}
    code = "import sys; sys.path.insert(0, 'tools'); import install; "
    code += "print(install.uv_command('uv', 'py', install.pip_settings(sys.executable), []))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['uv', 'pip', 'install', '-q', '--python', 'py', '--compile-bytecode']"
