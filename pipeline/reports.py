"""Plots and image grids as PNG bytes (written to the lake's ``_reports/``), and Markdown
that links to them from Dagster metadata."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

from PIL import Image, ImageDraw


def histograms_png(series: Mapping[str, Sequence[float]], bins: int = 40) -> bytes:
    """One histogram per named series, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(series), figsize=(4 * len(series), 3), squeeze=False)
    for ax, (name, values) in zip(axes[0], series.items(), strict=True):
        values = [v for v in values if v is not None]
        ax.hist(values, bins=bins, color="#3465a4")
        ax.set_title(f"{name} (n={len(values)})")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def line_png(values: Sequence[float], title: str, xlabel: str = "step") -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(list(values), color="#3465a4")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def grid_png(rows: Sequence[tuple[str, Sequence[Image.Image]]], cell: int = 96) -> bytes:
    """A grid: one labelled row of images per entry."""
    label_w = 110
    width = label_w + cell * max((len(ims) for _, ims in rows), default=1)
    canvas = Image.new("RGB", (width, cell * max(1, len(rows))), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (label, images) in enumerate(rows):
        draw.text((4, r * cell + cell // 2 - 6), label, fill="black")
        for c, im in enumerate(images):
            thumb = im.convert("RGB").copy()
            thumb.thumbnail((cell - 4, cell - 4))
            canvas.paste(thumb, (label_w + c * cell + 2, r * cell + 2))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def markdown_link(uri: str, alt: str) -> str:
    """Markdown that links to a report file in the lake (never the file's bytes: metadata
    outlives files, and erasure must reach every copy of an image)."""
    return f"[{alt}]({uri})"
