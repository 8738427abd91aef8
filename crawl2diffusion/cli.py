"""The ``crawl2diffusion`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from crawl2diffusion import provenance_cmd
from pipeline.settings import ENGINES, Settings

if TYPE_CHECKING:
    from pipeline.lake.store import Lake


def _cmd_wat_links(args: argparse.Namespace) -> int:
    from pipeline.hops.wat.records import ExtractStats, WatOpenError, iter_image_link_batches

    options: dict[str, Any] = {"anon": True} if args.anon else {}
    stats = ExtractStats()
    out = sys.stdout.buffer
    try:
        for batch in iter_image_link_batches(
            args.path,
            args.crawl_id,
            stats=stats,
            max_record_bytes=args.max_record_mib << 20,
            storage_options=options,
        ):
            for row in batch.to_pylist():
                if args.json:
                    out.write(orjson.dumps(row) + b"\n")
                else:
                    alt = "<no alt>" if row["alt"] is None else repr(row["alt"])
                    out.write(f"{row['url']}\t{alt}\t{row['page_url']}\n".encode())
    except WatOpenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    out.flush()
    print(orjson.dumps(stats.as_dict()).decode(), file=sys.stderr)
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    """The environment's settings with this command's ``--data``/``--lake`` flags applied."""
    return Settings.from_env().override(
        data=getattr(args, "data", None), lake=getattr(args, "lake", None)
    )


def _open_lake(settings: Settings) -> Lake:
    """The settings' lake, named on stderr (a wrong lake must not go unseen)."""
    from pipeline.lake.store import Lake

    root = settings.lake_root
    print(f"lake: {root}", file=sys.stderr)
    return Lake(root)


