"""Each download's final status: img2dataset's, refined by the download rules.

- an error from the guard proxy that names ``private_host`` -> ``private_host``, or an
  opt-out (``opted_out:url|domain``) -> that;
- a resize error of the bomb guard -> ``decompression_bomb``;
- a success whose original bytes' sha256 is not the one hop 3 scored -> ``content_changed``
  (the sha256 of what was downloaded is kept; its tar member may exist but the row has no
  shard, so nothing reads it as a training example).
"""

from __future__ import annotations

from typing import Any

from pipeline.hops.download.bombs import BOMB
from pipeline.hops.download.guard import REFUSED
from pipeline.lake.tables import DOWNLOAD_CONTENT_CHANGED as CONTENT_CHANGED
from pipeline.lake.tables import DOWNLOAD_SUCCESS as SUCCESS

PRIVATE_HOST = "private_host"
DECOMPRESSION_BOMB = "decompression_bomb"
OPTED_OUT = ("opted_out:url", "opted_out:domain")


def refined_status(status: str, error: str | None) -> str:
    """img2dataset's status, or the rule that refused the download."""
    text = error or ""
    if status == "failed_to_download" and f"{REFUSED}: private_host" in text:
        return PRIVATE_HOST
    if status == "failed_to_download":
        for withdrawn in OPTED_OUT:
            if f"{REFUSED}: {withdrawn} " in text:
                return withdrawn
    if status == "failed_to_resize" and text.startswith(BOMB):
        return DECOMPRESSION_BOMB
    return status


def content_changed(row: dict[str, Any], scored: str | None) -> bool:
    """A success whose bytes are not those hop 3 scored (unknown ``scored``: not checked)."""
    return row["status"] == SUCCESS and scored is not None and row.get("sha256") != scored


def mark_changed(row: dict[str, Any], scored: str) -> dict[str, Any]:
    """The row as ``content_changed``: no shard, both hashes in the error message."""
    return {
        **row,
        "status": CONTENT_CHANGED,
        "shard": None,
        "error_message": f"downloaded sha256 {row.get('sha256')} is not the scored {scored}",
    }


def verified(row: dict[str, Any], scored: str | None) -> dict[str, Any]:
    """A fresh result row with its final status."""
    row = {**row, "status": refined_status(row["status"], row.get("error_message"))}
    return mark_changed(row, scored) if content_changed(row, scored) else row
