"""Alt texts of every kind the web has, from true captions to boilerplate and mojibake.

An alt is returned as the value an HTML parser reads (entities decoded once); the page
writer escapes it with `html.escape`. The "entity" kind therefore keeps entities that
survive one round of decoding: the HTML holds `&amp;amp;` / `&amp;#39;`, the WAT shows
`&amp;` / `&#39;` (Common Crawl decodes entities once), and a cleaning step that unescapes
the WAT value gets `&` / `'`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from . import vocab
from .captions import caption
from .model import ImageSpec, Site

_ENTITY_TEMPLATES = (
    "{cap} &#8211; {site}&#39;s &quot;best of&quot;",
    "{cap} &amp; more from {site}",
    "{site} &#124; {cap}",
    "&quot;{cap}&quot; &copy; {site}",
)
_PREFIXES = {
    "en": ("Illustration: ", "Drawing of ", "Artwork: "),
    "de": ("Illustration: ", "Zeichnung: ", "Bild: "),
    "fr": ("Illustration : ", "Dessin : ", "Image : "),
    "es": ("Ilustración: ", "Dibujo: ", "Imagen: "),
    "it": ("Illustrazione: ", "Disegno: ", "Immagine: "),
    "nl": ("Illustratie: ", "Tekening: ", "Afbeelding: "),
}


@dataclass
class Alt:
    """A rendered alt: its text (None when the attribute is absent), language, truthfulness."""

    text: str | None
    lang: str | None
    describes: bool


def decorated(cap: str, lang: str, credit: str | None, term: str | None) -> str:
    """A caption with its artist's credit ("... by Name", in ``lang``) and a planted term
    (English: "..., for a gay wedding")."""
    if credit:
        cap = vocab.CREDIT_TEMPLATES[lang].format(cap=cap, name=credit)
    if term:
        shown = vocab.TERM_DISPLAY.get(term, term)
        article = "an" if shown[0] in "aeiou" else "a"
        cap = vocab.TERM_TEMPLATE.format(cap=cap, article=article, term=shown)
    return cap


def _styled(cap: str, lang: str, rng: random.Random) -> str:
    """A caption as authors write it: sometimes capitalised, prefixed or with a full stop."""
    x = rng.random()
    if x < 0.1:
        return rng.choice(_PREFIXES[lang]) + cap
    if x < 0.45:
        cap = cap[0].upper() + cap[1:]
    if rng.random() < 0.2:
        cap += "."
    return cap


def filename_alt(image: ImageSpec | None, rng: random.Random) -> str:
    """A file name as alt: the image's own when it looks like one, else a camera name."""
    if image is not None and image.path_style == "plain":
        name = image.path.rsplit("/", 1)[-1]
        if rng.random() < 0.5 and "." in name:
            return name
    n = rng.randint(1000, 9999)
    return rng.choice(
        (
            f"IMG_{n}.jpg",
            f"DSC0{n}.JPG",
            f"image ({n % 17}).png",
            f"Screenshot 2026-03-{n % 28 + 1:02d} at 10.{n % 60:02d}.22.png",
            f"photo-{1521747116000 + n}.webp",
            f"IMG-2026{n:04d}-WA0003.jpeg",
        )
    )


def _mojibake(image: ImageSpec, rng: random.Random) -> tuple[str, str]:
    """A caption with non-ASCII letters, UTF-8 bytes read as Windows-1252."""
    for lang in rng.sample(("de", "fr", "es", "it", "nl"), 5):
        cap = image.captions.get(lang, "")
        if cap and not cap.isascii():
            break
    else:
        lang, cap = "de", image.captions.get("de", image.captions["en"]) + " (Größe M)"
    raw = cap.encode("utf-8")
    try:
        return raw.decode("cp1252"), lang
    except UnicodeDecodeError:
        return raw.decode("latin-1"), lang


def _long(cap: str, site: Site, rng: random.Random) -> str:
    words = [cap[0].upper() + cap[1:] + "."]
    while sum(len(w) + 1 for w in words) < 520:
        words.append(rng.choice(vocab.SPAM_WORDS))
    return " ".join(words) + f" | {site.name}"


def render_alt(
    kind: str,
    image: ImageSpec | None,
    site: Site,
    page_lang: str,
    rng: random.Random,
    other_captions: list[dict[str, str]],
    credit: str | None = None,
    term: str | None = None,
) -> Alt:
    """The alt for one <img> of `kind` (see `SyntheticWebConfig.alt_kind_weights`); a
    describing (match_*) alt may credit the image's artist and carry a planted term."""
    if kind.startswith("match_"):
        assert image is not None
        lang = kind[6:]
        text = decorated(image.captions[lang], lang, credit, term)
        return Alt(_styled(text, lang, rng), lang, True)
    if kind == "mismatch":
        own = image.captions["en"] if image else ""
        caps = rng.choice(other_captions)
        for _ in range(20):
            if caps["en"] != own:
                break
            caps = rng.choice(other_captions)
        lang = page_lang if rng.random() < 0.5 else "en"
        lang = lang if lang in caps else "en"
        return Alt(_styled(caps[lang], lang, rng), lang, False)
    if kind == "boilerplate":
        return Alt(rng.choice(vocab.BOILERPLATE_ALTS), None, False)
    if kind == "short":
        return Alt(rng.choice(vocab.SHORT_ALTS), None, False)
    if kind == "filename":
        return Alt(filename_alt(image, rng), None, False)
    if kind == "empty":
        return Alt("", None, False)
    if kind == "missing":
        return Alt(None, None, False)
    if kind == "named_logo":
        return Alt(f"{site.name} logo", None, False)
    assert image is not None, kind
    if kind == "long":
        return Alt(_long(image.captions["en"], site, rng), "en", True)
    if kind == "entity":
        template = rng.choice(_ENTITY_TEMPLATES)
        cap = image.captions["en"]
        return Alt(template.format(cap=cap[0].upper() + cap[1:], site=site.name), "en", True)
    if kind == "whitespace":
        words = image.captions[page_lang].split(" ")
        i = rng.randrange(1, len(words))
        sep = rng.choice(("\n      ", "\t", "  ", "\xa0"))
        text = " ".join(words[:i]) + sep + " ".join(words[i:])
        return Alt(
            rng.choice(("  ", "\n    ", " ")) + text + rng.choice(("  ", "\n  ", "")),
            page_lang,
            True,
        )
    if kind == "mojibake":
        text, lang = _mojibake(image, rng)
        return Alt(text, lang, True)
    raise ValueError(f"unknown alt kind {kind}")


def unserved_caption(lang: str, rng: random.Random) -> str:
    """A plausible description of an image that no server will ever deliver."""
    shape = rng.choice(vocab.SHAPES)
    color, bg = rng.sample(list(vocab.COLORS), 2)
    return caption(lang, shape, color, rng.randint(1, 3), "plain", (bg,))
