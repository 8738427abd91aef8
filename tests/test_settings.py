"""One configuration: the settings read from the environment, and the code location built on
them resolves the same lake as the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from assets_defs.definitions import build_definitions
from crawl2diffusion.cli import main
from pipeline.settings import Settings, env_name

EVERY = {
    "CRAWL2DIFFUSION_PROFILE": "commoncrawl",
    "CRAWL2DIFFUSION_DATA": "/srv/c2d",
    "CRAWL2DIFFUSION_LAKE": "s3://bucket/lake",
    "CRAWL2DIFFUSION_CC_ROOT": "s3://commoncrawl",
    "CRAWL2DIFFUSION_CC_INDEX": "/srv/collinfo.json",
    "CRAWL2DIFFUSION_CRAWLS": "CC-MAIN-2024-22, CC-MAIN-2024-26,",
    "CRAWL2DIFFUSION_CLIP_MODEL": "ViT-B-32",
    "CRAWL2DIFFUSION_CLIP_PRETRAINED": "openai",
    "CRAWL2DIFFUSION_PUNSAFE_HEAD": "/w/punsafe.pth",
    "CRAWL2DIFFUSION_PWATERMARK_HEAD": "/w/pwatermark.pth",
    "CRAWL2DIFFUSION_AESTHETIC_HEAD": "/w/aesthetic.pth",
    "CRAWL2DIFFUSION_ENGINE": "ray",
    "CRAWL2DIFFUSION_RAY_ADDRESS": "ray://head:10001",
    "CRAWL2DIFFUSION_SAFETY_THRESHOLD": "0.75",
    "CRAWL2DIFFUSION_ENERGY_COUNTRY": "FRA",
    "CRAWL2DIFFUSION_CPU_WATTS_PER_CORE": "12.5",
    "CRAWL2DIFFUSION_EXCLUDE_AI_GENERATED": "false",
    "CRAWL2DIFFUSION_C2PA_TRUST_ANCHORS": "/w/anchors.pem",
    "CRAWL2DIFFUSION_C2PA_SIGN_CERT": "/w/chain.pem",
    "CRAWL2DIFFUSION_C2PA_SIGN_KEY": "/w/key.pem",
}


def test_every_setting_is_read_from_its_variable() -> None:
    settings = Settings.from_env(EVERY)
    assert settings == Settings(
        profile="commoncrawl",
        data="/srv/c2d",
        lake="s3://bucket/lake",
        cc_root="s3://commoncrawl",
        cc_index="/srv/collinfo.json",
        crawls=("CC-MAIN-2024-22", "CC-MAIN-2024-26"),
        clip_model="ViT-B-32",
        clip_pretrained="openai",
        punsafe_head="/w/punsafe.pth",
        pwatermark_head="/w/pwatermark.pth",
        aesthetic_head="/w/aesthetic.pth",
        engine="ray",
        ray_address="ray://head:10001",
        safety_threshold=0.75,
        energy_country="FRA",
        cpu_watts_per_core=12.5,
        exclude_ai_generated=False,
        c2pa_trust_anchors="/w/anchors.pem",
        c2pa_sign_cert="/w/chain.pem",
        c2pa_sign_key="/w/key.pem",
    )
    assert sorted(env_name(f) for f in Settings.__dataclass_fields__) == sorted(EVERY)
    assert settings.lake_root == "s3://bucket/lake"


def test_unset_or_empty_variables_keep_the_defaults(tmp_path: Path) -> None:
    assert Settings.from_env({}) == Settings.from_env({name: "" for name in EVERY}) == Settings()
    settings = Settings.from_env({"CRAWL2DIFFUSION_DATA": str(tmp_path)})
    assert settings.lake_root == str(tmp_path / "lake")
    assert settings.web_root == str(tmp_path / "web")


def test_a_switch_must_say_true_or_false() -> None:
    with pytest.raises(ValueError, match="EXCLUDE_AI_GENERATED must be true or false"):
        Settings.from_env({"CRAWL2DIFFUSION_EXCLUDE_AI_GENERATED": "maybe"})


def test_an_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown profile 'prod'"):
        Settings.from_env({"CRAWL2DIFFUSION_PROFILE": "prod"})


def test_flags_override_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({"CRAWL2DIFFUSION_LAKE": "s3://env/lake"})
    assert settings.override(lake=None, data=None) == settings
    assert settings.override(lake=str(tmp_path / "flag")).lake_root == str(tmp_path / "flag")
    moved = Settings.from_env({}).override(data=tmp_path)
    assert moved.data == str(tmp_path) and moved.lake_root == str(tmp_path / "lake")


def test_the_code_location_uses_every_setting() -> None:
    resources = build_definitions(settings=Settings.from_env(EVERY)).resources
    assert resources["lake"].root == "s3://bucket/lake"
    source = resources["crawl_source"]
    assert source.data_root == "s3://commoncrawl" and source.storage_options == {"anon": True}
    assert source.collinfo_uri == "/srv/collinfo.json"
    assert source.crawl_ids == ["CC-MAIN-2024-22", "CC-MAIN-2024-26"]
    clip = resources["clip_model"]
    assert (clip.model, clip.pretrained) == ("ViT-B-32", "openai")
    heads = (clip.punsafe_head, clip.pwatermark_head, clip.aesthetic_head)
    assert heads == ("/w/punsafe.pth", "/w/pwatermark.pth", "/w/aesthetic.pth")
    assert clip.safety_threshold == 0.75
    assert not resources["synthetic_web"].enabled
    engine = resources["engine"]
    assert (engine.kind, engine.ray_address) == ("ray", "ray://head:10001")


@pytest.mark.parametrize("lake_variable", [False, True])
def test_definitions_and_cli_resolve_the_same_lake(
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    lake_variable: bool,
) -> None:
    monkeypatch.setenv("CRAWL2DIFFUSION_DATA", str(clean_env / "data-env"))
    expected = str(clean_env / "data-env" / "lake")
    if lake_variable:
        expected = str(clean_env / "lake-env")
        monkeypatch.setenv("CRAWL2DIFFUSION_LAKE", expected)
    assert build_definitions().resources["lake"].root == expected
    for command in (["opt-out"], ["trace", "https://a.example/x.png"]):
        assert main(command) == 0
        assert capsys.readouterr().err.splitlines()[0] == f"lake: {expected}"
