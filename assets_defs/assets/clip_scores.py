"""``clip_scores`` and ``image_embeddings`` (hop 3): the CLIP filter over a slice's kept pairs."""

import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    AssetSpec,
    AutomationCondition,
    Config,
    MetadataValue,
    multi_asset,
)

from assets_defs.factory import Decisions, read_input, table_checks, table_result
from assets_defs.metadata import code_version, stopwatch
from assets_defs.partitions import wat_slices
from assets_defs.pools import Pool
from assets_defs.resources import (
    ClipModelResource,
    EngineResource,
    LakeResource,
    SyntheticWebResource,
)
from pipeline.hops.clip.decode import DecodePolicy
from pipeline.hops.clip.fetch import Fetcher, FetchPolicy
from pipeline.hops.clip.filter import Thresholds, cached_outcomes, embeddings_table, score_pairs
from pipeline.hops.dataset import hash_lists, opt_outs
from pipeline.hops.dataset.hash_lists import HashMatching
from pipeline.hops.dataset.opt_outs import OptOutList
from pipeline.lake.tables import TableName
from pipeline.lake.urls import HostPolicy
from pipeline.lineage.calibrate import near_duplicate_rule
from pipeline.provenance.reader import ProvenancePolicy
from pipeline.settings import Settings

CODE_VERSION = code_version(__name__)


class ClipScoresConfig(Config):
    threshold_en: float = 0.28
    """LAION-5B's minimum CLIP ViT-B/32 cosine similarity for English pairs."""
    threshold_other: float = 0.26
    """... and for every other language (and for pairs with no detected language)."""
    thresholds_by_language: dict[str, float] = {}
    """Overrides for single languages (ISO 639-1 code -> minimum similarity)."""
    min_image_bytes: int = 5 * 1024
    min_image_side: int = 0
    max_image_pixels: int = 64_000_000
    max_image_bytes: int = 10_000_000
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    retries: int = 2
    backoff_s: float = 0.2
    max_redirects: int = 3
    disallowed_header_directives: list[str] = ["noai", "noimageai"]
    private_host_allowlist: list[str] = []
    fetch_workers: int = 16
    keep_images: bool = False
    """Keep image bytes in ``image_embeddings`` (LAION discarded them after scoring)."""
    max_pdq_distance: int = 31
    """A fetched image matches a takedown list's PDQ hash within this Hamming distance."""
    max_row_change: float = 0.5

    def thresholds(self) -> Thresholds:
        return Thresholds({"en": self.threshold_en, **self.thresholds_by_language},
                          self.threshold_other)  # fmt: skip

    def fetch_policy(
        self, resolve: dict[str, str], opt_outs: OptOutList | None = None
    ) -> FetchPolicy:
        return FetchPolicy(
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
            retries=self.retries,
            backoff_s=self.backoff_s,
            max_bytes=self.max_image_bytes,
            max_redirects=self.max_redirects,
            disallowed_directives=tuple(self.disallowed_header_directives),
            host_policy=HostPolicy.from_list(self.private_host_allowlist),
            resolve=resolve,
            resolve_only=bool(resolve),
            opt_outs=opt_outs or OptOutList(),
        )

    def hash_matching(self) -> HashMatching:
        return HashMatching(max_pdq_distance=self.max_pdq_distance)

    def decode_policy(self) -> DecodePolicy:
        return DecodePolicy(self.min_image_bytes, self.min_image_side, self.max_image_pixels)


