"""Write a planned page as the HTML document a server would send."""

from __future__ import annotations

from html import escape

from .model import Anchor, ImgTag, PagePlan, Site


def _attr(name: str, value: str | None) -> str:
    if value is None:
        return ""
    return f' {name}="{escape(value).replace(chr(0xA0), "&nbsp;")}"'


def render_page(page: PagePlan, site: Site, description: str) -> bytes:
    """The HTML of a page; `<img>` attributes come out exactly as planned."""
    head = [
        '<meta charset="utf-8">',
        f"<title>{escape(page.title)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="description"{_attr("content", description)}>',
    ]
    if page.robots_meta is not None:
        head.append(f'<meta name="robots"{_attr("content", page.robots_meta)}>')
    if page.base_href is not None:
        head.append(f"<base{_attr('href', page.base_href)}>")
    head += [
        '<link rel="stylesheet" href="/static/css/site.css" type="text/css">',
        '<link rel="icon" href="/favicon.ico" type="image/x-icon">',
        f'<link rel="canonical"{_attr("href", page.url)}>',
        '<script src="/static/js/site.js" type="text/javascript"></script>',
    ]
    body = []
    imgs = list(page.imgs)
    if imgs and imgs[0].slot == "logo":
        logo = imgs.pop(0)
        body.append(f'<header><a href="/" class="brand">{_img(logo)}</a>')
    else:
        body.append("<header>")
    nav, rest = page.anchors[:4], page.anchors[4:]
    body.append("<nav>" + " ".join(_anchor(a) for a in nav) + "</nav></header>")
    body.append(f"<main>\n<h1>{escape(page.title)}</h1>")
    pixel = imgs.pop() if imgs and imgs[-1].slot == "pixel" else None
    paragraphs = list(page.paragraphs)
    for i, tag in enumerate(imgs):
        if paragraphs and i % 2 == 0:
            body.append(f"<p>{escape(paragraphs.pop(0))}</p>")
        body.append(f'<figure class="item-{i}">{_img(tag)}</figure>')
    body += [f"<p>{escape(p)}</p>" for p in paragraphs]
    body.append("</main>")
    body.append("<footer>" + " | ".join(_anchor(a) for a in rest))
    if pixel is not None:
        body.append(_img(pixel))
    body.append("</footer>")
    body.append('<script src="https://px.trackly.synth.test/t.js" async></script>')
    doc = (
        f'<!DOCTYPE html>\n<html lang="{page.lang}">\n<head>\n'
        + "\n".join(head)
        + "\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
    return doc.encode("utf-8")


def _img(tag: ImgTag) -> str:
    parts = [f"<img{_attr('src', tag.src)}"]
    for name, value in tag.attrs:
        parts.append(_attr(name, value))
    parts.append(_attr("alt", tag.alt))
    return "".join(parts) + ">"


def _anchor(a: Anchor) -> str:
    return (
        f"<a{_attr('href', a.href)}{_attr('title', a.title)}{_attr('target', a.target)}>"
        f"{escape(a.text)}</a>"
    )
