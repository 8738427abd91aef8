"""``crawl2diffusion demo --small``: its named profile reaches every piece of the demo (the
web, the slicing, the jobs' run config, its own data folder). The full small demo's time
is in the README; the whole pipeline end to end is tests/test_demo.py's job."""

from __future__ import annotations

from pathlib import Path

from dagster import validate_run_config

from assets_defs.assets.diffusion_model import TRAIN_DEFAULTS
from assets_defs.definitions import build_definitions
from assets_defs.demo_profiles import DEFAULT, PROFILES, SMALL
from assets_defs.resources import SyntheticWebResource
from crawl2diffusion.cli import build_parser
from pipeline.hops.crawl.manifest import SlicePlan, plan_slices
from pipeline.lake.tables import TableName
from pipeline.synthetic.config import SyntheticWebConfig


def test_small_flag_picks_the_small_profile_and_its_own_folder(tmp_path: Path) -> None:
    args = build_parser().parse_args(["demo", "--small", "--data", str(tmp_path)])
    assert args.small and args.slice_size is None  # the profile's slicing applies
    assert not build_parser().parse_args(["demo"]).small
    assert PROFILES["small"] is SMALL and PROFILES["default"] is DEFAULT
    assert SMALL.data_dir(str(tmp_path)) == f"{tmp_path}/small"  # never mixes with the default
    assert DEFAULT.data_dir(str(tmp_path)) == str(tmp_path)


def test_small_web_is_one_crawl_of_two_wat_files_in_one_slice(tmp_path: Path) -> None:
    small = SyntheticWebResource(root=str(tmp_path), **SMALL.web).web_config()
    default = SyntheticWebResource(root=str(tmp_path), **DEFAULT.web).web_config()
    assert default.crawl_ids == SyntheticWebConfig().crawl_ids  # the default web, smaller
    assert len(small.crawl_ids) == 1 < len(default.crawl_ids)
    assert small.wat_files_per_crawl == 2 < default.wat_files_per_crawl
    assert small.pages_per_crawl < default.pages_per_crawl
    assert small.fingerprint() != default.fingerprint()
    paths = [f"wat/{i}.warc.wat.gz" for i in range(small.wat_files_per_crawl)]
    plan = plan_slices(small.crawl_ids[0], paths, str(tmp_path), SlicePlan(SMALL.slice_size))
    assert set(plan.column("partition_key").to_pylist()) == {f"{small.crawl_ids[0]}_00000"}


def test_run_configs_are_valid_and_the_small_training_is_shorter(tmp_path: Path) -> None:
    assert {"wat_to_pairs_job", "training_job"} <= SMALL.jobs.keys()
    steps = {}
    for profile in (DEFAULT, SMALL):
        defs = build_definitions("demo", tmp_path / profile.name, profile.web)
        for name in profile.jobs:  # raises on a job, op or key the assets do not take
            validate_run_config(defs.resolve_job_def(name), profile.run_config(name))
        assert profile.run_config("clip_filter_job") == {}  # a job not named: the defaults
        train = profile.run_config("training_job")["ops"][TableName.DIFFUSION_MODEL]["config"]
        assert train["checkpoint_every"] <= train["train_steps"]  # a checkpoint is written
        steps[profile.name] = train["train_steps"]
    # the demo's budget: shorter than the asset's default training, the small demo shorter still
    assert steps["small"] < steps["default"] < TRAIN_DEFAULTS.train_steps
    ops = SMALL.run_config("training_job")["ops"]
    assert {TableName.SAMPLES, TableName.REPLICATION_AUDIT, TableName.STYLE_IMITATION} <= ops.keys()


def test_feedback_crawl_comes_later_and_is_small() -> None:
    for profile in (DEFAULT, SMALL):
        web = SyntheticWebResource(root="unused", **profile.web).web_config()
        feedback = profile.feedback
        assert feedback is not None  # both demos run the loop
        assert all(feedback.crawl_id > c for c in web.crawl_ids)  # a later crawl
        assert feedback.wat_files <= profile.slice_size  # one slice
        assert feedback.wat_files < web.wat_files_per_crawl or profile is SMALL
    assert SMALL.feedback.per_signal <= DEFAULT.feedback.per_signal
    assert SMALL.feedback_steps <= DEFAULT.feedback_steps
