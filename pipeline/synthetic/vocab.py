"""Word tables for the synthetic images: colours, shapes and their names in six languages.

These are language data, not tunables: which of them a web uses is chosen by the config.
"""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES = ("en", "de", "fr", "es", "it", "nl")

# Colour name -> RGB used to draw it.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40),
    "blue": (31, 90, 200),
    "green": (44, 160, 44),
    "yellow": (245, 205, 30),
    "orange": (250, 128, 14),
    "purple": (128, 60, 170),
    "black": (25, 25, 25),
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
    "pink": (240, 120, 180),
    "brown": (125, 80, 40),
    "turquoise": (30, 200, 190),
}

SHAPES = (
    "circle",
    "square",
    "triangle",
    "star",
    "heart",
    "diamond",
    "hexagon",
    "ring",
    "cross",
    "crescent",
)

# Foreground/background pairs that look well made (used for high aesthetic scores).
HARMONIOUS = (
    ("white", "blue"),
    ("yellow", "blue"),
    ("orange", "blue"),
    ("white", "turquoise"),
    ("yellow", "purple"),
    ("white", "black"),
    ("yellow", "black"),
    ("orange", "black"),
    ("blue", "white"),
    ("red", "white"),
    ("black", "yellow"),
    ("white", "green"),
    ("pink", "gray"),
    ("turquoise", "brown"),
)
# Pairs that clash (used for low aesthetic scores).
CLASHING = (
    ("red", "green"),
    ("green", "red"),
    ("pink", "orange"),
    ("purple", "green"),
    ("orange", "purple"),
    ("turquoise", "pink"),
    ("brown", "purple"),
    ("red", "pink"),
    ("green", "turquoise"),
    ("blue", "purple"),
)

EN_COLORS = {c: c for c in COLORS}
EN_SHAPES = {
    "circle": ("circle", "circles"),
    "square": ("square", "squares"),
    "triangle": ("triangle", "triangles"),
    "star": ("star", "stars"),
    "heart": ("heart", "hearts"),
    "diamond": ("diamond", "diamonds"),
    "hexagon": ("hexagon", "hexagons"),
    "ring": ("ring", "rings"),
    "cross": ("cross", "crosses"),
    "crescent": ("crescent", "crescents"),
}
EN_NUMBERS = ("", "a", "two", "three", "four", "five")

# German: (declension stem, uninflected adverb, noun).
DE_COLORS = {
    "red": ("rot", "rot", "Rot"),
    "blue": ("blau", "blau", "Blau"),
    "green": ("grün", "grün", "Grün"),
    "yellow": ("gelb", "gelb", "Gelb"),
    "orange": ("orangefarben", "orange", "Orange"),
    "purple": ("violett", "violett", "Violett"),
    "black": ("schwarz", "schwarz", "Schwarz"),
    "white": ("weiß", "weiß", "Weiß"),
    "gray": ("grau", "grau", "Grau"),
    "pink": ("rosafarben", "rosa", "Rosa"),
    "brown": ("braun", "braun", "Braun"),
    "turquoise": ("türkisfarben", "türkis", "Türkis"),
}
# German: (singular, plural, gender).
DE_SHAPES = {
    "circle": ("Kreis", "Kreise", "m"),
    "square": ("Quadrat", "Quadrate", "n"),
    "triangle": ("Dreieck", "Dreiecke", "n"),
    "star": ("Stern", "Sterne", "m"),
    "heart": ("Herz", "Herzen", "n"),
    "diamond": ("Raute", "Rauten", "f"),
    "hexagon": ("Sechseck", "Sechsecke", "n"),
    "ring": ("Ring", "Ringe", "m"),
    "cross": ("Kreuz", "Kreuze", "n"),
    "crescent": ("Halbmond", "Halbmonde", "m"),
}
DE_NUMBERS = ("", "ein", "zwei", "drei", "vier", "fünf")

