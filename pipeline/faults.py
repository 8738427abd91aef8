"""Fault injection: kill this process at a named point, to test that hops survive a crash.

``CRAWL2DIFFUSION_FAULT="kill:<point>:<n>"`` (several joined by commas) makes the n-th arrival
at ``<point>`` send SIGKILL to the process itself, as the OOM killer or a preempted node would:
no ``finally``, no atexit, no flush. Unset, :func:`maybe_kill` is one environment lookup.

Kill points (:data:`KILL_POINTS`):

- ``clip.embedded``: hop 3 has embedded one more image (the slice is not yet published).
- ``train.step``: training has finished one more optimizer step (checkpoints only every
  ``checkpoint_every`` steps, so most arrivals fall between two checkpoints).

- ``download.batch``: img2dataset has written one more batch's shards (its results are not
  yet read back, so nothing is published).
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

ENV = "CRAWL2DIFFUSION_FAULT"
KILL_POINTS = frozenset({"clip.embedded", "download.batch", "train.step"})

_arrivals: Counter[str] = Counter()
_lock = threading.Lock()


def parse(spec: str) -> dict[str, int]:
    """``"kill:<point>:<n>[,...]"`` -> {point: n}; a malformed spec or unknown point raises."""
    faults: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        parts = item.split(":")
        if (
            len(parts) != 3
            or parts[0] != "kill"
            or parts[1] not in KILL_POINTS
            or not (parts[2].isdigit() and int(parts[2]) >= 1)
        ):
            raise ValueError(
                f"{ENV}={spec!r}: expected kill:<point>:<n> with n >= 1 and point one of "
                f"{sorted(KILL_POINTS)}"
            )
        faults[parts[1]] = int(parts[2])
    return faults


def maybe_kill(point: str, count: int = 1) -> None:
    """Record ``count`` arrivals at ``point``; SIGKILL this process once they reach the n the
    fault names. A no-op when :data:`ENV` is unset."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    limit = parse(spec).get(point)
    if limit is None:
        return
    with _lock:
        _arrivals[point] += count
        reached = _arrivals[point] >= limit
    if reached:
        kill = getattr(signal, "SIGKILL", None)
        if kill is None:  # no SIGKILL (Windows): exit at once, as a killed process would
            os._exit(137)
        os.kill(os.getpid(), kill)
