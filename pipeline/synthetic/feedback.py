"""The feedback loop: grow a generated web by one later crawl that reposts AI images.

A model trained on the web's earlier crawls makes images for captions of those crawls; the
later crawl reposts them across the web's sites with their prompts as alt text, upscaled so
that they pass the 5 KB rule. :func:`grow_web` writes that crawl into an existing web, the
way :func:`~pipeline.synthetic.generate.generate_web` writes any crawl: a new crawl id in
``collinfo.json``, its WARC and WAT files and paths files, routes, and rows in
``truth.parquet``, ``pages.parquet`` and ``captures.parquet``; hops 1-3 then run on it as on
any crawl. The web keeps its fingerprint, so ``generate_web`` with the same config reuses it.

The AI images come in shares of ``per_signal`` images each: one per provenance signal
(:data:`~pipeline.synthetic.ai_files.SIGNALS`: a C2PA manifest signed by a signer derived from
the web's seed, IPTC XMP, A1111 parameters, ComfyUI prompt/workflow, EXIF Software) and one
stripped of all metadata. Beside them, ``not_allowed`` human drawings of the earlier crawls
are reposted with C2PA credentials that say AI training ``notAllowed``. The truth says which
image is AI, which signal it carries, and whether it was stripped.

The pixels come from an :class:`AiImageSource`: the project's own checkpoint in the demo
(:func:`model_source`), a drawing function in unit tests. Everything is deterministic from
the web's seed and the source, except the C2PA files' salts (see ``ai_files``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from pipeline.hops.clip.decode import DecodePolicy
from pipeline.provenance.seeded_signer import SeededSigner, seeded_signer

from .ai_files import FORMATS, SIGNALS, STRIPPED, Generation, ai_file, not_allowed_png
from .files import file_relpath
from .generate import WebManifest, web_lock, write_crawl
from .htmlpage import render_page
from .layout import collinfo, file_start, http_date
from .model import Anchor, CrawlPlan, ImageSpec, ImgTag, PagePlan, Site, WebPlan
from .routes import route_record
from .sampling import rng_for
from .truth import capture_rows, page_rows, truth_rows

SHARES = (*SIGNALS, STRIPPED)
"""The AI images' shares, in order: one per signal, then the stripped one."""
_EXT = {"PNG": "png", "JPEG": "jpg"}
MAX_SIDE = 1024


class GrownElsewise(ValueError):
    """The web already has the feedback crawl, grown under other settings or another source."""


@dataclass(frozen=True)
class FeedbackConfig:
    """The size of the feedback crawl."""

    crawl_id: str = "SYNTH-2026-30"
    wat_files: int = 2
    per_signal: int = 3
    """AI images per share (each signal, and the stripped share)."""
    not_allowed: int = 3
    """Human drawings reposted with credentials that say AI training ``notAllowed``."""
    reposts: int = 2
    """Sites each image is posted on (distinct URLs, the same bytes)."""
    imgs_per_page: int = 4
    side: int = 256
    """Side the AI images are upscaled to (a model's 32 px sample is under 5 KB), doubled for
    a file still under the 5 KB rule (up to :data:`MAX_SIDE`)."""

    def __post_init__(self) -> None:
        if min(self.wat_files, self.per_signal, self.reposts, self.imgs_per_page) < 1:
            raise ValueError("wat_files, per_signal, reposts and imgs_per_page must be >= 1")
        if self.not_allowed < 0 or self.side < 16:
            raise ValueError("not_allowed must be >= 0 and side >= 16")


@dataclass(frozen=True)
class AiImageSource:
    """Where the AI images' pixels come from: ``make(prompts, seeds)`` gives one image each."""

    name: str
    """Recorded in the truth and the manifest (e.g. ``checkpoint:<sha256>``)."""
    checkpoint_sha256: str
    steps: int
    make: Callable[[Sequence[str], Sequence[int]], list[Image.Image]]


def model_source(generator: Any, steps: int = 20) -> AiImageSource:
    """The project's own checkpoint (a loaded :class:`pipeline.hops.samples.sample.Generator`)
    as the source, sampled with DDIM in ``steps`` steps."""
    from pipeline.hops.samples.sample import SampleSpec

    def make(prompts: Sequence[str], seeds: Sequence[int]) -> list[Image.Image]:
        return generator.generate(list(prompts), list(seeds), SampleSpec(steps=steps))

    return AiImageSource(f"checkpoint:{generator.sha256}", generator.sha256, steps, make)


