"""The project's settings, read once from the environment by the code location and the CLI.

Every field ``name`` is read from ``CRAWL2DIFFUSION_<NAME>`` (``lake`` from
``CRAWL2DIFFUSION_LAKE``); an unset or empty variable leaves the field's default, which is
written here and nowhere else. ``assets_defs/definitions.py`` builds its resources from
:meth:`Settings.from_env`, and ``crawl2diffusion`` starts from the same settings, with its
flags (``--lake``, ``--data``) applied by :meth:`Settings.override`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_PREFIX = "CRAWL2DIFFUSION_"
PROFILES = ("demo", "commoncrawl")
ENGINES = ("in_process", "ray")
"""Where the wide hops run (:mod:`pipeline.engine`): in the step's process, or on Ray."""


@dataclass(frozen=True)
class Settings:
    """Where the data is and which models run; see :func:`env_name` for each variable."""

    profile: str = "demo"
    """``demo``: the generated synthetic web under ``data/web``; ``commoncrawl``: real crawls."""
    data: str = "data"
    """The data folder: the synthetic web, and the lake unless ``lake`` is set."""
    lake: str = ""
    """The lake root, a path or ``s3://bucket/prefix``; empty: ``<data>/lake``."""
    cc_root: str = "https://data.commoncrawl.org"
    """Common Crawl's root (``s3://commoncrawl`` is read anonymously)."""
    cc_index: str = "https://index.commoncrawl.org/collinfo.json"
    """The crawl index (collinfo.json)."""
    crawls: tuple[str, ...] = ()
    """Crawl ids to read (comma-separated in the environment); empty: every crawl listed."""
    clip_model: str = ""
    """The CLIP model (open_clip name); empty: the shipped tiny CLIP."""
    clip_pretrained: str | None = None
    """The CLIP weights: a hub tag, a checkpoint path or ``local-dir:/path``."""
    punsafe_head: str = ""
    """LAION's punsafe head weights (``.pth``); empty: the shipped head."""
    pwatermark_head: str = ""
    """LAION's pwatermark head weights (``.pth``); empty: the shipped head."""
    aesthetic_head: str = ""
    """LAION's aesthetic head weights (``.pth``); empty: the shipped head."""
    engine: str = "in_process"
    """Where hops 1, 3 and the download run: ``in_process`` or ``ray`` (the ``ray`` extra)."""
    ray_address: str = ""
    """The Ray cluster (``host:port``, ``ray://host:port``); empty: a local one."""
    safety_threshold: float = 0.02
    """punsafe at or above which a generated sample is flagged and stored blurred: the best F1
    on degraded 32 px drawings for the shipped head; its error rates at this threshold are in
    ``pipeline/models/heads/punsafe_calibration.json`` (set it anew with another head)."""
    energy_country: str = "WLD"
    """Where training's electricity comes from (ISO 3166 alpha-3, ``WLD``: world average), for
    its emissions (pipeline/hops/training/energy.py lists the countries known)."""
    cpu_watts_per_core: float = 10.0
    """Stated power of one busy CPU core, in watts (a desktop CPU's TDP over its cores), for
    training's energy estimate."""
    exclude_ai_generated: bool = True
    """Leave images whose metadata declares a trained model out of the aesthetic subset
    (``0``/``false`` in the environment keeps them); the aesthetic config's default."""
    c2pa_trust_anchors: str = ""
    """A PEM bundle of trusted C2PA signers' roots; empty: manifests are at most ``valid``."""
    c2pa_sign_cert: str = ""
    """The certificate chain (PEM) that signs the samples' C2PA manifests; empty: unsigned."""
    c2pa_sign_key: str = ""
    """The private key (PEM) of ``c2pa_sign_cert``."""

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r} (expected 'demo' or 'commoncrawl')")
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r} (expected one of {list(ENGINES)})")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings named in ``environ`` (default: ``os.environ``), defaults elsewhere."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(env_name(field.name), "").strip()
            if raw:
                values[field.name] = _parse(field.name, raw)
        return cls(**values)

    def override(self, **values: object) -> Settings:
        """These settings with the given values replaced; ``None`` (a flag not given) keeps one.

        Paths are kept as strings (``Path`` values are converted)."""
        given = {
            k: str(v) if isinstance(v, Path) else v for k, v in values.items() if v is not None
        }
        return dataclasses.replace(self, **given)

    @property
    def lake_root(self) -> str:
        """The lake root: ``lake`` when set, else ``<data>/lake`` as an absolute path."""
        return self.lake or str(Path(self.data).resolve() / "lake")

    @property
    def web_root(self) -> str:
        """The synthetic web's folder: ``<data>/web`` as an absolute path."""
        return str(Path(self.data).resolve() / "web")


def env_name(field: str) -> str:
    """The environment variable of a setting: ``lake`` -> ``CRAWL2DIFFUSION_LAKE``."""
    return ENV_PREFIX + field.upper()


def _parse(field: str, raw: str) -> object:
    if field == "crawls":
        return tuple(c.strip() for c in raw.split(",") if c.strip())
    if field in ("safety_threshold", "cpu_watts_per_core"):
        return float(raw)
    if field == "exclude_ai_generated":
        if raw.lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise ValueError(f"{env_name(field)} must be true or false, not {raw!r}")
        return raw.lower() in ("1", "true", "yes")
    return raw
