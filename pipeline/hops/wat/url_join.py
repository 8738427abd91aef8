"""Resolve image references against their page's base URL, a batch at a time, as ``urljoin``.

``urljoin`` costs microseconds a call, and a WAT file has hundreds of thousands of image
references. Most are in one of four plain forms, ``path``, ``../path`` (any number of
``../``), ``/path`` or ``//host/path``, for which ``urljoin(base, form + tail)`` is a
prefix that depends only on the base and the form, followed by ``tail``. :func:`resolve_urls`
finds those rows with Arrow string kernels, takes the prefix once per (page, form) (cut
from a simple http(s) base, else from a ``urljoin`` probe ``form + "x"``), and joins prefix
and tail in Arrow. Absolute http(s)
references are kept; every other reference goes to ``urljoin`` itself. The result equals
``urljoin`` row for row (``tests/test_wat.py`` fuzzes it), except that an empty reference
stays empty: ``urljoin`` would answer the page URL, which is not an image.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_FORM_TAIL = r"(?s)^(?P<form>//|/|(?:\.\./)+|)(?P<tail>.*)$"
"""Split a reference into its form and the rest (``../`` runs greedily)."""

_PLAIN_START = r"^[^\x00-\x20?#./]"
_PLAIN_BAD = r"[:;\t\n\r]|/\.|//|\?#|[?#]$"
"""A tail is plain (``urljoin`` appends it verbatim to the form's prefix) when it starts
with neither a character ``urlsplit`` strips nor one of ``?#./``, and has no scheme or
params separator, no dot or empty segment, no empty query or fragment."""

_NETLOC_BAD = r"^//[/?#]|[?#]$|\?#|[\[\];\t\n\r]|[^\x00-\x7f]"
"""``//host...`` that ``urljoin`` would not return as ``scheme:`` + reference."""

_OTHER_SCHEME = r"^(?:data|javascript|mailto):"


def join_url(base: str, ref: str) -> str:
    """``urljoin(base, ref)``, or ``ref`` when ``urljoin`` rejects the pair."""
    if ref.startswith(("http://", "https://")):
        return ref
    try:
        return urljoin(base, ref)
    except ValueError:
        return ref


def _form(length: int) -> str:
    """The form whose string has this length: ``""``, ``/``, ``//`` or ``../`` repeated."""
    return {0: "", 1: "/", 2: "//"}.get(length) or "../" * (length // 3)


_SIMPLE_BASE = re.compile(
    r"(https?)(://[A-Za-z0-9.-]+(?::[0-9]*)?)(/[\w.~%!$&'()*+,=:@/-]*)?(?:[?#].*)?", re.S | re.A
)
"""An http(s) base without userinfo, params, or empty, ``.`` or ``..`` path segments (checked
apart): ``urljoin`` then only cuts its path at a ``/`` (``tests/test_wat.py`` fuzzes this)."""


def _prefix(base: str, form: str) -> str | None:
    """``urljoin(base, form + tail)`` without the plain ``tail``, or None if it is not that."""
    simple = _SIMPLE_BASE.fullmatch(base)
    path = simple and (simple[3] or "")
    if simple and "//" not in path and "/./" not in path + "/" and "/../" not in path + "/":
        if form == "//":
            return simple[1] + "://"
        directory = path[: path.rfind("/") + 1] or "/"
        if form:
            segments = directory.strip("/").split("/") if directory != "/" else []
            up = len(form) // 3 if form.startswith("..") else len(segments)
            directory = "/" + "".join(s + "/" for s in segments[: max(len(segments) - up, 0)])
        return simple[1] + simple[2] + directory
    joined = join_url(base, form + "x")  # the probe
    return joined[:-1] if joined.endswith("x") else None


def resolve_urls(refs: pa.Array, page: np.ndarray, bases: list[str]) -> pa.Array:
    """``join_url(bases[page[i]], refs[i])`` for every row (``""`` for an empty reference).

    ``refs`` is a string array without nulls; ``page`` gives each row's index into ``bases``.
    """
    if len(refs) == 0:
        return pa.array([], pa.string())
    page = np.asarray(page, dtype=np.int64)
    length = pc.utf8_length(refs).to_numpy(zero_copy_only=False)
    keep = (length == 0) | _flags(pc.starts_with(refs, "http://"))
    keep |= _flags(pc.starts_with(refs, "https://"))
    root = _flags(pc.starts_with(refs, "/"))
    netloc = root & _flags(pc.starts_with(refs, "//"))
    dotdot = _flags(pc.starts_with(refs, "../"))
    joined: list[tuple[np.ndarray, pa.Array]] = []

    def join_form(rows: np.ndarray, form_length: Any, tail: pa.Array, ok: np.ndarray) -> None:
        """Join prefix and tail for the ``ok`` rows whose (page, form) has a prefix."""
        rows, form_length = rows[ok], np.broadcast_to(form_length, ok.shape)[ok]
        if not len(rows):
            return
        stride = int(form_length.max()) + 1
        keys, inverse = np.unique(page[rows] * stride + form_length, return_inverse=True)
        prefixes = [_prefix(bases[k // stride], _form(k % stride)) for k in keys.tolist()]
        found = np.array([p is not None for p in prefixes], dtype=bool)[inverse]
        prefix = pa.array(prefixes, pa.string()).take(pa.array(inverse[found]))
        joined_tail = tail.filter(pa.array(ok)).filter(pa.array(found))
        joined.append((rows[found], pc.binary_join_element_wise(prefix, joined_tail, "")))
        keep[rows[found]] = True

    rows = np.flatnonzero(~keep & ~root & ~dotdot)  # path
    tail = refs.take(pa.array(rows))
    join_form(rows, 0, tail, _plain(tail))
    rows = np.flatnonzero(~keep & root & ~netloc)  # /path
    tail = pc.utf8_slice_codeunits(refs.take(pa.array(rows)), 1)
    join_form(rows, 1, tail, _plain(tail))
    rows = np.flatnonzero(~keep & netloc)  # //host/path
    whole = refs.take(pa.array(rows))
    plain_netloc = (length[rows] > 2) & ~_flags(pc.match_substring_regex(whole, _NETLOC_BAD))
    join_form(rows, 2, pc.utf8_slice_codeunits(whole, 2), plain_netloc)
    rows = np.flatnonzero(~keep & dotdot)  # ../path, ../../path, ...
    split = pc.extract_regex(refs.take(pa.array(rows)), _FORM_TAIL)
    form_length = pc.utf8_length(split.field("form")).to_numpy(zero_copy_only=False)
    join_form(rows, form_length, split.field("tail"), _plain(split.field("tail")))
    http_base = np.array([b.startswith(("http://", "https://")) for b in bases], dtype=bool)
    rest = np.flatnonzero(~keep)  # what is left: a few rows, other schemes among them
    left = refs.take(pa.array(rest))
    to_join = ~(_flags(pc.match_substring_regex(left, _OTHER_SCHEME)) & http_base[page[rest]])
    rest, left = rest[to_join], left.filter(pa.array(to_join))
    if len(rest):
        pairs = zip(page[rest].tolist(), left.to_pylist(), strict=True)
        joined.append((rest, pa.array([join_url(bases[p], r) for p, r in pairs], pa.string())))
    return _with_rows_replaced(refs, joined)


def _with_rows_replaced(
    values: pa.Array, replacements: list[tuple[np.ndarray, pa.Array]]
) -> pa.Array:
    """``values`` with each ``(rows, new)`` written in, by one concatenation and one take."""
    if not replacements:
        return values
    index = np.arange(len(values))
    offset = len(values)
    for rows, new in replacements:
        index[rows] = np.arange(offset, offset + len(new))
        offset += len(new)
    pieces = [values] + [new for _, new in replacements]
    return pa.concat_arrays(pieces).take(pa.array(index))


def _plain(tail: pa.Array) -> np.ndarray:
    """Which tails are plain (see :data:`_PLAIN_BAD`)."""
    return _flags(pc.match_substring_regex(tail, _PLAIN_START)) & ~_flags(
        pc.match_substring_regex(tail, _PLAIN_BAD)
    )


def _flags(mask: pa.Array) -> np.ndarray:
    return mask.to_numpy(zero_copy_only=False)


def replace_rows(values: pa.Array, rows: np.ndarray, replacements: pa.Array) -> pa.Array:
    """A copy of ``values`` with ``values[rows] = replacements`` (``rows`` ascending)."""
    mask = np.zeros(len(values), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(values, pa.array(mask), replacements)
