"""``erase_job``: the CLI's ``crawl2diffusion erase`` as a Dagster job (one op, thin)."""

from dagster import Config, MetadataValue, OpExecutionContext, Output, job, op

from assets_defs.resources import LakeResource
from pipeline.erase.run import erase
from pipeline.erase.targets import EraseRequest


class EraseConfig(Config):
    urls: list[str] = []
    domains: list[str] = []
    sha256s: list[str] = []
    opted_out: bool = False
    """Everything the opt-out list withdraws now."""
    reason: str | None = None
    """Tombstone reason (default: ``owner_request``, or the opt-out match)."""
    dry_run: bool = False


@op
def erase_images(context: OpExecutionContext, config: EraseConfig, lake: LakeResource) -> Output:
    request = EraseRequest(
        tuple(config.urls), tuple(config.domains), tuple(config.sha256s), config.opted_out,
        config.reason,
    )  # fmt: skip
    result = erase(lake.lake(), request, dry_run=config.dry_run)
    counts = result.counts()
    context.log.info(f"erasure {result.erasure_id}: {counts}")
    return Output(
        result.erasure_id,
        metadata={
            "erasure_id": MetadataValue.text(result.erasure_id),
            "dry_run": MetadataValue.bool(config.dry_run),
            "pairs": MetadataValue.int(len(result.targets.pair_ids)),
            "images": MetadataValue.int(len(result.targets.url_ids)),
            "tar_members": MetadataValue.int(result.tar_members),
            "tombstones": MetadataValue.int(result.tombstones),
            "removed": MetadataValue.json(counts),
        },
    )


@job(description="Erase images' bytes (tars, embeddings, grids), vacuum, leave tombstones.")
def erase_job() -> None:
    erase_images()
