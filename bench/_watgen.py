"""Deterministic generator of realistic Common Crawl WAT files, shared by the benchmarks.

The output follows the real files in ``tests/data/real-wat/`` and DESIGN.md: one gzip
member per WARC record (CRLF headers, ``WARC-Payload-Digest``/``WARC-Block-Digest``), a
``warcinfo`` record first, then three ``metadata`` records per page (the request's, the
response's with ``HTML-Metadata`` and the ``metadata`` record's), JSON keys in Common Crawl's
order. Pages carry a heavy-tailed number of links (median about 110) of which a minority are
``IMG@/src``; most images have an ``alt`` (some empty, some whitespace, some with entities,
many languages); image URLs are relative (``img/x.png``, ``../``, ``/root``), absolute,
protocol-relative or ``data:`` URIs; some pages have ``Head.Base`` (a few of them relative, as
on the real web), a few carry ``<meta name="robots" content="noai">``; some responses are not
HTML (no ``HTML-Metadata``) or HTML without links.

Generation is split into chunks of pages, each seeded by ``(seed, chunk index)``, inflated
records compressed with zlib level 6, chunks built on all cores and written in order, so a
given ``(size_mb, seed)`` always yields the same bytes. Files are cached in ``bench/out/``
with a JSON sidecar holding their statistics.

Not a CLI: see ``bench/wat_extract.py`` and ``bench/alt_text.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing as mp
import os
import random
import time
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

GENERATOR_VERSION = 4
"""Bump when the output changes, so cached files are rebuilt."""

OUT_DIR = Path(__file__).resolve().parent / "out"
PAGES_PER_CHUNK = 300
MB = 1 << 20

# --- word tables (language data, not tunables) ---------------------------------------------


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split())


WORDS: dict[str, tuple[str, ...]] = {
    "en": _split(
        "the a of and with in on for our new old red blue green black white small large "
        "wooden vintage modern classic handmade photo view garden house kitchen bedroom "
        "living room chair table lamp sofa dress shirt shoes bag watch ring necklace cake "
        "bread coffee tea recipe beach mountain lake river forest city street bridge night "
        "sunset sunrise winter summer spring autumn dog cat bird horse flower tree rose "
        "portrait family wedding party team office product detail front back side close up "
        "logo banner icon image picture drawing painting illustration sketch poster cover "
        "book album music concert festival car bike train plane boat map chart screenshot "
        "best cheap premium quality free shipping sale guide review how to make easy"
    ),
    "de": _split(
        "der die das und mit für auf im ein eine neue alte rote blaue grüne schwarze weiße "
        "kleine große Haus Garten Küche Zimmer Stuhl Tisch Lampe Kleid Schuhe Tasche Uhr "
        "Kuchen Brot Kaffee Rezept Strand Berg See Fluss Wald Stadt Straße Brücke Nacht "
        "Sonnenuntergang Winter Sommer Frühling Herbst Hund Katze Vogel Pferd Blume Baum "
        "Familie Hochzeit Mannschaft Büro Produkt Ansicht Bild Zeichnung Gemälde Bahnhof "
        "günstig Angebot Qualität Versand Anleitung Bewertung schön Größe Übersicht"
    ),
    "fr": _split(
        "le la les et avec pour sur dans un une nouveau vieille rouge bleu vert noir blanc "
        "petit grand maison jardin cuisine chambre chaise table lampe robe chaussures sac "
        "montre gâteau pain café recette plage montagne lac rivière forêt ville rue pont "
        "nuit coucher soleil hiver été printemps automne chien chat oiseau cheval fleur "
        "arbre famille mariage équipe bureau produit vue image dessin peinture affiche "
        "livre musique concert voiture vélo train avion bateau carte meilleur qualité "
        "livraison gratuite soldes guide avis comment faire élégant"
    ),
    "es": _split(
        "el la los las y con para en un una nuevo vieja rojo azul verde negro blanco "
        "pequeño grande casa jardín cocina habitación silla mesa lámpara vestido zapatos "
        "bolso reloj pastel pan café receta playa montaña lago río bosque ciudad calle "
        "puente noche atardecer invierno verano primavera otoño perro gato pájaro caballo "
        "flor árbol familia boda equipo oficina producto vista imagen dibujo pintura "
        "cartel libro música concierto coche bicicleta tren avión barco mapa mejor "
        "calidad envío gratis oferta guía cómo hacer fácil niño"
    ),
    "ru": _split(
        "и в на с для новый старый красный синий зелёный чёрный белый маленький большой "
        "дом сад кухня комната стул стол лампа платье обувь сумка часы торт хлеб кофе "
        "рецепт пляж гора озеро река лес город улица мост ночь закат зима лето весна "
        "осень собака кошка птица лошадь цветок дерево семья свадьба команда офис товар "
        "вид фото рисунок картина плакат книга музыка концерт машина велосипед поезд "
        "самолёт лодка карта лучший качество доставка бесплатно скидка как сделать"
    ),
    "ja": _split(
        "新しい 古い 赤い 青い 緑 黒 白 小さい 大きい 家 庭 台所 部屋 椅子 机 ランプ ドレス 靴 "
        "バッグ 時計 ケーキ パン コーヒー レシピ 海 山 湖 川 森 街 道 橋 夜 夕日 冬 夏 春 秋 犬 "
        "猫 鳥 馬 花 木 家族 結婚式 チーム 事務所 商品 写真 画像 絵 ポスター 本 音楽 車 "
        "電車"
    ),
    "zh": _split(
        "新 旧 红色 蓝色 绿色 黑色 白色 小 大 房子 花园 厨房 房间 椅子 桌子 灯 裙子 鞋 包 手表 "
        "蛋糕 面包 咖啡 食谱 海滩 山 湖 河 森林 城市 街道 桥 夜晚 日落 冬天 夏天 春天 秋天 狗 "
        "猫 鸟 马 花 树 家庭 婚礼 团队 办公室 产品 图片 照片 绘画 海报 书 音乐 汽车 火车"
    ),
    "pt": _split(
        "o a os as e com para em um uma novo velha vermelho azul verde preto branco "
        "pequeno grande casa jardim cozinha quarto cadeira mesa vestido sapatos bolsa "
        "relógio bolo pão café receita praia montanha lago rio floresta cidade rua ponte "
        "noite inverno verão primavera outono cachorro gato pássaro cavalo flor árvore "
        "família casamento equipe escritório produto imagem desenho pintura livro "
        "música carro bicicleta trem avião barco melhor qualidade frete grátis"
    ),
    "it": _split(
        "il la le e con per su in un una nuovo vecchia rosso blu verde nero bianco "
        "piccolo grande casa giardino cucina camera sedia tavolo lampada vestito scarpe "
        "borsa orologio torta pane caffè ricetta spiaggia montagna lago fiume bosco città "
        "strada ponte notte tramonto inverno estate primavera autunno cane gatto uccello "
        "cavallo fiore albero famiglia matrimonio squadra ufficio prodotto immagine "
        "disegno pittura libro musica macchina treno aereo barca migliore qualità"
    ),
    "pl": _split(
        "i w na z dla nowy stary czerwony niebieski zielony czarny biały mały duży dom "
        "ogród kuchnia pokój krzesło stół lampa sukienka buty torba zegarek ciasto chleb "
        "kawa przepis plaża góra jezioro rzeka las miasto ulica most noc zachód zima "
        "lato wiosna jesień pies kot ptak koń kwiat drzewo rodzina ślub zespół biuro "
        "produkt zdjęcie obraz rysunek plakat książka muzyka samochód pociąg łódź"
    ),
}
PAGE_LANGUAGES = ("en", "de", "fr", "es", "ru", "ja", "zh", "pt", "it", "pl")
PAGE_LANGUAGE_WEIGHTS = (44, 8, 7, 7, 7, 5, 5, 5, 6, 6)
TLDS = (
    "com",
    "com",
    "com",
    "org",
    "net",
    "de",
    "fr",
    "es",
    "ru",
    "jp",
    "cn",
    "br",
    "it",
    "pl",
    "co.uk",
    "io",
    "info",
    "nl",
    "shop",
    "blog",
)
IMAGE_EXT = ("jpg", "jpg", "jpg", "jpeg", "png", "png", "gif", "webp", "svg")
CDNS = (
    "cdn.shopify.com/s/files/1/{a}/{b}/products",
    "i0.wp.com/{host}/wp-content/uploads/{y}/{m}",
    "images.squarespace-cdn.com/content/v1/{hex}",
    "static.wixstatic.com/media/{hex}",
    "upload.wikimedia.org/wikipedia/commons/{h1}/{h2}",
    "m.media-amazon.com/images/I",
    "i.pinimg.com/736x/{h2}/{h2}/{h2}",
    "{host}/wp-content/uploads/{y}/{m}",
    "img.{host}/assets/{hex}",
)
SPACER_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
REASONS = {"200": "OK", "301": "Moved Permanently", "404": "Not Found"}
SERVERS = ("Apache", "nginx", "cloudflare", "Microsoft-IIS/10.0", "LiteSpeed", "openresty")
ROBOTS = (
    "index, follow",
    "index,follow",
    "noindex",
    "max-image-preview:large",
    "noai, noimageai",
    "noimageai",
    "index, follow, noai",
)


@dataclass
class ChunkStats:
    """What a chunk (or a whole file) holds."""

    pages: int = 0
    records: int = 0
    compressed_bytes: int = 0
    inflated_bytes: int = 0
    links: int = 0
    img_links: int = 0
    img_with_alt: int = 0
    """IMG@/src links with a non-empty alt (the pairs cc2dataset keeps, before URL rules)."""
    pages_with_base: int = 0
    pages_with_relative_base: int = 0
    pages_noai: int = 0

    def add(self, other: ChunkStats) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass
class WatFile:
    """A generated WAT file and its statistics."""

    path: Path
    size_mb: int
    seed: int
    stats: ChunkStats = field(default_factory=ChunkStats)
    seconds: float = 0.0
    cached: bool = False


class _Gen:
    """Builds the pages of one chunk from its own random stream."""

    def __init__(self, seed: int, chunk: int) -> None:
        self.rng = random.Random(f"watgen:{seed}:{chunk}")
        self.chunk = chunk
        self.warc_file = (
            f"CC-MAIN-20240517{233122 + chunk % 50:06d}-20240518{23122 + chunk % 50:06d}"
            f"-{chunk % 100000:05d}.warc.gz"
        )
        self.warc_offset = self.rng.randrange(10_000, 1_000_000)
        self.stats = ChunkStats()

    # small helpers ---------------------------------------------------------------------
    def uuid(self) -> str:
        return f"<urn:uuid:{uuid.UUID(int=self.rng.getrandbits(128), version=4)}>"

    def hexs(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def sha1(self) -> str:
        return "sha1:" + base64.b32encode(self.rng.randbytes(20)).decode()

    def words(self, lang: str, lo: int, hi: int) -> str:
        rng = self.rng
        vocab = WORDS[lang]
        n = rng.randint(lo, hi)
        sep = "" if lang in ("ja", "zh") and rng.random() < 0.7 else " "
        return sep.join(rng.choice(vocab) for _ in range(n))

    def slug(self, lang: str) -> str:
        text = self.words("en" if lang in ("ja", "zh", "ru") else lang, 2, 5)
        return text.lower().replace(" ", "-")

    def date(self, year: int = 2024) -> str:
        rng = self.rng
        return (
            f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            f"T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"
        )

    # content ----------------------------------------------------------------------------
    def host(self) -> str:
        rng = self.rng
        name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 11)))
        if rng.random() < 0.3:
            name += "-" + rng.choice(WORDS["en"]).replace(" ", "")
        sub = rng.choice(("www.", "www.", "", "", "blog.", "shop.", "m.", "en."))
        return f"{sub}{name}.{rng.choice(TLDS)}"

    def page_url(self, host: str, lang: str) -> str:
        rng = self.rng
        kind = rng.random()
        scheme = "https" if rng.random() < 0.85 else "http"
        if kind < 0.35:
            path = f"/{rng.randint(2012, 2024)}/{rng.randint(1, 12):02d}/{self.slug(lang)}/"
        elif kind < 0.6:
            path = f"/products/{self.slug(lang)}"
            if rng.random() < 0.3:
                path += f"?variant={rng.randint(10**10, 10**14)}"
        elif kind < 0.8:
            path = f"/{self.slug(lang).split('-')[0]}/{rng.randint(1, 99999)}.html"
        elif kind < 0.9:
            path = "/"
        else:
            path = f"/index.php?option=com_content&view=article&id={rng.randint(1, 9999)}"
        return f"{scheme}://{host}{path}"

    def img_dir(self, host: str) -> str:
        """A directory images live in: relative, root-relative, absolute, CDN or ``data:``."""
        rng = self.rng
        kind = rng.random()
        if kind < 0.22:
            return f"{rng.choice(('img', 'images', 'assets/img', 'media'))}/"
        if kind < 0.30:
            return f"../{rng.choice(('img', 'uploads', 'pics'))}/"
        if kind < 0.50:
            y, m = rng.randint(2012, 2024), rng.randint(1, 12)
            return f"/wp-content/uploads/{y}/{m:02d}/"
        if kind < 0.64:
            return f"https://{host}/{rng.choice(('images', 'static', 'files'))}/"
        if kind < 0.70:
            return f"//{rng.choice(('cdn', 'static', 'img'))}.{host.split('.', 1)[-1]}/"
        cdn = rng.choice(CDNS).format(
            a=f"{rng.randint(0, 9999):04d}",
            b=f"{rng.randint(0, 9999):04d}",
            host=host,
            y=rng.randint(2015, 2024),
            m=f"{rng.randint(1, 12):02d}",
            hex=self.hexs(16),
            h1=self.hexs(1),
            h2=self.hexs(2),
        )
        return f"https://{cdn}/"

    def img_url(self, host: str, lang: str, dirs: list[str] | None = None) -> str:
        rng = self.rng
        kind = rng.random()
        if kind < 0.025:
            return SPACER_GIF  # lazy-loading placeholder
        ext = rng.choice(IMAGE_EXT)
        name = rng.choice(
            (
                f"{self.slug(lang)}.{ext}",
                f"{self.slug(lang)}-{rng.choice((150, 300, 768, 1024))}x"
                f"{rng.choice((150, 200, 512, 683))}.{ext}",
                f"IMG_{rng.randint(1000, 9999)}.{ext}",
                f"{self.hexs(12)}.{ext}",
                f"{rng.randint(1, 99999)}.{ext}",
            )
        )
        if kind < 0.03:
            return f"images/{self.words('en', 2, 3)}.{ext}"  # unescaped spaces
        if kind < 0.035:
            return f"/{rng.choice(('фото', '画像', 'größe'))}/{name}"
        base = rng.choice(dirs) if dirs and kind < 0.85 else self.img_dir(host)
        cdn_query = base.startswith("https") and kind > 0.8
        query = f"?v={rng.randint(10**9, 10**10)}" if cdn_query else ""
        return f"{base}{name}{query}"

    def alt(self, lang: str, url: str) -> str | None:
        """An alt attribute: absent, empty, junk, a file name, or a caption."""
        rng = self.rng
        r = rng.random()
        if r < 0.13:
            return None
        if r < 0.19:
            return ""
        if r < 0.20:
            return " "
        if r < 0.25:
            return rng.choice(("logo", "icon", "image", "photo", "img", "spacer", "banner", "1"))
        if r < 0.29:
            return url.rsplit("/", 1)[-1].split("?")[0][:60]
        if r < 0.31:
            return self.words(lang, 2, 6) + " &amp; " + self.words(lang, 1, 4)
        caption = self.words(lang, 2, 14)
        if rng.random() < 0.2:
            caption = caption[:1].upper() + caption[1:]
        if rng.random() < 0.02:
            caption = caption.replace("é", "Ã©").replace("ü", "Ã¼").replace("ó", "Ã³")
        return caption

    def links(self, host: str, lang: str) -> list[dict[str, str]]:
        rng = self.rng
        n = min(5000, int(rng.lognormvariate(5.1, 1.0)))
        img_share = min(0.9, rng.betavariate(1.6, 8.0))
        dirs = [self.img_dir(host) for _ in range(rng.randint(1, 3))]
        nav = [self._href(host, lang) for _ in range(rng.randint(5, 40))]
        nav_text = [self.words(lang, 1, 3) for _ in nav]
        alt_bias = rng.random()  # some sites never write alts
        no_alt_site = alt_bias < 0.12
        out: list[dict[str, str]] = []
        repeated = [self.img_url(host, lang, dirs) for _ in range(rng.randint(1, 3))]
        for _ in range(n):
            r = rng.random()
            if r < img_share:
                if rng.random() < 0.08:
                    url = rng.choice(repeated)
                else:
                    url = self.img_url(host, lang, dirs)
                alt = None if no_alt_site else self.alt(lang, url)
                link = {"path": "IMG@/src", "url": url}
                if alt is not None:
                    link["alt"] = alt
                if rng.random() < 0.05:
                    link["title"] = self.words(lang, 1, 5)
                self.stats.img_links += 1
                self.stats.img_with_alt += bool(alt)
            elif r < img_share + (1 - img_share) * 0.93:
                if rng.random() < 0.6:
                    k = rng.randrange(len(nav))
                    out.append({"path": "A@/href", "url": nav[k], "text": nav_text[k]})
                    continue
                link = {"path": "A@/href", "url": self._href(host, lang)}
                if rng.random() < 0.25:
                    link["title"] = self.words(lang, 1, 8)
                if rng.random() < 0.1:
                    link["target"] = "_blank"
                if rng.random() < 0.85:
                    link["text"] = self.words(lang, 1, 6)
            else:
                path = rng.choice(("FORM@/action", "IFRAME@/src", "TD@/background", "EMBED@/src"))
                link = {"path": path, "url": self._href(host, lang)}
                if path == "FORM@/action":
                    link["method"] = rng.choice(("get", "post"))
            out.append(link)
        self.stats.links += n
        return out

    def _href(self, host: str, lang: str) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.5:
            return f"/{self.slug(lang)}/"
        if r < 0.7:
            return f"{self.slug(lang)}.html"
        if r < 0.9:
            return f"https://{rng.choice((host, self.host()))}/{self.slug(lang)}"
        return rng.choice(("#", "javascript:void(0)", "mailto:info@" + host, "#top"))

    # records ------------------------------------------------------------------------------
    def container(self, inflated: int) -> dict[str, Any]:
        rng = self.rng
        deflate = int(inflated / rng.uniform(3.0, 6.0))
        offset = self.warc_offset
        self.warc_offset += deflate + 18
        return {
            "Filename": self.warc_file,
            "Compressed": True,
            "Offset": str(offset),
            "Gzip-Metadata": {
                "Deflate-Length": str(deflate),
                "Header-Length": "10",
                "Footer-Length": "8",
                "Inflated-CRC": str(rng.randint(-(2**31), 2**31 - 1)),
                "Inflated-Length": str(inflated),
            },
        }

    def page(self) -> list[tuple[str, str, str, bytes]]:
        """One page as (target URI, date, WARC-Refers-To, JSON) for its three records."""
        rng = self.rng
        lang = rng.choices(PAGE_LANGUAGES, PAGE_LANGUAGE_WEIGHTS)[0]
        host = self.host()
        url = self.page_url(host, lang)
        date = self.date()
        req_id, resp_id, meta_id, info_id = self.uuid(), self.uuid(), self.uuid(), self.uuid()
        ip = ".".join(str(rng.randint(1, 223 if i == 0 else 254)) for i in range(4))
        path = url.split("/", 3)[-1]
        request = {
            "Container": self.container(rng.randint(500, 700)),
            "Envelope": {
                "Payload-Metadata": {
                    "Actual-Content-Type": "application/http; msgtype=request",
                    "HTTP-Request-Metadata": {
                        "Request-Message": {
                            "Method": "GET",
                            "Path": "/" + path,
                            "Version": "HTTP/1.1",
                        },
                        "Headers-Length": str(rng.randint(240, 300)),
                        "Headers": {
                            "User-Agent": "CCBot/2.0 (https://commoncrawl.org/faq/)",
                            "Accept": ACCEPT,
                            "Accept-Language": "en-US,en;q=0.5",
                            "Accept-Encoding": "br,gzip",
                            "Host": host,
                            "Connection": "Keep-Alive",
                        },
                        "Entity-Length": "0",
                        "Entity-Digest": "sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ",
                        "Entity-Trailing-Slop-Length": "0",
                    },
                    "Actual-Content-Length": str(rng.randint(240, 300)),
                    "Trailing-Slop-Length": "4",
                    "Block-Digest": self.sha1(),
                },
                "Format": "WARC/1.0",
                "WARC-Header-Length": str(rng.randint(330, 380)),
                "WARC-Header-Metadata": {
                    "WARC-Type": "request",
                    "WARC-Date": date,
                    "WARC-Record-ID": req_id,
                    "Content-Length": str(rng.randint(240, 300)),
                    "Content-Type": "application/http; msgtype=request",
                    "WARC-Warcinfo-ID": info_id,
                    "WARC-IP-Address": ip,
                    "WARC-Target-URI": url,
                },
            },
        }
        kind = rng.random()
        status, ctype = ("200", "text/html; charset=UTF-8")
        html: dict[str, Any] | None = None
        if kind < 0.04:
            status, ctype = rng.choice((("301", "text/html"), ("404", "text/html")))
            html = {"Head": {"Title": rng.choice(("301 Moved Permanently", "404 Not Found"))}}
        elif kind < 0.08:
            ctype = rng.choice(("application/pdf", "image/jpeg", "application/json", "text/plain"))
        else:
            head: dict[str, Any] = {}
            metas = [{"name": "viewport", "content": "width=device-width, initial-scale=1"}]
            if rng.random() < 0.6:
                metas.append({"name": "description", "content": self.words(lang, 6, 25)})
            if rng.random() < 0.3:
                metas.append({"property": "og:title", "content": self.words(lang, 3, 9)})
                metas.append({"property": "og:image", "content": self.img_url(host, lang)})
            if rng.random() < 0.25:
                robots = rng.choices(ROBOTS, (40, 10, 5, 25, 1, 1, 1))[0]
                metas.append({"name": "robots", "content": robots})
                self.stats.pages_noai += "noai" in robots or "noimageai" in robots
            if rng.random() < 0.2:
                metas.append({"name": "generator", "content": f"WordPress 6.{rng.randint(0, 5)}"})
            head["Metas"] = metas
            head["Title"] = self.words(lang, 2, 10)
            if rng.random() < 0.08:
                if rng.random() < 0.15:
                    head["Base"] = rng.choice(("/", "/static/", "../"))
                    self.stats.pages_with_relative_base += 1
                else:
                    head["Base"] = f"https://{rng.choice((host, self.host()))}/"
                self.stats.pages_with_base += 1
            head["Link"] = [
                {
                    "path": "LINK@/href",
                    "url": f"/css/{self.slug('en')}.css",
                    "rel": "stylesheet",
                    "type": "text/css",
                }
                for _ in range(rng.randint(0, 6))
            ]
            head["Scripts"] = [
                {"path": "SCRIPT@/src", "url": f"/js/{self.hexs(8)}.js", "type": "text/javascript"}
                for _ in range(rng.randint(0, 8))
            ]
            html = {"Head": head}
            if rng.random() < 0.97:
                html["Links"] = self.links(host, lang)
        headers = {
            "Date": "Sat, 18 May 2024 01:58:10 GMT",
            "Content-Type": ctype,
            "X-Crawler-Transfer-Encoding": "chunked",
            "Connection": "keep-alive",
            "Server": rng.choice(SERVERS),
            "Vary": "Accept-Encoding",
            "X-Crawler-Content-Encoding": "gzip",
            "Content-Length": str(rng.randint(2_000, 400_000)),
        }
        http_resp: dict[str, Any] = {
            "Response-Message": {
                "Status": status,
                "Version": "HTTP/1.1",
                "Reason": REASONS[status],
            },
            "Headers-Length": str(rng.randint(300, 900)),
            "Headers": headers,
        }
        if html is not None:
            http_resp["HTML-Metadata"] = html
        http_resp["Entity-Length"] = headers["Content-Length"]
        http_resp["Entity-Digest"] = self.sha1()
        http_resp["Entity-Trailing-Slop-Length"] = "0"
        response = {
            "Container": self.container(int(headers["Content-Length"])),
            "Envelope": {
                "Payload-Metadata": {
                    "Actual-Content-Type": "application/http; msgtype=response",
                    "HTTP-Response-Metadata": http_resp,
                    "Actual-Content-Length": str(int(headers["Content-Length"]) + 400),
                    "Trailing-Slop-Length": "4",
                    "Block-Digest": self.sha1(),
                },
                "Format": "WARC/1.0",
                "WARC-Header-Length": str(rng.randint(550, 700)),
                "WARC-Header-Metadata": {
                    "WARC-Type": "response",
                    "WARC-Date": date,
                    "WARC-Record-ID": resp_id,
                    "Content-Length": str(int(headers["Content-Length"]) + 400),
                    "Content-Type": "application/http; msgtype=response",
                    "WARC-Warcinfo-ID": info_id,
                    "WARC-Concurrent-To": req_id,
                    "WARC-IP-Address": ip,
                    "WARC-Target-URI": url,
                    "WARC-Payload-Digest": http_resp["Entity-Digest"],
                    "WARC-Block-Digest": self.sha1(),
                    "WARC-Identified-Payload-Type": "text/html" if html else ctype,
                },
            },
        }
        cld2 = orjson.dumps(
            {
                "reliable": True,
                "text-bytes": rng.randint(100, 90000),
                "languages": [
                    {
                        "code": lang,
                        "code-iso-639-3": lang + "x",
                        "text-covered": 0.97,
                        "score": rng.randint(500, 1500),
                        "name": lang,
                    }
                ],
            }
        ).decode()
        meta = {
            "Container": self.container(rng.randint(300, 500)),
            "Envelope": {
                "Payload-Metadata": {
                    "Actual-Content-Type": "application/metadata-fields",
                    "WARC-Metadata-Metadata": {
                        "Metadata-Records": [
                            {"Name": "fetchTimeMs", "Value": str(rng.randint(20, 5000))},
                            {"Name": "charset-detected", "Value": "UTF-8"},
                            {"Name": "languages-cld2", "Value": cld2},
                        ]
                    },
                    "Actual-Content-Length": str(rng.randint(200, 400)),
                    "Trailing-Slop-Length": "0",
                },
                "Format": "WARC/1.0",
                "WARC-Header-Length": str(rng.randint(400, 500)),
                "WARC-Header-Metadata": {
                    "WARC-Type": "metadata",
                    "WARC-Date": date,
                    "WARC-Record-ID": meta_id,
                    "Content-Length": str(rng.randint(200, 400)),
                    "Content-Type": "application/warc-fields",
                    "WARC-Warcinfo-ID": info_id,
                    "WARC-Concurrent-To": resp_id,
                    "WARC-Target-URI": url,
                },
            },
        }
        wat_date = self.date()
        return [
            (url, wat_date, req_id, orjson.dumps(request)),
            (url, wat_date, resp_id, orjson.dumps(response)),
            (url, wat_date, meta_id, orjson.dumps(meta)),
        ]

    def record(self, uri: str, date: str, refers_to: str, payload: bytes) -> bytes:
        """One WAT record (a WARC ``metadata`` record, CRLF headers) as a gzip member."""
        return metadata_member(uri, date, self.uuid(), refers_to, payload, self.stats)


def metadata_member(
    uri: str, date: str, record_id: str, refers_to: str, payload: bytes, stats: ChunkStats
) -> bytes:
    """A WARC ``metadata`` record of a JSON payload (CRLF headers, both digests) as a gzip
    member, counted into ``stats``."""
    digest = "sha1:" + base64.b32encode(hashlib.sha1(payload).digest()).decode()
    header = (
        "WARC/1.0\r\n"
        "WARC-Type: metadata\r\n"
        f"WARC-Target-URI: {uri}\r\n"
        f"WARC-Date: {date}\r\n"
        f"WARC-Record-ID: {record_id}\r\n"
        f"WARC-Refers-To: {refers_to}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n"
        f"WARC-Payload-Digest: {digest}\r\n"
        f"WARC-Block-Digest: {digest}\r\n"
        "\r\n"
    ).encode()
    return gzip_member(header + payload + b"\r\n\r\n", stats)


def gzip_member(data: bytes, stats: ChunkStats | None = None) -> bytes:
    """``data`` as one gzip member (zlib level 6), counted into ``stats``."""
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    member = comp.compress(data) + comp.flush()
    if stats is not None:
        stats.records += 1
        stats.inflated_bytes += len(data)
        stats.compressed_bytes += len(member)
    return member


def warcinfo_member(filename: str, stats: ChunkStats) -> bytes:
    body = (
        b"Software-Info: ia-web-commons.1.1.10-SNAPSHOT-20240513074037\r\n"
        b"Extracted-Date: Fri, 31 May 2024 01:16:45 GMT\r\n"
        b"ip: 10.67.67.159\r\n"
        b"hostname: ip-10-67-67-159.ec2.internal\r\n"
        b"format: WARC File Format 1.0\r\n"
        b"conformsTo: http://bibnum.bnf.fr/WARC/WARC_ISO_28500_version1_latestdraft.pdf\r\n"
        b"\r\n"
    )
    digest = "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode()
    header = (
        "WARC/1.0\r\n"
        "WARC-Type: warcinfo\r\n"
        "WARC-Date: 2024-05-31T01:16:45Z\r\n"
        f"WARC-Filename: {filename}\r\n"
        "WARC-Record-ID: <urn:uuid:b4fe2291-40c2-4492-b4ab-7a7776be6c73>\r\n"
        "Content-Type: application/warc-fields\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"WARC-Block-Digest: {digest}\r\n"
        "\r\n"
    ).encode()
    return gzip_member(header + body + b"\r\n\r\n", stats)


def build_chunk(args: tuple[int, int]) -> tuple[bytes, ChunkStats]:
    """The gzip members of chunk ``index`` (``PAGES_PER_CHUNK`` pages) and its statistics."""
    seed, index = args
    gen = _Gen(seed, index)
    parts = []
    for _ in range(PAGES_PER_CHUNK):
        for uri, date, refers, payload in gen.page():
            parts.append(gen.record(uri, date, refers, payload))
        gen.stats.pages += 1
    return b"".join(parts), gen.stats


def wat_path(size_mb: int, seed: int) -> Path:
    return OUT_DIR / f"synthetic-{size_mb}mb-seed{seed}-v{GENERATOR_VERSION}.warc.wat.gz"


def cached_wat(path: Path, size_mb: int, seed: int) -> WatFile | None:
    """The WAT file at ``path`` with the statistics of its JSON sidecar, if both are there and
    the file has the size the sidecar recorded; else None."""
    sidecar = path.with_suffix(".json")
    if path.exists() and sidecar.exists():
        meta = json.loads(sidecar.read_text())
        if meta.get("size") == path.stat().st_size:
            return WatFile(path, size_mb, seed, ChunkStats(**meta["stats"]), meta["seconds"], True)
    return None


def ensure_wat(size_mb: int, seed: int = 0, workers: int | None = None) -> WatFile:
    """Return the cached WAT file of at least ``size_mb`` MiB, generating it if missing."""
    path = wat_path(size_mb, seed)
    if cached := cached_wat(path, size_mb, seed):
        return cached
    sidecar = path.with_suffix(".json")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    workers = workers or min(2, os.cpu_count() or 1)
    target = size_mb * MB
    stats = ChunkStats()
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "wb") as out, mp.get_context("fork").Pool(workers) as pool:
        out.write(warcinfo_member(path.name, stats))
        index = 0
        while stats.compressed_bytes < target:
            batch = [(seed, index + i) for i in range(workers * 4)]
            index += len(batch)
            for data, chunk_stats in pool.imap(build_chunk, batch):
                if stats.compressed_bytes >= target:
                    break  # deterministic: chunks are written in order up to the target
                out.write(data)
                stats.add(chunk_stats)
    os.replace(tmp, path)
    seconds = time.perf_counter() - started
    sidecar.write_text(
        json.dumps(
            {
                "size": path.stat().st_size,
                "stats": asdict(stats),
                "seconds": seconds,
                "generator_version": GENERATOR_VERSION,
            },
            indent=1,
        )
    )
    return WatFile(path, size_mb, seed, stats, seconds, False)


def peak_rss_mb() -> float:
    """This process's peak resident set in MB (``VmHWM``: unlike ``ru_maxrss`` it is not
    inherited across ``exec``), for the benchmark children."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
