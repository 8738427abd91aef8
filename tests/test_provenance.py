"""The provenance reader (pipeline/provenance): one signal per fixture file, each rule of
ai_generated, c2pa_state and training_mining, and hostile metadata capped, never fatal."""

from __future__ import annotations

import json
import runpy
import time

import pytest

from pipeline.provenance.c2pa_store import voids
from pipeline.provenance.limits import Limits
from pipeline.provenance.reader import read_provenance
from tests import provenance_images as fx

NOT = "notAllowed"


def read(body: bytes, **kw):
    return read_provenance(body, **kw)


def values(prov, kind: str) -> list[str]:
    return [s.value for s in prov.signals if s.kind == kind]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_no_metadata_is_unknown(fmt: str) -> None:
    prov = read(fx.plain(fmt))
    assert (prov.ai_generated, prov.c2pa_state, prov.training_mining) == (None, "absent", None)
    assert json.loads(prov.ai_signals) == []


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize(
    ("source_type", "expected"),
    [
        ("trainedAlgorithmicMedia", True),
        ("compositeWithTrainedAlgorithmicMedia", True),
        ("compositeSynthetic", True),
        ("algorithmicMedia", False),  # an algorithm, not a trained model
        ("digitalCapture", False),
    ],
)
def test_iptc_xmp_digital_source_type(fmt: str, source_type: str, expected: bool) -> None:
    prov = read(fx.with_xmp(source_type, fmt))
    assert prov.ai_generated is expected
    assert values(prov, "digital_source_type") == [source_type]


@pytest.mark.parametrize("kind", ["tEXt", "zTXt", "iTXt"])
@pytest.mark.parametrize(
    ("key", "value", "generator"),
    [
        ("parameters", fx.A1111, "automatic1111"),
        ("prompt", fx.COMFY_PROMPT, "comfyui"),
        ("workflow", fx.COMFY_WORKFLOW, "comfyui"),
    ],
)
def test_generator_text_chunks(kind: str, key: str, value: str, generator: str) -> None:
    prov = read(fx.with_text(key, value, kind))
    assert prov.ai_generated is True
    assert values(prov, "generator") == [generator]


def test_text_chunks_that_name_no_generator_say_nothing() -> None:
    assert read(fx.with_text("parameters", "just words", "tEXt")).ai_generated is None
    assert read(fx.with_text("prompt", '{"not": "comfy"}', "tEXt")).ai_generated is None
    assert read(fx.with_text("Comment", "holiday 2019", "tEXt")).ai_generated is None


@pytest.mark.parametrize(
    ("tags", "expected", "kind"),
    [
        ({"Software": "Stable Diffusion XL"}, True, "generator"),
        ({"ImageDescription": "made with Midjourney v6"}, True, "generator"),
        ({"Make": "Canon", "Model": "EOS 5D"}, False, "camera"),
        ({"Software": "GIMP 2.10"}, None, None),
    ],
)
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif(fmt: str, tags: dict, expected: bool | None, kind: str | None) -> None:
    prov = read(fx.with_exif(fmt, **tags))
    assert prov.ai_generated is expected
    assert [s.kind for s in prov.signals] == ([kind] if kind else [])


def test_a_trained_model_wins_over_a_camera() -> None:
    body = fx.with_exif("JPEG", Make="Canon", Software="DALL-E 3")
    assert read(body).ai_generated is True


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_c2pa_active_manifest(fmt: str) -> None:
    prov = read(fx.signed(fx.manifest([fx.created("trainedAlgorithmicMedia")]), fmt))
    assert (prov.ai_generated, prov.c2pa_state) == (True, "valid")
    capture = read(fx.signed(fx.manifest([fx.created("digitalCapture")]), fmt))
    assert (capture.ai_generated, capture.c2pa_state) == (False, "valid")


def test_c2pa_algorithmic_media_is_not_ai() -> None:
    prov = read(fx.signed(fx.manifest([fx.created("algorithmicMedia")])))
    assert prov.ai_generated is False


def test_c2pa_trusted_only_with_a_trust_anchor() -> None:
    body = fx.signed(fx.manifest([fx.created("trainedAlgorithmicMedia")]))
    assert read(body, trust_anchors=str(fx.CA)).c2pa_state == "trusted"
    assert read(body).c2pa_state == "valid"


def test_c2pa_untrusted_signer_still_counts(tmp_path) -> None:
    generate = runpy.run_path(str(fx.C2PA_DIR / "generate.py"))
    other = tmp_path / "other-root.pem"
    other.write_bytes(generate["build"](seed="another root")[2])
    prov = read(fx.signed(fx.manifest([fx.created("trainedAlgorithmicMedia")])),
                trust_anchors=str(other))  # fmt: skip
    assert "signingCredential.untrusted" in values(prov, "c2pa_validation")
    assert prov.ai_generated is True


def test_c2pa_ingredient_claims_count() -> None:
    child = fx.signed(fx.manifest([fx.created("trainedAlgorithmicMedia")]))
    edit = [{"action": "c2pa.opened", "parameters": {"ingredientIds": ["p1"]}}]
    prov = read(fx.signed(fx.manifest(edit), ingredient=child))
    assert prov.ai_generated is True
    assert any(s.source == "c2pa_ingredient" and s.declares == "ai" for s in prov.signals)


def test_c2pa_vendor_action_parameter_counts() -> None:
    action = {"action": "c2pa.edited",
              "parameters": {"com.example.source": fx.IPTC + "compositeSynthetic"}}  # fmt: skip
    prov = read(fx.signed(fx.manifest([fx.created("digitalCreation"), action])))
    assert prov.ai_generated is True
    assert [s.source for s in prov.signals if s.declares == "ai"] == ["c2pa_action"]