def web_signer(seed: int) -> SeededSigner:
    """The C2PA signer of a web's feedback images, derived from the web's seed."""
    names = ("synthetic web root", "synthetic web generator", "crawl2diffusion synthetic web")
    return seeded_signer(f"crawl2diffusion-synthetic-web:{seed}", names=names)


def _fingerprint(config: FeedbackConfig, source: AiImageSource) -> str:
    payload = {"config": dataclasses.asdict(config), "source": source.name}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def grow_web(
    root: str | Path, source: AiImageSource, config: FeedbackConfig = FeedbackConfig()
) -> WebManifest:
    """Add the feedback crawl to the web under ``root`` (generated by ``generate_web``);
    return its manifest. Growing again with the same config and source returns the web as
    it is; a web that already has the crawl under other settings is refused. New files are
    written first, then each table and index is replaced whole (rename), the manifest last:
    a crash before the manifest leaves files no route names, or tables to regenerate."""
    root = Path(root).absolute()
    with web_lock(root.parent / f".{root.name}.lock"):
        manifest = WebManifest.load(root)
        if manifest is None:
            raise FileNotFoundError(f"{root} holds no synthetic web: generate it first")
        fingerprint = _fingerprint(config, source)
        if config.crawl_id in manifest.crawl_ids:
            grown = json.loads((root / "manifest.json").read_text()).get("feedback", {})
            if grown.get("crawl_id") == config.crawl_id and grown.get("fingerprint") == fingerprint:
                return manifest
            raise GrownElsewise(
                f"{root} already has crawl {config.crawl_id} under other settings: "
                "generate the web again to grow it anew"
            )
        return _Grower(root, manifest, config, source, fingerprint).run()


