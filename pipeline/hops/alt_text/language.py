"""Language of an alt text (lingua, offline, every language it knows by default), and the
confusion matrix that measures it against known languages.

lingua's confidence values are relative: they sum to 1 over the candidates. With 75
candidates a clear winner on a short text often holds only 0.2-0.6, the rest being spread
over related languages (English captions: Tagalog, Latin; Italian: Spanish, Esperanto). A
floor on the top value therefore drops many plain sentences. The rule here is lingua's own
``minimum_relative_distance``: a language is named when its confidence beats the runner-up's
by ``min_margin``; that margin is the score.

The margin says nothing about whether the text is language at all (a file name or a single
word also gets a winner), so a text is judged only when most of its tokens are words and it
has ``min_words`` of them, or when lingua is certain (a script or letters that only one
candidate language uses, e.g. Japanese kana). Otherwise the language is null and the score 0.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from typing import Any

_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$")
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
CERTAIN = 0.99
"""A top confidence from which lingua's answer stands without a word count."""
NONE = "none"
"""The confusion matrix's label for a missing language."""


@dataclass(frozen=True)
class LanguageRules:
    """How languages are identified."""

    min_margin: float = 0.05
    """Least lead of the top confidence over the runner-up's for a language to be named."""
    min_words: int = 2
    """Least number of words (tokens made of letters only) in a text that is judged."""
    languages: tuple[str, ...] = ()
    """ISO 639-1 codes the detector may answer; empty means every language lingua knows."""
    low_accuracy: bool = False


def count_words(text: str) -> tuple[int, int]:
    """``(words, tokens)``: whitespace tokens, and those made of letters only (inner ``'``
    and ``-`` allowed, edge punctuation ignored). ``IMG_2041.jpg`` or ``a3f9c2`` are no words."""
    tokens = text.split()
    words = sum(1 for t in tokens if _WORD.fullmatch(_EDGE_PUNCTUATION.sub("", t)))
    return words, len(tokens)


def is_judged(text: str, min_words: int) -> bool:
    """True when the text has ``min_words`` words and they are most of its tokens."""
    words, tokens = count_words(text)
    return words >= min_words and 2 * words > tokens


@lru_cache(maxsize=4)
def _detector(languages: tuple[str, ...], low_accuracy: bool) -> Any:
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    if languages:
        codes = [IsoCode639_1.from_str(code) for code in languages]
        builder = LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
    else:
        builder = LanguageDetectorBuilder.from_languages(*Language.all())
    if low_accuracy:
        builder = builder.with_low_accuracy_mode()
    return builder.build()


def detector_name(low_accuracy: bool) -> str:
    """The detector, its version and mode, as stored in ``language_detector``."""
    mode = "low" if low_accuracy else "high"
    return f"lingua-{version('lingua-language-detector')}:{mode}"


def identify(texts: Sequence[str], rules: LanguageRules) -> list[tuple[str | None, float]]:
    """``(ISO 639-1 code or None, margin)`` for each text; None and 0.0 when the text is not
    judged, None and the margin when the margin is below ``rules.min_margin``."""
    counts = [count_words(text) for text in texts]
    # A text without a single word (file names, hashes, numbers) is not sent to lingua.
    asked = [i for i, (words, _) in enumerate(counts) if words > 0]
    results: list[tuple[str | None, float]] = [(None, 0.0)] * len(texts)
    if not asked:
        return results
    detector = _detector(tuple(rules.languages), rules.low_accuracy)
    answers = detector.compute_language_confidence_values_in_parallel([texts[i] for i in asked])
    for i, values in zip(asked, answers, strict=True):
        if not values or values[0].value <= 0.0:
            continue
        top = values[0].value
        margin = top - (values[1].value if len(values) > 1 else 0.0)
        words, tokens = counts[i]
        if top < CERTAIN and not (words >= rules.min_words and 2 * words > tokens):
            continue
        code = values[0].language.iso_code_639_1.name.lower()
        results[i] = (code if margin >= rules.min_margin else None, margin)
    return results


def language_confusion(
    predicted: Sequence[str | None], truth: Sequence[str | None]
) -> dict[str, Any]:
    """Confusion matrix and per-language recall and precision, JSON-ready.

    ``matrix[truth][predicted]`` counts rows; a missing language is ``"none"``. Recall of a
    language is its share of the rows truly in it; precision, its share of the rows predicted
    as it (null when no row is).
    """
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predictions for {len(truth)} truths")
    pairs = Counter((t or NONE, p or NONE) for p, t in zip(predicted, truth, strict=True))
    matrix: dict[str, dict[str, int]] = {}
    for (t, p), n in sorted(pairs.items()):
        matrix.setdefault(t, {})[p] = n
    per_language: dict[str, dict[str, Any]] = {}
    for lang in sorted({t for t, _ in pairs} - {NONE}):
        support = sum(matrix[lang].values())
        called = sum(n for (_, p), n in pairs.items() if p == lang)
        correct = pairs[(lang, lang)]
        per_language[lang] = {
            "support": support,
            "predicted": called,
            "correct": correct,
            "recall": correct / support,
            "precision": correct / called if called else None,
        }
    return {
        "rows": len(truth),
        "matrix": matrix,
        "per_language": per_language,
        "no_language": sum(n for (_, p), n in pairs.items() if p == NONE),
    }