@multi_asset(
    specs=[
        AssetSpec(
            TableName.CLIP_SCORES,
            code_version=CODE_VERSION,
            deps=[TableName.ALT_TEXT_PAIRS],
            group_name="laion",
            kinds={"parquet", "pytorch"},
            description="Per kept pair: fetch status, CLIP similarity, punsafe, pwatermark.",
            automation_condition=AutomationCondition.eager(),
        ),
        AssetSpec(
            TableName.IMAGE_EMBEDDINGS,
            code_version=CODE_VERSION,
            deps=[TableName.ALT_TEXT_PAIRS],
            group_name="laion",
            kinds={"parquet"},
            description="CLIP image embeddings, one per URL and model (bytes discarded).",
            automation_condition=AutomationCondition.eager(),
        ),
    ],
    partitions_def=wat_slices,
    pool=Pool.DOWNLOAD,
    check_specs=[
        *table_checks(TableName.CLIP_SCORES, conserves=True, row_count=True),
        *table_checks(TableName.IMAGE_EMBEDDINGS),
    ],
    can_subset=False,
)
def clip_scores(
    context: AssetExecutionContext,
    config: ClipScoresConfig,
    lake: LakeResource,
    clip_model: ClipModelResource,
    synthetic_web: SyntheticWebResource,
    engine: EngineResource,
):
    """Fetch, embed and score the slice's kept pairs; reuse embeddings of known URLs."""
    started = stopwatch()
    key = context.partition_key
    lake_ = lake.lake()
    pairs = read_input(lake_, TableName.ALT_TEXT_PAIRS, [key])
    clip = clip_model.clip()
    heads = {kind: clip_model.head(kind) for kind in ("punsafe", "pwatermark")}
    kept_urls = set(pairs.filter(pairs.column("kept")).column("url_id").to_pylist())
    # a slice's own embeddings count as cache only once the slice was published whole: after a
    # crash between the two publishes, the re-run fetches again, as the uninterrupted run did
    published = lake_.manifest(TableName.CLIP_SCORES, key) is not None
    partitions = [p for p in lake_.partitions(TableName.IMAGE_EMBEDDINGS) if published or p != key]
    # a lookup of this slice's url_ids, not a scan of every embedding
    known = lake_.lookup(TableName.IMAGE_EMBEDDINGS, "url_id", kept_urls, partitions=partitions)
    cached = cached_outcomes(known, clip.model_id, kept_urls)
    # the withdrawals as they stand now (they may have grown since hop 2 ran); the versions
    # read are in lake/versions_read
    withdrawn = opt_outs.load(lake_)
    takedowns = hash_lists.load(lake_, config.hash_matching())
    fetcher = Fetcher(
        config.fetch_policy(synthetic_web.resolve_map(), withdrawn), config.fetch_workers
    )
    runner = engine.engine()  # in process, or a Ray Data pipeline (fetch tasks, CLIP actors)
    with runner.session():
        result = score_pairs(
            pairs,
            clip,
            fetcher,
            config.decode_policy(),
            config.thresholds(),
            heads["punsafe"],
            heads["pwatermark"],
            cached=cached,
            keep_images=config.keep_images,
            progress=context.log.info,
            hash_lists=takedowns,
            provenance=ProvenancePolicy.from_settings(Settings.from_env()),
            embed=runner.fetch_and_embed,
        )
    own_urls = _urls_of(lake_, key) - result.withdrawn_cached
    own_cached = [o for uid, o in cached.items() if uid in own_urls]
    embeddings = result.embeddings
    if own_cached:  # this partition's earlier embeddings stay with it when it is re-run
        carried = embeddings_table(own_cached, clip.model_id, clip.embed_dim, config.keep_images)
        embeddings = pa.concat_tables([embeddings, carried]).sort_by("url_id")
    model_meta = {
        "model_id": MetadataValue.text(clip.model_id),
        "model": MetadataValue.text(clip.spec.model),
        "device": MetadataValue.text(clip.device),
        "engine": MetadataValue.text(runner.kind),
        **{f"{k}_head_sha256": MetadataValue.text(h.sha256 or "") for k, h in heads.items()},
    }
    lake_.write_partition(TableName.IMAGE_EMBEDDINGS, embeddings, key, {"model_id": clip.model_id})
    uri = lake_.write_partition(
        TableName.CLIP_SCORES, result.table, key, {"model_id": clip.model_id}
    )
    thresholds = config.thresholds()
    yield table_result(
        context,
        TableName.IMAGE_EMBEDDINGS,
        embeddings,
        lake_.partition_uri(TableName.IMAGE_EMBEDDINGS, key),
        yielded=True,
        metadata={
            **model_meta,
            "embedding_dim": MetadataValue.int(clip.embed_dim),
            "urls_embedded_now": MetadataValue.int(result.embeddings.num_rows),
            "image_bytes_kept": MetadataValue.bool(config.keep_images),
        },
    )
    kept = result.table.filter(result.table.column("kept"))
    sims = [s for s in kept.column("similarity").to_pylist() if s is not None]
    yield table_result(
        context,
        TableName.CLIP_SCORES,
        result.table,
        uri,
        decisions=Decisions(result.rows_in, result.rows_kept, result.dropped),
        max_row_change=config.max_row_change,
        started=started,
        yielded=True,
        metadata={
            **model_meta,
            "urls_fetched": MetadataValue.int(result.urls_fetched),
            "urls_from_cache": MetadataValue.int(result.urls_cached),
            "thresholds": MetadataValue.json({**thresholds.by_language, "other": thresholds.other}),
            "mean_similarity_kept": MetadataValue.float(
                round(sum(sims) / len(sims), 4) if sims else 0.0
            ),
            "upstream_partition": MetadataValue.text(key),
            "max_pdq_distance": MetadataValue.int(config.max_pdq_distance),
            **near_duplicate_rule().metadata(),  # trace by image's calibrated near-duplicate rule
            **{f"seconds/{k}": MetadataValue.float(round(v, 3)) for k, v in result.seconds.items()},
        },
    )


def _urls_of(lake_, key: str) -> set[str]:
    own = lake_.read(TableName.IMAGE_EMBEDDINGS, [key], columns=["url_id"])
    return set(own.column("url_id").to_pylist()) if own is not None else set()
