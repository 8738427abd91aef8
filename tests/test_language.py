"""Language identification: per-language recall and precision on the synthetic web's clean
captions with every language lingua knows as candidates, no language for non-language alts,
and the confusion matrix."""

from __future__ import annotations

import random

import pytest

from pipeline.hops.alt_text.language import (
    LanguageRules,
    count_words,
    identify,
    is_judged,
    language_confusion,
)
from pipeline.synthetic import vocab
from pipeline.synthetic.config import SyntheticWebConfig
from pipeline.synthetic.plan import plan_web

PER_LANGUAGE = 200


@pytest.fixture(scope="module")
def captions() -> tuple[list[str], list[str]]:
    """(text, language) of a seeded sample of the default web's true captions."""
    plan = plan_web(SyntheticWebConfig())
    by_language: dict[str, set[str]] = {}
    for image in plan.images:
        for lang, text in image.captions.items():
            by_language.setdefault(lang, set()).add(text)
    rng = random.Random(13)
    texts, truth = [], []
    for lang in sorted(by_language):
        sample = rng.sample(sorted(by_language[lang]), PER_LANGUAGE)
        texts += sample
        truth += [lang] * len(sample)
    return texts, truth


def test_recall_and_precision_on_clean_captions(captions: tuple[list[str], list[str]]) -> None:
    texts, truth = captions
    rules = LanguageRules()
    assert rules.languages == ()  # every language lingua knows is a candidate
    predicted = [code for code, _ in identify(texts, rules)]
    report = language_confusion(predicted, truth)
    assert sorted(report["per_language"]) == sorted(vocab.LANGUAGES)
    low = {
        lang: (stats["recall"], stats["precision"])
        for lang, stats in report["per_language"].items()
        if stats["recall"] < 0.95 or stats["precision"] < 0.98
    }
    assert not low, f"{low}; matrix {report['matrix']}"


def test_no_language_for_what_is_not_language() -> None:
    junk = [
        "IMG_2041.jpg",
        "DSC04521.JPG",
        "Screenshot 2026-03-05 at 10.22.22.png",
        "photo-1521747116123.webp",
        "a3f9c2e1b7d4",
        "9f86d081884c7d659a2feaea0d65",
        "x7Kq9ZpL",
        "qwertyuiop",
        "banner_top_v2",
        "SKU 12345-AB",
        "logo",
        "thumbnail",
        "Foto",
        "lol",
    ]
    assert identify(junk, LanguageRules()) == [(None, 0.0)] * len(junk)


def test_certain_scripts_need_no_word_count() -> None:
    codes = [code for code, _ in identify(["東京タワーの夜景", "Καλημέρα κόσμε"], LanguageRules())]
    assert codes == ["ja", "el"]


def test_margin_is_the_score() -> None:
    text = ["a small red house by the lake"]
    ((code, margin),) = identify(text, LanguageRules())
    assert code == "en" and LanguageRules().min_margin <= margin <= 1.0
    ((strict, same),) = identify(text, LanguageRules(min_margin=margin + 1e-3))
    assert strict is None and same == pytest.approx(margin)


@pytest.mark.parametrize(
    ("text", "words", "tokens", "judged"),
    [
        ("three red circles", 3, 3, True),
        ("«l'étoile» polka-dot, Größe!", 3, 3, True),
        ("IMG_2041.jpg", 0, 1, False),
        ("image (3).png", 1, 2, False),
        ("Screenshot 2026-03-05 at 10.22.22.png", 2, 4, False),
        ("Image may contain: 1 image", 4, 5, True),
        ("logo", 1, 1, False),
        ("", 0, 0, False),
    ],
)
def test_words_and_judged(text: str, words: int, tokens: int, judged: bool) -> None:
    assert count_words(text) == (words, tokens)
    assert is_judged(text, 2) is judged


def test_language_confusion() -> None:
    truth = ["en", "en", "en", "de", "nl", None]
    predicted = ["en", "de", None, "en", "af", "en"]
    report = language_confusion(predicted, truth)
    assert report["rows"] == 6
    assert report["no_language"] == 1
    assert report["matrix"] == {
        "de": {"en": 1},
        "en": {"de": 1, "en": 1, "none": 1},
        "nl": {"af": 1},
        "none": {"en": 1},
    }
    assert report["per_language"]["en"] == {
        "support": 3,
        "predicted": 3,
        "correct": 1,
        "recall": 1 / 3,
        "precision": 1 / 3,
    }
    assert report["per_language"]["de"]["precision"] == 0.0
    assert report["per_language"]["nl"] == {
        "support": 1,
        "predicted": 0,
        "correct": 0,
        "recall": 0.0,
        "precision": None,
    }
    with pytest.raises(ValueError, match="2 predictions for 1 truths"):
        language_confusion(["en", "de"], ["en"])