class _Grower:
    def __init__(
        self,
        root: Path,
        manifest: WebManifest,
        config: FeedbackConfig,
        source: AiImageSource,
        fingerprint: str,
    ) -> None:
        self.root, self.manifest, self.cfg, self.source = root, manifest, config, source
        self.fingerprint = fingerprint
        self.seed = int(manifest.config.get("seed", 0))
        self.truth = pq.read_table(root / manifest.paths["truth"])
        self.signer = web_signer(self.seed)
        self.images: dict[int, ImageSpec] = {}
        self.routes = (root / manifest.paths["routes"]).read_bytes()
        self.next_id = 1 + max(
            json.loads(line)["image_id"] for line in self.routes.splitlines() if line.strip()
        )
        self.hosts = self._hosts()

    def _rng(self, *parts: object):
        return rng_for(self.seed, "feedback", self.cfg.crawl_id, *parts)

    def _content(self) -> list[dict[str, Any]]:
        """Healthy content images of the earlier crawls, in URL order."""
        rows = [
            r
            for r in self.truth.to_pylist()
            if r["role"] == "content" and r["fault"] is None and r["caption_en"]
            and not r["host_noai"] and not r["unsafe"] and not r["ai_generated"]
        ]  # fmt: skip
        return sorted(rows, key=lambda r: r["url"])

    def _hosts(self) -> list[tuple[str, str]]:
        """(scheme, host) of the sites that post: content hosts that do not opt out."""
        found = {(r["url"].split("://", 1)[0], r["host"]) for r in self._content()}
        hosts = sorted(found)
        if len(hosts) < self.cfg.reposts:
            raise ValueError(f"the web has {len(hosts)} sites, fewer than {self.cfg.reposts}")
        return hosts

    def _spec(self, host: tuple[str, str], path: str, data: bytes, fmt: str, **kw) -> ImageSpec:
        scheme, name = host
        im = ImageSpec(self.next_id, "content", name, scheme, path, "", "plain", None,
                       self.cfg.crawl_id, served_as=fmt, **kw)  # fmt: skip
        self.next_id += 1
        im.file = file_relpath(im)
        target = self.root / im.file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        im.n_bytes, im.sha256 = len(data), hashlib.sha256(data).hexdigest()
        self.images[im.id] = im
        return im

    def _repost(self, k: int, data: bytes, fmt: str, prompt: str, **kw) -> list[ImageSpec]:
        """``data`` posted on ``reposts`` distinct sites, the first the original."""
        hosts = self._rng("hosts", k).sample(self.hosts, self.cfg.reposts)
        crawl = self.cfg.crawl_id.lower()
        specs: list[ImageSpec] = []
        for host in hosts:
            path = f"/gen/{crawl}/{k:03d}.{_EXT[fmt]}"
            extra = {"repost_of": specs[0].id, "repost_kind": "copy"} if specs else {}
            specs.append(self._spec(host, path, data, fmt, captions={"en": prompt}, **kw, **extra))
        return specs

    def _ai_images(self) -> list[ImageSpec]:
        cfg = self.cfg
        n = cfg.per_signal * len(SHARES)
        content = self._content()
        if len(content) < n:
            raise ValueError(f"the web has {len(content)} captions, fewer than {n} prompts")
        prompts = sorted({r["caption_en"] for r in content})
        prompts = self._rng("prompts").sample(prompts, n)
        seeds = [self._rng("seed", i).randrange(2**31) for i in range(n)]
        pictures = self.source.make(prompts, seeds)
        if len(pictures) != n:
            raise ValueError(f"the image source made {len(pictures)} images for {n} prompts")
        specs: list[ImageSpec] = []
        for k, (prompt, seed, picture) in enumerate(zip(prompts, seeds, pictures, strict=True)):
            share = SHARES[k // cfg.per_signal]
            gen = Generation(prompt, seed, self.source.steps, self.source.checkpoint_sha256)
            data = self._upscaled(picture, share, gen)
            specs += self._repost(
                k,
                data,
                FORMATS[share],
                prompt,
                ai_generated=True,
                ai_signal=share if share in SIGNALS else None,
                metadata_stripped=share == STRIPPED,
            )
        return specs

    def _upscaled(self, picture: Image.Image, share: str, gen: Generation) -> bytes:
        """The file of ``picture`` upscaled to ``side``, doubled until it passes the size rule
        (a flat picture compresses well) or reaches :data:`MAX_SIDE`."""
        side = self.cfg.side
        while True:
            upscaled = picture.convert("RGB").resize((side, side), Image.LANCZOS)
            data = ai_file(upscaled, share, gen, self.signer)
            if len(data) >= DecodePolicy.min_bytes or side >= MAX_SIDE:
                return data
            side = min(MAX_SIDE, side * 2)

    def _human_images(self, first: int) -> list[ImageSpec]:
        """Drawings of the earlier crawls (an artist's first), reposted with credentials
        that say AI training ``notAllowed``."""
        drawn = [r for r in self._content() if r["file"] and r["format"] in ("PNG", "JPEG")]
        drawn = [r for r in drawn if r["repost_of"] is None]
        by_artist = [r for r in drawn if r["artist"]] or drawn
        picked = self._rng("human").sample(by_artist, min(self.cfg.not_allowed, len(by_artist)))
        specs: list[ImageSpec] = []
        for j, row in enumerate(picked):
            with Image.open(self.root / row["file"]) as image:
                data = not_allowed_png(image, row["caption_en"], self.signer)
            specs += self._repost(first + j, data, "PNG", row["caption_en"], artist=row["artist"],
                                  training_mining="notAllowed")  # fmt: skip
        return specs

    def _pages(self, specs: list[ImageSpec]) -> tuple[list[Site], list[PagePlan]]:
        """Each site's reposts on pages of ``imgs_per_page``, their prompts as alt text."""
        cfg = self.cfg
        by_host: dict[tuple[str, str], list[ImageSpec]] = {}
        for im in specs:
            by_host.setdefault((im.scheme, im.host), []).append(im)
        sites, pages = [], []
        crawl = cfg.crawl_id.lower()
        for index, (scheme, host) in enumerate(sorted(by_host)):
            site = Site(index, host, host.split(".")[0].replace("-", " ").title(), scheme, "en",
                        "gallery", f"/gen/{crawl}/")  # fmt: skip
            sites.append(site)
            posted = by_host[(scheme, host)]
            self._rng("order", host).shuffle(posted)
            for n in range(0, len(posted), cfg.imgs_per_page):
                url = f"{site.origin}/gen/{crawl}/page-{n // cfg.imgs_per_page + 1}.html"
                tags = [self._tag(im) for im in posted[n : n + cfg.imgs_per_page]]
                page = PagePlan(url, index, url, "en", cfg.crawl_id, imgs=tags,
                                title=f"Made with AI – {site.name}",
                                paragraphs=["Prompts and pictures from our generator."],
                                anchors=[Anchor("/", "Home")])  # fmt: skip
                page.html = render_page(page, site, "AI pictures and their prompts")
                pages.append(page)
        self._rng("pages").shuffle(pages)
        return sites, pages

    @staticmethod
    def _tag(im: ImageSpec) -> ImgTag:
        url = f"{im.scheme}://{im.host}{im.path}"
        alt = im.captions["en"]
        return ImgTag("content", "prompt", "absolute", im.id, src=url, alt=alt, alt_lang="en",
                      describes_image=True, image_url=url, url_resolved=url)  # fmt: skip

    def run(self) -> WebManifest:
        cfg, root = self.cfg, self.root
        ai = self._ai_images()
        human = self._human_images(cfg.per_signal * len(SHARES))
        sites, pages = self._pages(ai + human)
        written = write_crawl(root, cfg.crawl_id, pages, cfg.wat_files, 1, self.seed)
        plan = WebPlan(sites, self.images, [CrawlPlan(cfg.crawl_id, pages)])
        modified = http_date(file_start(cfg.crawl_id, 0))
        routes = b"".join(
            json.dumps(route_record(im, modified)).encode() + b"\n" for im in self.images.values()
        )
        _write_atomic(
            root / self.manifest.paths["routes"], self.routes.rstrip(b"\n") + b"\n" + routes
        )
        languages = tuple(self.manifest.config.get("languages", ("en",)))
        bomb_side = int(self.manifest.config.get("bomb_side", 0))
        self._append("truth", truth_rows(plan, languages, bomb_side))
        self._append("pages", page_rows(plan, written.infos))
        self._append("captures", capture_rows(written.infos))
        index = json.loads((root / "collinfo.json").read_text())
        index = collinfo((cfg.crawl_id,), cfg.wat_files) + index
        _write_atomic(root / "collinfo.json", (json.dumps(index, indent=1) + "\n").encode())
        ca = f"c2pa/{cfg.crawl_id}-ca.pem"
        (root / "c2pa").mkdir(exist_ok=True)
        (root / ca).write_bytes(self.signer.ca)
        return self._record(written, ai, human, len(pages), ca)

    def _append(self, name: str, rows: list[dict[str, Any]]) -> None:
        path = self.root / self.manifest.paths[name]
        old = pq.read_table(path)
        new = pa.Table.from_pylist(rows, schema=old.schema)
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(pa.concat_tables([old, new]), tmp, compression="zstd")
        os.replace(tmp, path)

    def _record(self, written, ai: list[ImageSpec], human: list[ImageSpec], pages: int,
                ca: str) -> WebManifest:  # fmt: skip
        cfg = self.cfg
        data = json.loads((self.root / "manifest.json").read_text())
        data["crawl_ids"].append(cfg.crawl_id)
        paths = data["paths"]
        paths["wat"][cfg.crawl_id], paths["warc"][cfg.crawl_id] = (
            written.wat_paths,
            written.warc_paths,
        )
        paths["wat_paths"][cfg.crawl_id] = f"crawl-data/{cfg.crawl_id}/wat.paths.gz"
        paths["warc_paths"][cfg.crawl_id] = f"crawl-data/{cfg.crawl_id}/warc.paths.gz"
        shares = {s: sum(1 for im in ai if (im.ai_signal or STRIPPED) == s) for s in SHARES}
        data["feedback"] = {
            "crawl_id": cfg.crawl_id,
            "fingerprint": self.fingerprint,
            "source": self.source.name,
            "checkpoint_sha256": self.source.checkpoint_sha256,
            "config": dataclasses.asdict(cfg),
            "c2pa_trust_anchor": ca,
            "counts": {
                "pages": pages,
                "ai_urls": len(ai),
                "ai_urls_by_share": shares,
                "not_allowed_urls": len(human),
                "wat_records": written.wat_records,
            },
        }
        _write_atomic(self.root / "manifest.json", (json.dumps(data, indent=1) + "\n").encode())
        manifest = WebManifest.load(self.root)
        assert manifest is not None
        return manifest