def test_c2pa_remote_only_is_unknown() -> None:
    body = fx.signed(fx.manifest([fx.created("trainedAlgorithmicMedia")]),
                     remote_url="http://127.0.0.1:9/manifest.c2pa")  # fmt: skip
    started = time.perf_counter()
    prov = read(body)
    assert time.perf_counter() - started < 5, "no remote fetch is attempted"
    assert (prov.ai_generated, prov.c2pa_state) == (None, "remote_only")


def test_c2pa_tampered_content_voids_claims() -> None:
    spec = fx.manifest([fx.created("trainedAlgorithmicMedia")], {"cawg.ai_training": "notAllowed"})
    prov = read(fx.tamper_pixels(fx.signed(spec)))
    assert prov.c2pa_state == "invalid"
    assert "assertion.dataHash.mismatch" in values(prov, "c2pa_validation")
    assert (prov.ai_generated, prov.training_mining) == (None, None)
    assert all(not s.counted for s in prov.signals if s.kind != "c2pa_validation")


def test_c2pa_tampered_manifest_with_xmp_falls_back_to_xmp() -> None:
    base = fx.with_xmp("digitalCapture")
    spec = fx.manifest([fx.created("trainedAlgorithmicMedia")])
    prov = read(fx.tamper_pixels(fx.signed(spec, base=base)))
    assert (prov.ai_generated, prov.c2pa_state) == (False, "invalid")


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ({"cawg.ai_generative_training": "notAllowed"}, "notAllowed"),
        ({"cawg.ai_training": "notAllowed", "cawg.ai_generative_training": "allowed"}, NOT),
        ({"c2pa.ai_training": "notAllowed"}, "notAllowed"),
        ({"cawg.ai_training": "constrained"}, "constrained"),
        ({"cawg.ai_generative_training": "allowed"}, "allowed"),
        ({"cawg.data_mining": "notAllowed", "cawg.ai_inference": "notAllowed"}, None),
    ],
)
def test_training_mining(entries: dict, expected: str | None) -> None:
    c2pa_keys = any(k.startswith("c2pa.") for k in entries)
    label = "c2pa.training-mining" if c2pa_keys else "cawg.training-mining"
    spec = fx.manifest([fx.created("digitalCapture")], entries, label)
    prov = read(fx.signed(spec))
    assert prov.training_mining == expected
    assert sorted(values(prov, "training_mining")) == sorted(f"{k}={v}" for k, v in entries.items())


def test_huge_xmp_is_capped() -> None:
    body = fx.with_xmp("trainedAlgorithmicMedia", padding=4_000_000)
    started = time.perf_counter()
    prov = read(body, limits=Limits(max_xmp_bytes=64 * 1024))
    assert time.perf_counter() - started < 2
    assert prov.ai_generated is None, "the declaration lies past the cap"
    assert any(v.startswith("xmp_capped:") for v in values(prov, "note"))
    assert read(fx.with_xmp("trainedAlgorithmicMedia", padding=1000)).ai_generated is True


def test_text_chunk_zip_bomb_is_capped() -> None:
    body = fx.zip_bomb_ztxt("parameters", 8_000_000)
    started = time.perf_counter()
    prov = read(body, limits=Limits(max_text_bytes=64 * 1024))
    assert time.perf_counter() - started < 2
    assert "text_capped" in values(prov, "note")


@pytest.mark.parametrize(
    "body",
    [
        fx.with_raw_chunk(b"caBX", b"\x00\x00\x00\x10jumbgarbagegarbage" * 4),
        fx.with_raw_chunk(b"eXIf", b"MM\x00*\x00\x00\x00\x08\xff\xff"),
        fx.with_raw_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x01\x00\x00\x00not zlib"),
        fx.plain()[:40],
        b"\xff\xd8\xff\xe1\xff\xff",
        b"RIFF\x00\x00\x00\x00WEBPXMP \xff\xff\xff\x7f",
        b"",
    ],
    ids=["broken_manifest", "broken_exif", "bad_itxt", "truncated_png", "jpeg", "webp", "empty"],
)
def test_broken_metadata_is_recorded_never_fatal(body: bytes) -> None:
    prov = read(body)
    assert prov.ai_generated is None
    assert prov.c2pa_state in ("absent", "invalid")
    json.loads(prov.ai_signals)


def test_broken_manifest_is_invalid() -> None:
    prov = read(fx.with_raw_chunk(b"caBX", b"\x00\x00\x00\x10jumbgarbagegarbage" * 4))
    assert prov.c2pa_state == "invalid"
    assert values(prov, "c2pa_validation") == ["unreadable"]


def test_oversize_file_is_not_read() -> None:
    prov = read(fx.with_xmp("trainedAlgorithmicMedia"), limits=Limits(max_file_bytes=100))
    assert (prov.ai_generated, prov.c2pa_state) == (None, None)
    assert values(prov, "note") == ["oversize"]


@pytest.mark.parametrize(
    ("code", "void"),
    [
        ("assertion.dataHash.mismatch", True),
        ("assertion.hashedURI.mismatch", True),
        ("claimSignature.mismatch", True),
        ("claimSignature.missing", True),
        ("assertion.action.malformed", True),
        ("signingCredential.expired", False),  # c2pa-python refuses to sign with one
        ("signingCredential.untrusted", False),
        ("signingCredential.ocsp.inaccessible", False),
        ("timeStamp.untrusted", False),
    ],
)
def test_which_failures_void_the_claims(code: str, void: bool) -> None:
    assert voids(code) is void