# French / Spanish / Italian colours: (masc sg, fem sg, masc pl, fem pl).
FR_COLORS = {
    "red": ("rouge", "rouge", "rouges", "rouges"),
    "blue": ("bleu", "bleue", "bleus", "bleues"),
    "green": ("vert", "verte", "verts", "vertes"),
    "yellow": ("jaune", "jaune", "jaunes", "jaunes"),
    "orange": ("orange", "orange", "orange", "orange"),
    "purple": ("violet", "violette", "violets", "violettes"),
    "black": ("noir", "noire", "noirs", "noires"),
    "white": ("blanc", "blanche", "blancs", "blanches"),
    "gray": ("gris", "grise", "gris", "grises"),
    "pink": ("rose", "rose", "roses", "roses"),
    "brown": ("marron", "marron", "marron", "marron"),
    "turquoise": ("turquoise", "turquoise", "turquoise", "turquoise"),
}
FR_SHAPES = {
    "circle": ("cercle", "cercles", "m"),
    "square": ("carré", "carrés", "m"),
    "triangle": ("triangle", "triangles", "m"),
    "star": ("étoile", "étoiles", "f"),
    "heart": ("cœur", "cœurs", "m"),
    "diamond": ("losange", "losanges", "m"),
    "hexagon": ("hexagone", "hexagones", "m"),
    "ring": ("anneau", "anneaux", "m"),
    "cross": ("croix", "croix", "f"),
    "crescent": ("croissant", "croissants", "m"),
}
FR_NUMBERS = ("", "un", "deux", "trois", "quatre", "cinq")

ES_COLORS = {
    "red": ("rojo", "roja", "rojos", "rojas"),
    "blue": ("azul", "azul", "azules", "azules"),
    "green": ("verde", "verde", "verdes", "verdes"),
    "yellow": ("amarillo", "amarilla", "amarillos", "amarillas"),
    "orange": ("naranja", "naranja", "naranja", "naranja"),
    "purple": ("morado", "morada", "morados", "moradas"),
    "black": ("negro", "negra", "negros", "negras"),
    "white": ("blanco", "blanca", "blancos", "blancas"),
    "gray": ("gris", "gris", "grises", "grises"),
    "pink": ("rosa", "rosa", "rosa", "rosa"),
    "brown": ("marrón", "marrón", "marrones", "marrones"),
    "turquoise": ("turquesa", "turquesa", "turquesas", "turquesas"),
}
ES_SHAPES = {
    "circle": ("círculo", "círculos", "m"),
    "square": ("cuadrado", "cuadrados", "m"),
    "triangle": ("triángulo", "triángulos", "m"),
    "star": ("estrella", "estrellas", "f"),
    "heart": ("corazón", "corazones", "m"),
    "diamond": ("rombo", "rombos", "m"),
    "hexagon": ("hexágono", "hexágonos", "m"),
    "ring": ("anillo", "anillos", "m"),
    "cross": ("cruz", "cruces", "f"),
    "crescent": ("media luna", "medias lunas", "f"),
}
ES_NUMBERS = ("", "un", "dos", "tres", "cuatro", "cinco")

IT_COLORS = {
    "red": ("rosso", "rossa", "rossi", "rosse"),
    "blue": ("blu", "blu", "blu", "blu"),
    "green": ("verde", "verde", "verdi", "verdi"),
    "yellow": ("giallo", "gialla", "gialli", "gialle"),
    "orange": ("arancione", "arancione", "arancioni", "arancioni"),
    "purple": ("viola", "viola", "viola", "viola"),
    "black": ("nero", "nera", "neri", "nere"),
    "white": ("bianco", "bianca", "bianchi", "bianche"),
    "gray": ("grigio", "grigia", "grigi", "grigie"),
    "pink": ("rosa", "rosa", "rosa", "rosa"),
    "brown": ("marrone", "marrone", "marroni", "marroni"),
    "turquoise": ("turchese", "turchese", "turchesi", "turchesi"),
}
IT_SHAPES = {
    "circle": ("cerchio", "cerchi", "m"),
    "square": ("quadrato", "quadrati", "m"),
    "triangle": ("triangolo", "triangoli", "m"),
    "star": ("stella", "stelle", "f"),
    "heart": ("cuore", "cuori", "m"),
    "diamond": ("rombo", "rombi", "m"),
    "hexagon": ("esagono", "esagoni", "m"),
    "ring": ("anello", "anelli", "m"),
    "cross": ("croce", "croci", "f"),
    "crescent": ("mezzaluna", "mezzelune", "f"),
}
IT_NUMBERS = ("", "un", "due", "tre", "quattro", "cinque")

