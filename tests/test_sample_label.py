"""Our own samples are labelled (pipeline/hops/samples/label.py) and our reader knows them."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from pipeline.hops.samples.label import Signing, label_png
from pipeline.provenance.reader import read_provenance
from pipeline.settings import Settings
from tests import provenance_images as fx

SHA = "ab" * 32


def _sample() -> bytes:
    return fx.save(fx.image((10, 120, 200), side=32), "PNG")


def test_unsigned_label_declares_a_trained_model() -> None:
    png = label_png(_sample(), "a red circle", 7, SHA)
    prov = read_provenance(png)
    assert (prov.ai_generated, prov.c2pa_state) == (True, "absent")
    found = {(s.source, s.value) for s in prov.signals if s.declares == "ai"}
    assert found == {("xmp", "trainedAlgorithmicMedia"), ("png_text", "crawl2diffusion")}
    with Image.open(io.BytesIO(png)) as im:
        assert json.loads(im.text["crawl2diffusion"]) == {
            "prompt": "a red circle", "seed": 7, "checkpoint_sha256": SHA}  # fmt: skip
        labelled = np.asarray(im.convert("RGB"))
    with Image.open(io.BytesIO(_sample())) as im:
        assert np.array_equal(labelled, np.asarray(im.convert("RGB"))), "pixels unchanged"


def test_signed_label_is_a_valid_manifest() -> None:
    signing = Signing(str(fx.CHAIN), str(fx.KEY))
    png = label_png(_sample(), "a blue square", 3, SHA, signing)
    prov = read_provenance(png)
    assert (prov.ai_generated, prov.c2pa_state) == (True, "valid")
    assert ("c2pa", "trainedAlgorithmicMedia") in {(s.source, s.value) for s in prov.signals}
    assert read_provenance(png, trust_anchors=str(fx.CA)).c2pa_state == "trusted"
    assert read_provenance(fx.tamper_pixels(png)).c2pa_state == "invalid"


def test_signing_comes_from_settings() -> None:
    assert Signing.from_settings(Settings()) is None
    both = Settings(c2pa_sign_cert=str(fx.CHAIN), c2pa_sign_key=str(fx.KEY))
    assert Signing.from_settings(both) == Signing(str(fx.CHAIN), str(fx.KEY))
    with pytest.raises(ValueError, match="both"):
        Signing.from_settings(Settings(c2pa_sign_cert=str(fx.CHAIN)))
