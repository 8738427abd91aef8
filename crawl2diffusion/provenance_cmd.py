"""``crawl2diffusion provenance FILE [--json]``: what one picture's metadata says about its
origin, read by the same reader as hop 3 (for a person checking their own picture)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.provenance.container import sniff
from pipeline.provenance.reader import read_provenance
from pipeline.settings import Settings

NOT_COUNTED = "not counted: its manifest's content or signature fails"


def _human(path: Path, body: bytes, found: dict) -> str:
    def show(value: object) -> str:
        return "null" if value is None else str(value).lower() if isinstance(value, bool) else value

    lines = [
        f"{path} ({sniff(body) or 'unknown format'}, {len(body):,} B)",
        f"  ai_generated     {show(found['ai_generated'])}",
        f"  c2pa_state       {show(found['c2pa_state'])}",
        f"  training_mining  {show(found['training_mining'])}",
        "  signals:" if found["ai_signals"] else "  signals: none",
    ]
    for s in found["ai_signals"]:
        says = f" -> {s['declares']}" if s.get("declares") else ""
        note = "" if s.get("counted", True) else f"  ({NOT_COUNTED})"
        where = f"  [{s['detail']}]" if s.get("detail") else ""
        lines.append(f"    {s['source']:<16} {s['kind']:<20} {s['value']}{says}{where}{note}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        body = path.read_bytes()
    except OSError as exc:
        print(f"crawl2diffusion provenance: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    anchors = args.trust_anchors
    if anchors is None:
        anchors = Settings.from_env().c2pa_trust_anchors
    found = read_provenance(body, trust_anchors=anchors).as_dict()
    print(json.dumps(found, ensure_ascii=False) if args.json else _human(path, body, found))
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``provenance`` to the console script's subcommands."""
    cmd = sub.add_parser(
        "provenance",
        help="what a picture's metadata says: C2PA, IPTC XMP, generator chunks, EXIF",
    )
    cmd.add_argument("file", help="an image file (PNG, JPEG or WebP)")
    cmd.add_argument(
        "--json", action="store_true",
        help="print ai_generated, ai_signals, c2pa_state and training_mining as JSON",
    )  # fmt: skip
    cmd.add_argument(
        "--trust-anchors", default=None, metavar="PEM",
        help="trusted C2PA roots ($CRAWL2DIFFUSION_C2PA_TRUST_ANCHORS); a manifest they sign "
        "is 'trusted', others at most 'valid'",
    )  # fmt: skip
    cmd.set_defaults(func=run)
