"""One default per setting: each hop's Dagster config, left at its defaults, becomes its
pipeline dataclass at the dataclass's own defaults."""

from __future__ import annotations

import dataclasses

import pytest

from assets_defs.assets.aesthetics import AestheticSubsetConfig
from assets_defs.assets.alt_text_pairs import AltTextConfig
from assets_defs.assets.clip_scores import ClipScoresConfig
from assets_defs.assets.dataset_report import DatasetReportConfig
from assets_defs.assets.diffusion_model import DiffusionModelConfig
from assets_defs.assets.laion_dataset import LaionDatasetConfig
from assets_defs.assets.samples import ReplicationAuditConfig, SamplesConfig
from assets_defs.assets.style_imitation import StyleImitationConfig
from pipeline.datasheet.figures import ReportOptions
from pipeline.hops.aesthetic.scores import SubsetRules
from pipeline.hops.alt_text.pairs import AltTextRules
from pipeline.hops.audit.replication import AuditRules
from pipeline.hops.audit.style_imitation import StyleRules
from pipeline.hops.clip.decode import DecodePolicy
from pipeline.hops.dataset.hash_lists import HashMatching
from pipeline.hops.samples.sample import SampleSpec
from pipeline.hops.training.model import DiffusionTrainConfig

CASES = {
    "alt_text": (lambda: AltTextConfig().rules(), AltTextRules),
    "clip_decode": (lambda: ClipScoresConfig().decode_policy(), DecodePolicy),
    "clip_hash_matching": (lambda: ClipScoresConfig().hash_matching(), HashMatching),
    "dataset_hash_matching": (lambda: LaionDatasetConfig().hash_matching(), HashMatching),
    "aesthetic_rules": (lambda: AestheticSubsetConfig().rules(), SubsetRules),
    "diffusion": (lambda: DiffusionModelConfig().train_config(), DiffusionTrainConfig),
    "sampler": (lambda: SamplesConfig().spec(), SampleSpec),
    "audit_sampler": (lambda: ReplicationAuditConfig().spec(), SampleSpec),
    "audit_rules": (lambda: ReplicationAuditConfig().rules(), AuditRules),
    "report_options": (lambda: DatasetReportConfig().options(), ReportOptions),
    "style_sampler": (lambda: StyleImitationConfig().spec(), SampleSpec),
    "style_rules": (lambda: StyleImitationConfig().rules(), StyleRules),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_defaults_are_the_dataclass_defaults(case: str) -> None:
    from_config, dataclass = CASES[case]
    built, default = from_config(), dataclass()
    differ = {
        f.name: (getattr(built, f.name), getattr(default, f.name))
        for f in dataclasses.fields(dataclass)
        if getattr(built, f.name) != getattr(default, f.name)
    }
    assert differ == {}, f"{case}: (config, dataclass) defaults disagree"


def test_download_defaults_agree() -> None:
    from assets_defs.assets.image_shards import ImageShardsConfig
    from pipeline.hops.download.shards import ShardSpec

    built, default = ImageShardsConfig().spec(None), ShardSpec()
    assert dataclasses.asdict(built) == dataclasses.asdict(default)


def test_clip_fetch_policy_defaults_agree() -> None:
    from pipeline.hops.clip.fetch import FetchPolicy

    built, default = ClipScoresConfig().fetch_policy({}), FetchPolicy()
    for name in ("connect_timeout_s", "read_timeout_s", "retries", "backoff_s", "max_bytes",
                 "max_redirects", "disallowed_directives"):  # fmt: skip
        assert getattr(built, name) == getattr(default, name), name