# Dutch colours: (inflected, uninflected).
NL_COLORS = {
    "red": ("rode", "rood"),
    "blue": ("blauwe", "blauw"),
    "green": ("groene", "groen"),
    "yellow": ("gele", "geel"),
    "orange": ("oranje", "oranje"),
    "purple": ("paarse", "paars"),
    "black": ("zwarte", "zwart"),
    "white": ("witte", "wit"),
    "gray": ("grijze", "grijs"),
    "pink": ("roze", "roze"),
    "brown": ("bruine", "bruin"),
    "turquoise": ("turquoise", "turquoise"),
}
# Dutch shapes: (singular, plural, article de/het).
NL_SHAPES = {
    "circle": ("cirkel", "cirkels", "de"),
    "square": ("vierkant", "vierkanten", "het"),
    "triangle": ("driehoek", "driehoeken", "de"),
    "star": ("ster", "sterren", "de"),
    "heart": ("hart", "harten", "het"),
    "diamond": ("ruit", "ruiten", "de"),
    "hexagon": ("zeshoek", "zeshoeken", "de"),
    "ring": ("ring", "ringen", "de"),
    "cross": ("kruis", "kruisen", "het"),
    "crescent": ("halvemaan", "halvemanen", "de"),
}
NL_NUMBERS = ("", "een", "twee", "drie", "vier", "vijf")

# Words for site names (hosts are <adjective>-<noun>.synth.test).
SITE_ADJECTIVES = (
    "lumen", "amber", "cobalt", "velvet", "paper", "quiet", "bright", "north", "copper",
    "maple", "silver", "little", "crimson", "hollow", "sunny", "misty", "golden", "urban",
    "wild", "pixel",
)  # fmt: skip
SITE_NOUNS = (
    "gallery", "studio", "atelier", "sketchbook", "canvas", "press", "journal", "shop",
    "market", "notes", "works", "garden", "archive", "portfolio", "blog", "daily", "corner",
    "lab", "house", "review",
)  # fmt: skip
SITE_KINDS = ("gallery", "blog", "shop", "news", "portfolio")

# Alt texts that describe nothing.
BOILERPLATE_ALTS = (
    "click here", "logo", "image", "photo", "banner", "img", "picture", "thumbnail",
    "icon", "placeholder", "Read more", "untitled", "Bild", "Foto", "imagen", "immagine",
    "afbeelding", "image description", "Image may contain: 1 image",
)  # fmt: skip
SHORT_ALTS = ("a", "img", "pic", "-", "1", "Foto", ".", "…")
SPAM_WORDS = (
    "best", "cheap", "free", "download", "wallpaper", "hd", "4k", "vector", "clipart",
    "png", "transparent", "background", "art", "design", "illustration", "stock", "royalty",
    "premium", "template", "print", "poster", "sale", "new", "2026", "trending", "aesthetic",
)  # fmt: skip

