"""True descriptions of synthetic images, grammatical in six languages.

`caption("en", "circle", "red", 3, "plain", ("blue",))` -> "three red circles on a blue background";
in German "drei rote Kreise auf blauem Hintergrund".
"""

from __future__ import annotations

from collections.abc import Callable

from . import vocab as v


def _en(shape: str, color: str, count: int, bg: str, bgc: tuple[str, ...]) -> str:
    sg, pl = v.EN_SHAPES[shape]
    if count == 1:
        article = "an" if color[0] in "aeiou" else "a"
        subject = f"{article} {color} {sg}"
    else:
        subject = f"{v.EN_NUMBERS[count]} {color} {pl}"
    b = bgc[0]
    ground = {
        "plain": f"on a {b} background",
        "stripes": f"on a {b} striped background",
        "dots": f"on a {b} polka-dot background",
        "noise": f"on a grainy {b} background",
        "gradient": f"on a gradient background from {b} to {bgc[-1]}",
        "hazard": "on a red and black hazard-striped background",
    }[bg]
    return f"{subject} {ground}"


def _de(shape: str, color: str, count: int, bg: str, bgc: tuple[str, ...]) -> str:
    sg, pl, gender = v.DE_SHAPES[shape]
    stem = v.DE_COLORS[color][0]
    if count == 1:
        article = "eine" if gender == "f" else "ein"
        ending = {"m": "er", "n": "es", "f": "e"}[gender]
        subject = f"{article} {stem}{ending} {sg}"
    else:
        subject = f"{v.DE_NUMBERS[count]} {stem}e {pl}"
    b_stem, b_adv, b_noun = v.DE_COLORS[bgc[0]]
    ground = {
        "plain": f"auf {b_stem}em Hintergrund",
        "stripes": f"auf {b_adv} gestreiftem Hintergrund",
        "dots": f"auf {b_adv} gepunktetem Hintergrund",
        "noise": f"auf körnigem {b_stem}em Hintergrund",
        "gradient": f"auf einem Farbverlauf von {b_noun} zu {v.DE_COLORS[bgc[-1]][2]}",
        "hazard": "auf rot-schwarz gestreiftem Warnhintergrund",
    }[bg]
    return f"{subject} {ground}"


def _romance(
    colors: dict[str, tuple[str, str, str, str]],
    shapes: dict[str, tuple[str, str, str]],
    numbers: tuple[str, ...],
    articles: tuple[str, str],
    grounds: dict[str, str],
) -> Callable[[str, str, int, str, tuple[str, ...]], str]:
    """French, Spanish and Italian share one word order: number, noun, adjective."""

    def build(shape: str, color: str, count: int, bg: str, bgc: tuple[str, ...]) -> str:
        sg, pl, gender = shapes[shape]
        forms = colors[color]
        if count == 1:
            article = articles[1 if gender == "f" else 0]
            subject = f"{article} {sg} {forms[1 if gender == 'f' else 0]}"
        else:
            subject = f"{numbers[count]} {pl} {forms[3 if gender == 'f' else 2]}"
        ground = grounds[bg].format(b=colors[bgc[0]][0], b2=colors[bgc[-1]][0])
        return f"{subject} {ground}"

    return build


_fr = _romance(
    v.FR_COLORS,
    v.FR_SHAPES,
    v.FR_NUMBERS,
    ("un", "une"),
    {
        "plain": "sur un fond {b}",
        "stripes": "sur un fond {b} à rayures",
        "dots": "sur un fond {b} à pois",
        "noise": "sur un fond {b} granuleux",
        "gradient": "sur un fond dégradé {b} et {b2}",
        "hazard": "sur un fond à rayures de danger rouges et noires",
    },
)
_es = _romance(
    v.ES_COLORS,
    v.ES_SHAPES,
    v.ES_NUMBERS,
    ("un", "una"),
    {
        "plain": "sobre un fondo {b}",
        "stripes": "sobre un fondo {b} a rayas",
        "dots": "sobre un fondo {b} de lunares",
        "noise": "sobre un fondo {b} granulado",
        "gradient": "sobre un fondo degradado de {b} a {b2}",
        "hazard": "sobre un fondo de rayas de advertencia rojas y negras",
    },
)
_it = _romance(
    v.IT_COLORS,
    v.IT_SHAPES,
    v.IT_NUMBERS,
    ("un", "una"),
    {
        "plain": "su uno sfondo {b}",
        "stripes": "su uno sfondo {b} a righe",
        "dots": "su uno sfondo {b} a pois",
        "noise": "su uno sfondo {b} granuloso",
        "gradient": "su uno sfondo sfumato {b} e {b2}",
        "hazard": "su uno sfondo a strisce di pericolo rosse e nere",
    },
)


def _nl(shape: str, color: str, count: int, bg: str, bgc: tuple[str, ...]) -> str:
    sg, pl, article = v.NL_SHAPES[shape]
    inflected, bare = v.NL_COLORS[color]
    if count == 1:
        subject = f"een {bare if article == 'het' else inflected} {sg}"
    else:
        subject = f"{v.NL_NUMBERS[count]} {inflected} {pl}"
    b_infl, b_bare = v.NL_COLORS[bgc[0]]
    ground = {
        "plain": f"op een {b_infl} achtergrond",
        "stripes": f"op een {b_bare} gestreepte achtergrond",
        "dots": f"op een {b_infl} achtergrond met stippen",
        "noise": f"op een korrelige {b_infl} achtergrond",
        "gradient": f"op een kleurverloop van {b_bare} naar {v.NL_COLORS[bgc[-1]][1]}",
        "hazard": "op een rood-zwart gestreepte waarschuwingsachtergrond",
    }[bg]
    return f"{subject} {ground}"


_BUILDERS: dict[str, Callable[[str, str, int, str, tuple[str, ...]], str]] = {
    "en": _en,
    "de": _de,
    "fr": _fr,
    "es": _es,
    "it": _it,
    "nl": _nl,
}


def caption(
    lang: str, shape: str, color: str, count: int, background: str, bg_colors: tuple[str, ...]
) -> str:
    """The true description of an image in `lang`."""
    return _BUILDERS[lang](shape, color, count, background, bg_colors)