def _cmd_trace(args: argparse.Namespace) -> int:
    from pipeline.lineage.index import LineageIndex

    settings = _settings(args)
    lake = _open_lake(settings)
    as_of = None
    if args.as_of:
        from pipeline.lake.history import resolve_as_of

        try:
            as_of = resolve_as_of(lake, args.as_of)
        except (ValueError, LookupError) as exc:
            print(f"error: --as-of {exc}", file=sys.stderr)
            return 2
    index = LineageIndex(lake)
    if args.by == "pair_id":
        journey = index.trace_pair(args.value, as_of)
    elif args.by == "page":
        journey = index.trace_page(args.value, as_of)
    elif args.by == "sha256":
        journey = index.trace_image(args.value, as_of)
    elif args.by == "image":
        from pipeline.hops.clip.embed import DEFAULT_CLIP_MODEL, ClipModel, ClipSpec

        model = args.clip_model or settings.clip_model or DEFAULT_CLIP_MODEL
        pretrained = args.clip_pretrained or settings.clip_pretrained
        clip = ClipModel(ClipSpec(model, pretrained))
        picture = Path(args.value).read_bytes()
        journey = index.trace_picture(picture, clip, min_similarity=args.min_similarity)
    else:
        journey = index.trace(args.value, as_of)
    if args.json:
        print(orjson.dumps(journey.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(journey.story())
    return 0


def _cmd_hash_list(args: argparse.Namespace, lake: Lake) -> int:
    """``opt-out --hash-list FILE --name NAME [--kind KIND]``: add a takedown list's hashes."""
    import pyarrow.compute as pc

    from pipeline.hops.dataset import hash_lists

    if not args.name:
        print("error: --hash-list needs --name NAME", file=sys.stderr)
        return 2
    try:
        with open(args.hash_list, encoding="utf-8") as lines:
            entries = hash_lists.parse_lines(lines, args.kind)
        table = hash_lists.add(lake, args.name, entries, args.note)
    except (OSError, ValueError) as exc:
        print(f"error: {args.hash_list}: {exc}", file=sys.stderr)
        return 2
    mine = table.filter(pc.equal(table.column("name"), args.name)).num_rows
    print(
        f"{len(entries)} hashes read; list {args.name} holds {mine} ({table.num_rows} on all "
        "lists); hop 3 drops matching images, the opt-out sensor rebuilds the datasets and "
        "reports affected checkpoints"
    )
    return 0


def _print_lists(lake: Lake) -> None:
    """The opt-out list, one entry a line, then one line per hash list and kind."""
    from pipeline.hops.dataset import hash_lists
    from pipeline.hops.dataset import opt_outs as optout

    listed = lake.read(optout.TABLE)
    for row in listed.to_pylist() if listed is not None else []:
        print(f"{row['kind']}\t{row['value']}\t{row['added_at']:%Y-%m-%d}\t{row['note'] or ''}")
    hashes = lake.read(hash_lists.TABLE)
    if hashes is not None and hashes.num_rows:
        counts = hashes.group_by(["name", "kind"]).aggregate([("value", "count")])
        for row in counts.sort_by([("name", "ascending"), ("kind", "ascending")]).to_pylist():
            print(f"hash_list\t{row['name']}\t{row['kind']}\t{row['value_count']} hashes")


def _cmd_opt_out(args: argparse.Namespace) -> int:
    from pipeline.hops.dataset import opt_outs as optout

    entries = [("url", v) for v in args.url] + [("domain", v) for v in args.domain]
    entries += [("sha256", v) for v in args.sha256]
    lake = _open_lake(_settings(args))
    if args.hash_list:
        status = _cmd_hash_list(args, lake)
        if status or not entries:
            return status
    elif args.name or args.kind:
        print("error: --name and --kind go with --hash-list FILE", file=sys.stderr)
        return 2
    if not entries:
        (_print_not_reached if args.not_reached else _print_lists)(lake)
        return 0
    try:
        table = optout.add(lake, entries, args.note)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{table.num_rows} entries on the opt-out list; the opt-out sensor rebuilds the "
        "datasets and reports affected checkpoints"
    )
    _print_not_reached(lake)
    return 0


def _print_not_reached(lake: Lake) -> None:
    """What the opt-out list does not reach: copies of withdrawn images on other URLs."""
    from pipeline.hops.dataset.opt_out_reach import not_reached, summary_lines

    print("\n".join(summary_lines(not_reached(lake))))


def _cmd_erase(args: argparse.Namespace) -> int:
    from pipeline.erase.run import erase
    from pipeline.erase.targets import EraseRequest

    try:
        request = EraseRequest(
            tuple(args.url), tuple(args.domain), tuple(args.sha256), args.opted_out, args.reason
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = erase(_open_lake(_settings(args)), request, dry_run=args.dry_run)
    print(orjson.dumps(result.counts(), option=orjson.OPT_INDENT_2).decode())
    return 0


def _web_config(args: argparse.Namespace):
    from pipeline.synthetic.config import SyntheticWebConfig

    return SyntheticWebConfig(
        seed=args.seed,
        pages_per_crawl=args.pages_per_crawl,
        wat_files_per_crawl=args.wat_files_per_crawl,
    )


def _web_root(args: argparse.Namespace) -> str:
    """``--root``, else the settings' ``<data>/web``."""
    return args.root or _settings(args).web_root


def _cmd_web_generate(args: argparse.Namespace) -> int:
    from pipeline.synthetic.generate import generate_web

    manifest = generate_web(_web_root(args), _web_config(args))
    print(orjson.dumps(manifest.to_dict(), option=orjson.OPT_INDENT_2).decode())
    return 0


def _cmd_web_serve(args: argparse.Namespace) -> int:
    from pipeline.synthetic.generate import generate_web
    from pipeline.synthetic.server import serve_forever

    root = _web_root(args)
    generate_web(root, _web_config(args))
    serve_forever(root, args.host, args.port)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from assets_defs.demo import run_demo
    from assets_defs.demo_profiles import PROFILES

    profile = PROFILES["small" if args.small else "default"]
    data = profile.data_dir(_settings(args).data)
    summary = run_demo(
        data,
        slice_size=args.slice_size,
        profile=profile,
        engine=args.engine,
        ray_address=args.ray_address,
    )
    print(summary.render())
    return 0


DATA_HELP = "default: $CRAWL2DIFFUSION_DATA, else ./data"


def _add_lake_flags(cmd: argparse.ArgumentParser) -> None:
    """``--lake`` and ``--data``, which override CRAWL2DIFFUSION_LAKE and _DATA."""
    cmd.add_argument(
        "--lake",
        default=None,
        help="lake root (path or s3:// URL); default: $CRAWL2DIFFUSION_LAKE, else <data>/lake",
    )
    cmd.add_argument("--data", default=None, help=f"data folder; {DATA_HELP}")


def _add_target_flags(parser: argparse.ArgumentParser) -> None:
    """``--url``, ``--domain``, ``--sha256`` (each repeatable): what an owner names."""
    parser.add_argument("--url", action="append", default=[], help="an image URL (repeatable)")
    parser.add_argument("--domain", action="append", default=[], help="a domain and subdomains")
    parser.add_argument("--sha256", action="append", default=[], help="an image file's sha256")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crawl2diffusion",
        description="From Common Crawl WAT files to a text-to-image model, with provenance.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the main job on the embedded synthetic web")
    demo.add_argument(
        "--data",
        "--data-dir",
        dest="data",
        default=None,
        help=f"data folder (web, lake, DAGSTER_HOME); {DATA_HELP}",
    )
    demo.add_argument(
        "--slice-size", type=int, default=None, help="WAT files per partition (default: 2)"
    )
    demo.add_argument(
        "--small",
        action="store_true",
        help="one crawl, two WAT files, short training: every hop in ~2 min (under <data>/small)",
    )
    demo.add_argument("--engine", choices=ENGINES, default=None,
                      help="where hops 1, 3 and the download run; "
                      "default: $CRAWL2DIFFUSION_ENGINE, else in_process")  # fmt: skip
    demo.add_argument("--ray-address", default=None,
                      help="with --engine ray: a cluster to join (host:port or ray://host:port); "
                      "default: a local cluster started for the demo")  # fmt: skip
    demo.set_defaults(func=_cmd_demo)

    web = sub.add_parser("web", help="the synthetic web")
    web_sub = web.add_subparsers(dest="web_command", required=True)
    for name, func in (("generate", _cmd_web_generate), ("serve", _cmd_web_serve)):
        cmd = web_sub.add_parser(name)
        cmd.add_argument("--root", default=None, help=f"default: <data>/web; {DATA_HELP}")
        cmd.add_argument("--seed", type=int, default=2026)
        cmd.add_argument("--pages-per-crawl", type=int, default=1100)
        cmd.add_argument("--wat-files-per-crawl", type=int, default=4)
        cmd.set_defaults(func=func)
        if name == "serve":
            cmd.add_argument("--host", default="127.0.0.1")
            cmd.add_argument("--port", type=int, default=8000)

    links = sub.add_parser("wat-links", help="print every image link of one WAT file")
    links.add_argument("path", help="local path, http(s) URL or s3:// URL")
    links.add_argument("--json", action="store_true", help="one JSON object per line")
    links.add_argument("--crawl-id", default="", help="value for the crawl_id column")
    links.add_argument("--anon", action="store_true", help="anonymous S3 (s3://commoncrawl/)")
    links.add_argument(
        "--max-record-mib",
        type=int,
        default=64,
        help="skip (and count as record_too_large) any record larger than this, in MiB",
    )
    links.set_defaults(func=_cmd_wat_links)
    trace = sub.add_parser("trace", help="the journey of one image URL through every hop")
    trace.add_argument(
        "value", help="image URL (or pair_id / page URL / sha256 / image file with --by)"
    )
    trace.add_argument(
        "--by", choices=("url", "pair_id", "page", "sha256", "image"), default="url",
        help="image: find stored images that look like this file (CLIP embeddings)",
    )  # fmt: skip
    trace.add_argument(
        "--clip-model",
        default="",
        help="with --by image: the filter's CLIP ($CRAWL2DIFFUSION_CLIP_MODEL)",
    )
    trace.add_argument("--clip-pretrained", default=None, help="($CRAWL2DIFFUSION_CLIP_PRETRAINED)")
    trace.add_argument(
        "--min-similarity", type=float, default=0.5, help="with --by image: lookalikes listed"
    )
    trace.add_argument("--json", action="store_true", help="print the journey as JSON")
    trace.add_argument(
        "--as-of",
        default=None,
        help="answer as the lake stood then: an ISO 8601 time (UTC by default) or "
        "TABLE@VERSION (that commit's time)",
    )
    _add_lake_flags(trace)
    trace.set_defaults(func=_cmd_trace)
    opt = sub.add_parser(
        "opt-out", help="withdraw URLs, domains or image files (sha256), or add a hash list"
    )
    _add_target_flags(opt)
    opt.add_argument(
        "--hash-list", default=None, metavar="FILE",
        help="a takedown list: one hash a line (md5, sha256 or PDQ, in hex; '#' comments); "
        "a line may say its kind as md5:, sha256: or pdq:",
    )  # fmt: skip
    opt.add_argument("--name", default=None, help="with --hash-list: the list's name")
    opt.add_argument(
        "--kind", choices=("md5", "sha256", "pdq"), default=None,
        help="with --hash-list: the kind of lines without a prefix (without it, 32 hex digits "
        "are md5 and 64 are refused: a sha256 and a PDQ hash are both 64)",
    )  # fmt: skip
    opt.add_argument("--note", default=None, help="who asked, and when")
    opt.add_argument(
        "--not-reached", action="store_true",
        help="list the copies of withdrawn images on URLs the list does not name (reposts "
        "on other domains by sha256 or near-duplicate, redirects) that the release, subset, "
        "shards or a checkpoint still hold",
    )  # fmt: skip
    _add_lake_flags(opt)
    opt.set_defaults(func=_cmd_opt_out)
    erase = sub.add_parser(
        "erase", help="delete an image's bytes everywhere (tars, embeddings, grids); tombstone"
    )
    _add_target_flags(erase)
    erase.add_argument(
        "--opted-out", action="store_true", help="everything the opt-out list withdraws now"
    )
    erase.add_argument(
        "--reason", default=None, help="tombstone reason (default: owner_request, or the opt-out)"
    )
    erase.add_argument("--dry-run", action="store_true", help="count what would go; change nothing")
    _add_lake_flags(erase)
    erase.set_defaults(func=_cmd_erase)
    provenance_cmd.add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