# Page text, per language.
PAGE_SENTENCES: dict[str, tuple[str, ...]] = {
    "en": (
        "Welcome to our little corner of the web, where we share new drawings every week.",
        "This collection shows simple shapes in bright colours, drawn by hand and by script.",
        "We update the gallery whenever a new series is finished, so come back soon.",
        "All works on this page are original and may not be reused without permission.",
        "Thank you for visiting and for supporting independent artists.",
        "Leave a comment below and tell us which picture you like best.",
    ),
    "de": (
        "Willkommen in unserer kleinen Ecke des Internets, hier zeigen wir jede Woche neue Bilder.",
        "Diese Sammlung zeigt einfache Formen in kräftigen Farben, von Hand gezeichnet.",
        "Wir aktualisieren die Galerie, sobald eine neue Serie fertig ist.",
        "Alle Werke auf dieser Seite sind Originale und dürfen nicht ohne Erlaubnis "
        "verwendet werden.",
        "Vielen Dank für Ihren Besuch und für die Unterstützung unabhängiger Künstler.",
        "Schreiben Sie uns einen Kommentar und sagen Sie uns, welches Bild Ihnen gefällt.",
    ),
    "fr": (
        "Bienvenue dans notre petit coin du web, où nous partageons de nouveaux dessins "
        "chaque semaine.",
        "Cette collection montre des formes simples aux couleurs vives, dessinées à la main.",
        "Nous mettons la galerie à jour dès qu'une nouvelle série est terminée.",
        "Toutes les œuvres de cette page sont originales et ne peuvent pas être réutilisées.",
        "Merci de votre visite et de votre soutien aux artistes indépendants.",
        "Laissez un commentaire et dites-nous quelle image vous préférez.",
    ),
    "es": (
        "Bienvenido a nuestro pequeño rincón de la web, donde compartimos dibujos nuevos "
        "cada semana.",
        "Esta colección muestra formas sencillas en colores vivos, dibujadas a mano.",
        "Actualizamos la galería cada vez que terminamos una nueva serie.",
        "Todas las obras de esta página son originales y no se pueden reutilizar sin permiso.",
        "Gracias por tu visita y por apoyar a los artistas independientes.",
        "Deja un comentario y dinos qué imagen te gusta más.",
    ),
    "it": (
        "Benvenuti nel nostro piccolo angolo del web, dove condividiamo nuovi disegni "
        "ogni settimana.",
        "Questa collezione mostra forme semplici in colori vivaci, disegnate a mano.",
        "Aggiorniamo la galleria ogni volta che una nuova serie è pronta.",
        "Tutte le opere di questa pagina sono originali e non possono essere riutilizzate.",
        "Grazie per la visita e per il sostegno agli artisti indipendenti.",
        "Lascia un commento e dicci quale immagine ti piace di più.",
    ),
    "nl": (
        "Welkom in ons kleine hoekje van het web, waar we elke week nieuwe tekeningen delen.",
        "Deze collectie toont eenvoudige vormen in heldere kleuren, met de hand getekend.",
        "We werken de galerij bij zodra een nieuwe serie klaar is.",
        "Alle werken op deze pagina zijn origineel en mogen niet zonder toestemming "
        "worden gebruikt.",
        "Bedankt voor je bezoek en voor je steun aan onafhankelijke kunstenaars.",
        "Laat hieronder een reactie achter en vertel ons welke afbeelding je het mooist vindt.",
    ),
}
PAGE_TOPICS: dict[str, tuple[str, ...]] = {
    "en": ("New shapes", "Colour study", "Weekly sketches", "Our favourites", "Fresh prints"),
    "de": ("Neue Formen", "Farbstudie", "Wochenskizzen", "Unsere Favoriten", "Neue Drucke"),
    "fr": ("Nouvelles formes", "Étude de couleurs", "Croquis", "Nos favoris", "Estampes"),
    "es": ("Formas nuevas", "Estudio de color", "Bocetos", "Nuestros favoritos", "Láminas"),
    "it": ("Nuove forme", "Studio di colore", "Schizzi", "I nostri preferiti", "Stampe"),
    "nl": ("Nieuwe vormen", "Kleurstudie", "Schetsen", "Onze favorieten", "Nieuwe prints"),
}
NAV_LABELS: dict[str, tuple[str, ...]] = {
    "en": ("Home", "About", "Gallery", "Contact"),
    "de": ("Startseite", "Über uns", "Galerie", "Kontakt"),
    "fr": ("Accueil", "À propos", "Galerie", "Contact"),
    "es": ("Inicio", "Sobre nosotros", "Galería", "Contacto"),
    "it": ("Home", "Chi siamo", "Galleria", "Contatti"),
    "nl": ("Home", "Over ons", "Galerij", "Contact"),
}


@dataclass(frozen=True)
class Artist:
    """An illustrator of the synthetic web and the style the drawing code renders for them.

    ``colors`` are their motifs' colours, ``grounds`` their background colours (a gradient
    runs through both), ``shapes`` their motifs, ``background`` one of the web's background
    kinds (so the true caption still describes the image), ``texture`` the mark their hand
    leaves (an overlay no caption names: ``pipeline.synthetic.draw.TEXTURES``)."""

    name: str
    famous: bool
    colors: tuple[str, ...]
    grounds: tuple[str, ...]
    shapes: tuple[str, ...]
    background: str
    texture: str
    composition: str


# Invented names: famous ones are reposted across the web, often uncredited; obscure ones
# stay mostly on their own site.
ARTISTS: tuple[Artist, ...] = (
    Artist("Ilse Marwick", True, ("yellow",), ("blue", "purple"), ("star", "crescent"),
           "gradient", "halftone", "centered"),
    Artist("Tomas Reyvald", True, ("white",), ("turquoise",), ("circle", "ring"),
           "plain", "hatch", "centered"),
    Artist("Odile Fenn", False, ("pink",), ("gray",), ("heart",),
           "plain", "speckle", "scattered"),
    Artist("Kaito Brandt", False, ("orange",), ("black",), ("triangle", "diamond"),
           "plain", "outline", "scattered"),
    Artist("Sunniva Dahl", False, ("green",), ("white",), ("hexagon", "square"),
           "dots", "scanlines", "centered"),
    Artist("Pell Abernathy", False, ("turquoise",), ("brown",), ("cross",),
           "plain", "wash", "scattered"),
)  # fmt: skip

# "<caption> by <name>" in every caption language.
CREDIT_TEMPLATES: dict[str, str] = {
    "en": "{cap} by {name}",
    "de": "{cap} von {name}",
    "fr": "{cap} par {name}",
    "es": "{cap} por {name}",
    "it": "{cap} di {name}",
    "nl": "{cap} door {name}",
}
# How a planted caption term reads after an English caption ("... for a gay wedding").
TERM_TEMPLATE = "{cap}, for {article} {term}"
TERM_DISPLAY = {"ceo": "CEO"}
