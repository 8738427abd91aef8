"""The code location: assets, resources and jobs, with resources chosen by profile.

Settings come from the environment through :class:`pipeline.settings.Settings` (the same
settings the ``crawl2diffusion`` CLI reads; every variable and default is documented there).
``CRAWL2DIFFUSION_PROFILE=demo`` (the default) uses the generated synthetic web under
``$CRAWL2DIFFUSION_DATA/web``; ``commoncrawl`` reads real Common Crawl
(``CRAWL2DIFFUSION_CC_ROOT``, ``_CC_INDEX``, ``_CRAWLS``) with the CLIP model and heads named
by ``CRAWL2DIFFUSION_CLIP_MODEL``, ``_CLIP_PRETRAINED`` and ``_{PUNSAFE,PWATERMARK,
AESTHETIC}_HEAD``. The lake root is ``CRAWL2DIFFUSION_LAKE`` (default
``$CRAWL2DIFFUSION_DATA/lake``; may be ``s3://bucket/prefix``).
"""

from __future__ import annotations

from pathlib import Path

from dagster import Definitions, PipesSubprocessClient

from assets_defs.assets.aesthetics import aesthetic_scores, aesthetic_subset
from assets_defs.assets.ai_share import ai_share
from assets_defs.assets.alt_text_pairs import alt_text_pairs
from assets_defs.assets.clip_scores import clip_scores
from assets_defs.assets.crawl_manifest import crawl_manifest
from assets_defs.assets.dataset_report import dataset_report
from assets_defs.assets.diffusion_model import diffusion_model
from assets_defs.assets.hash_lists import hash_lists
from assets_defs.assets.image_shards import image_shards
from assets_defs.assets.laion_dataset import laion_dataset
from assets_defs.assets.opt_outs import opt_out_not_reached, opt_out_report, opt_outs
from assets_defs.assets.samples import replication_audit, samples
from assets_defs.assets.style_imitation import style_imitation
from assets_defs.assets.wat_image_links import wat_image_links
from assets_defs.erase_job import erase_job
from assets_defs.jobs import (
    clip_filter_job,
    crawl_manifest_job,
    dataset_job,
    opt_out_report_job,
    release_job,
    training_job,
    wat_to_pairs_job,
)
from assets_defs.progress import progress_logger
from assets_defs.resources import (
    ClipModelResource,
    CrawlSourceResource,
    EngineResource,
    LakeResource,
    SyntheticWebResource,
)
from assets_defs.schedules import weekly_dataset_rebuild
from assets_defs.sensors import new_crawl_sensor, opt_out_sensor
from assets_defs.trace_job import trace_url
from pipeline.settings import Settings


def build_resources(settings: Settings, web: dict | None = None) -> dict:
    """Resources for ``settings`` (its profile picks them); ``web`` overrides
    SyntheticWebResource fields (e.g. a smaller web for tests)."""
    lake = LakeResource(root=settings.lake_root)
    # training runs in a child process (docs/deploy.md: PipesK8sClient for a GPU pod)
    pipes = PipesSubprocessClient()
    engine = EngineResource(kind=settings.engine, ray_address=settings.ray_address)
    if settings.profile == "demo":
        web_root = Path(settings.web_root)
        return {
            "lake": lake,
            "crawl_source": CrawlSourceResource(
                data_root=str(web_root), collinfo_uri=str(web_root / "collinfo.json")
            ),
            "synthetic_web": SyntheticWebResource(root=str(web_root), **(web or {})),
            "clip_model": ClipModelResource(safety_threshold=settings.safety_threshold),
            "pipes_subprocess_client": pipes,
            "engine": engine,
        }
    root = settings.cc_root
    return {
        "lake": lake,
        "crawl_source": CrawlSourceResource(
            data_root=root,
            collinfo_uri=settings.cc_index,
            crawl_ids=list(settings.crawls),
            storage_options={"anon": True} if root.startswith("s3://") else {},
        ),
        "synthetic_web": SyntheticWebResource(enabled=False),
        "clip_model": ClipModelResource(
            model=settings.clip_model,
            pretrained=settings.clip_pretrained,
            punsafe_head=settings.punsafe_head,
            pwatermark_head=settings.pwatermark_head,
            aesthetic_head=settings.aesthetic_head,
            safety_threshold=settings.safety_threshold,
        ),
        "pipes_subprocess_client": pipes,
        "engine": engine,
    }


ASSETS = [
    crawl_manifest,
    wat_image_links,
    alt_text_pairs,
    clip_scores,
    laion_dataset,
    aesthetic_scores,
    aesthetic_subset,
    image_shards,
    diffusion_model,
    samples,
    replication_audit,
    style_imitation,
    opt_outs,
    hash_lists,
    opt_out_report,
    opt_out_not_reached,
    dataset_report,
    ai_share,
]
"""Every asset of the code location, in the order of the hops."""


def build_definitions(
    profile: str | None = None,
    data_dir: str | Path | None = None,
    web: dict | None = None,
    settings: Settings | None = None,
) -> Definitions:
    """The code location for ``settings`` (default: from the environment), with ``profile``
    and ``data_dir`` replacing its own when given."""
    resolved = (settings or Settings.from_env()).override(profile=profile, data=data_dir)
    return Definitions(
        assets=ASSETS,
        jobs=[
            crawl_manifest_job,
            wat_to_pairs_job,
            clip_filter_job,
            dataset_job,
            release_job,
            training_job,
            opt_out_report_job,
            trace_url,
            erase_job,
        ],
        sensors=[new_crawl_sensor, opt_out_sensor],
        schedules=[weekly_dataset_rebuild],
        loggers={"progress": progress_logger},
        resources=build_resources(resolved, web),
    )


defs = build_definitions()
