"""Install the project into the virtual environment that runs this script: uv, else pip.

uv installs the pinned wheels in parallel (torch's CUDA libraries alone are 3 GB): about 40 s
where pip takes about 3 minutes on 2 cores. uv does not read pip's configuration, so the
index URL, extra index URLs, find-links, constraint files and certificate pip would use (its
config files and ``PIP_*`` variables, as ``pip config list`` shows them) are passed on.
Should uv fail or be unavailable, pip installs the same requirements, under the same
constraints.

Usage (from the repository root, with the venv's python)::

    .venv/bin/python tools/install.py '.[dev,ray]' -c constraints.txt -c requirements.lock
    .venv/bin/python tools/install.py --lock requirements.lock   # pin pyproject's newest set
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

UV_CONSTRAINTS = "constraints.txt"
"""Where uv's own version is pinned."""
LOCK_ARGS = [
    *("pyproject.toml", "--extra", "dev", "--extra", "ray", "-c", "constraints.txt"),
    *("--no-annotate", "--no-header", "--no-emit-index-url", "--no-emit-find-links"),
]
"""What ``requirements.lock`` pins: everything ``make test`` installs."""
LOCK_HEADER = (
    "# Every package make test and make demo install, pinned: the set CI last passed with\n"
    "# (tools/install.py applies it as constraints). After changing pyproject.toml: make lock.\n"
)
_LISTS = ("extra-index-url", "find-links", "constraint")
"""pip settings that add up across scopes."""
_SINGLE = ("index-url", "cert")
"""pip settings whose highest scope's value wins."""
_UV_FLAGS = {
    "index-url": "--default-index",
    "extra-index-url": "--index",
    "find-links": "--find-links",
    "constraint": "--constraints",
}
"""uv's name for each pip setting passed on."""
_ORDER = {"global": 0, "user": 1, "site": 2, "install": 3, ":env:": 4}
"""pip's precedence, lowest first: a later scope's single value wins."""


def pip_settings(python: str) -> dict[str, list[str]]:
    """``index-url``, ``extra-index-url``, ``find-links``, ``constraint`` and ``cert`` as pip
    has them."""
    listed = subprocess.run(
        [python, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    ).stdout
    found: list[tuple[int, str, list[str]]] = []
    for line in listed.splitlines():
        name, _, value = line.partition("=")
        scope, _, key = name.rpartition(".")
        if key in (*_LISTS, *_SINGLE) and value:
            found.append((_ORDER.get(scope, 0), key, str(ast.literal_eval(value)).split()))
    settings: dict[str, list[str]] = {}
    for _, key, values in sorted(found, key=lambda f: f[0]):
        if key in _SINGLE:
            settings[key] = values[-1:]
        else:
            settings.setdefault(key, []).extend(v for v in values if v not in settings[key])
    return settings


def uv_command(
    uv: str, python: str, settings: dict[str, list[str]], args: list[str], verb: str = "install"
) -> list[str]:
    """``uv pip install`` (or ``compile``) for ``python``'s environment from pip's indexes."""
    command = [uv, "pip", verb, "-q", "--python", python]
    if verb == "install":  # as pip does: processes started with PYTHONDONTWRITEBYTECODE=1
        command.append("--compile-bytecode")  # would otherwise compile every import anew
    for key, flag in _UV_FLAGS.items():
        for value in settings.get(key, []):
            command += [flag, value]
    if settings.get("extra-index-url") or settings.get("find-links"):
        # pins (requirements.lock) decide the versions; any configured index may hold them
        command += ["--index-strategy", "unsafe-best-match"]
    return command + args


def _uv(python: str) -> Path | None:
    """The venv's uv, installed (pinned) by pip if missing; None if it cannot be."""
    uv = Path(python).parent / "uv"
    if not uv.exists():
        pip = [python, "-m", "pip", "install", "-q", "-c", UV_CONSTRAINTS, "uv"]
        subprocess.run(pip, check=False)
    return uv if uv.exists() else None


def main(argv: list[str]) -> int:
    if not argv or (argv[0] == "--lock" and len(argv) != 2):
        print(__doc__, file=sys.stderr)
        return 2
    python = sys.executable
    settings = pip_settings(python)
    env = dict(os.environ)
    if settings.get("cert"):
        env.setdefault("SSL_CERT_FILE", settings["cert"][0])
    uv = _uv(python)
    if argv[0] == "--lock":
        if uv is None:
            print("tools/install.py: --lock needs uv", file=sys.stderr)
            return 1
        compile_ = uv_command(str(uv), python, settings, [*LOCK_ARGS, "-o", argv[1]], "compile")
        if subprocess.run(compile_, env=env).returncode:
            return 1
        lock = Path(argv[1])
        lock.write_text(LOCK_HEADER + lock.read_text())
        return 0
    args = ["-e", *argv]
    if uv is not None:
        if subprocess.run(uv_command(str(uv), python, settings, args), env=env).returncode == 0:
            return 0
        print("tools/install.py: uv failed; installing with pip instead", file=sys.stderr)
    else:
        print("tools/install.py: uv is not installable here; installing with pip", file=sys.stderr)
    return subprocess.run([python, "-m", "pip", "install", "-q", *args]).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
