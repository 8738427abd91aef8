"""The code location: assets, resources and jobs, with resources chosen by profile.

``CRAWL2DIFFUSION_PROFILE=demo`` (the default) uses the generated synthetic web under
``$CRAWL2DIFFUSION_DATA`` (default ``./data``); ``commoncrawl`` reads real Common Crawl
(``CRAWL2DIFFUSION_CC_ROOT``, default ``https://data.commoncrawl.org``; ``s3://commoncrawl``
reads anonymously) for the crawls in ``CRAWL2DIFFUSION_CRAWLS`` (comma-separated ids; empty:
every crawl in the index at ``CRAWL2DIFFUSION_CC_INDEX``, default Common Crawl's collinfo.json).
There, ``CRAWL2DIFFUSION_CLIP_MODEL`` / ``_CLIP_PRETRAINED`` pick the CLIP model and
``CRAWL2DIFFUSION_{PUNSAFE,PWATERMARK,AESTHETIC}_HEAD`` the head weights (LAION's ``.pth``).
The lake root is ``CRAWL2DIFFUSION_LAKE`` (default ``$CRAWL2DIFFUSION_DATA/lake``; may be
``s3://bucket/prefix``).
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import Definitions

from assets_defs.assets.aesthetics import aesthetic_scores, aesthetic_subset
from assets_defs.assets.alt_text_pairs import alt_text_pairs
from assets_defs.assets.clip_scores import clip_scores
from assets_defs.assets.crawl_manifest import crawl_manifest
from assets_defs.assets.diffusion_model import diffusion_model
from assets_defs.assets.image_shards import image_shards
from assets_defs.assets.laion_dataset import laion_dataset
from assets_defs.assets.opt_outs import opt_out_report, opt_outs
from assets_defs.assets.samples import replication_audit, samples
from assets_defs.assets.wat_image_links import wat_image_links
from assets_defs.freshness import freshness_sensor, weekly_freshness_checks
from assets_defs.jobs import (
    clip_filter_job,
    crawl_manifest_job,
    dataset_job,
    opt_out_report_job,
    training_job,
    wat_to_pairs_job,
)
from assets_defs.resources import (
    ClipModelResource,
    CrawlSourceResource,
    LakeResource,
    SyntheticWebResource,
)
from assets_defs.schedules import weekly_dataset_rebuild
from assets_defs.sensors import new_crawl_sensor, opt_out_sensor
from assets_defs.trace_job import trace_url


def build_resources(profile: str, data_dir: str | Path, web: dict | None = None) -> dict:
    """Resources for a profile (``demo`` or ``commoncrawl``) with data under ``data_dir``;
    ``web`` overrides SyntheticWebResource fields (e.g. a smaller web for tests)."""
    data = Path(data_dir).resolve()
    lake = LakeResource(root=os.environ.get("CRAWL2DIFFUSION_LAKE", str(data / "lake")))
    if profile == "demo":
        web_root = data / "web"
        return {
            "lake": lake,
            "crawl_source": CrawlSourceResource(
                data_root=str(web_root), collinfo_uri=str(web_root / "collinfo.json")
            ),
            "synthetic_web": SyntheticWebResource(root=str(web_root), **(web or {})),
            "clip_model": ClipModelResource(),
        }
    if profile == "commoncrawl":
        root = os.environ.get("CRAWL2DIFFUSION_CC_ROOT", "https://data.commoncrawl.org")
        crawls = [c for c in os.environ.get("CRAWL2DIFFUSION_CRAWLS", "").split(",") if c]
        return {
            "lake": lake,
            "crawl_source": CrawlSourceResource(
                data_root=root,
                collinfo_uri=os.environ.get(
                    "CRAWL2DIFFUSION_CC_INDEX", "https://index.commoncrawl.org/collinfo.json"
                ),
                crawl_ids=crawls,
                storage_options={"anon": True} if root.startswith("s3://") else {},
            ),
            "synthetic_web": SyntheticWebResource(enabled=False),
            "clip_model": ClipModelResource(
                model=os.environ.get("CRAWL2DIFFUSION_CLIP_MODEL", ""),
                pretrained=os.environ.get("CRAWL2DIFFUSION_CLIP_PRETRAINED") or None,
                punsafe_head=os.environ.get("CRAWL2DIFFUSION_PUNSAFE_HEAD", ""),
                pwatermark_head=os.environ.get("CRAWL2DIFFUSION_PWATERMARK_HEAD", ""),
                aesthetic_head=os.environ.get("CRAWL2DIFFUSION_AESTHETIC_HEAD", ""),
            ),
        }
    raise ValueError(f"unknown profile {profile!r} (expected 'demo' or 'commoncrawl')")


def build_definitions(
    profile: str = "demo", data_dir: str | Path = "data", web: dict | None = None
) -> Definitions:
    return Definitions(
        assets=[
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
            opt_outs,
            opt_out_report,
        ],
        jobs=[
            crawl_manifest_job,
            wat_to_pairs_job,
            clip_filter_job,
            dataset_job,
            training_job,
            opt_out_report_job,
            trace_url,
        ],
        asset_checks=weekly_freshness_checks,
        sensors=[new_crawl_sensor, opt_out_sensor, freshness_sensor],
        schedules=[weekly_dataset_rebuild],
        resources=build_resources(profile, data_dir, web),
    )


defs = build_definitions(
    os.environ.get("CRAWL2DIFFUSION_PROFILE", "demo"),
    os.environ.get("CRAWL2DIFFUSION_DATA", "data"),
)
