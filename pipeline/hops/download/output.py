"""img2dataset's console output (its own prints, tqdm bars, its worker processes') as lines
for a logger, so it lands in the run's log instead of the terminal."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing import resource_tracker

HELD_OPEN = "output capture still held open by a child process"


@contextmanager
def output_to(log: Callable[[str], None], timeout_s: float = 30.0) -> Iterator[None]:
    """Capture what this process and the children it starts write to stdout and stderr (file
    descriptors 1 and 2), and hand it to ``log`` a line at a time when the block ends (a
    logger that writes to stderr must not run while stderr is the capture)."""
    # multiprocessing's resource tracker lives as long as this process: started inside the
    # capture, it would hold the pipe open and every first download would wait ``timeout_s``
    resource_tracker.ensure_running()
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    saved = (os.dup(1), os.dup(2))
    lines: list[str] = []

    def pump() -> None:
        with os.fdopen(read_fd, "rb") as pipe:
            for raw in pipe:
                for piece in raw.replace(b"\r", b"\n").split(b"\n"):
                    text = piece.decode(errors="replace").strip()
                    if text and (not lines or lines[-1] != text):
                        lines.append(text)

    reader = threading.Thread(target=pump, name="img2dataset-output", daemon=True)
    reader.start()
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    streams = sys.stdout, sys.stderr  # may not write to fd 1/2 (e.g. under pytest)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    try:
        yield
    finally:
        sys.stdout.close()
        sys.stderr.close()
        sys.stdout, sys.stderr = streams
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        reader.join(timeout_s)  # EOF once every child holding the pipe has exited
        for line in list(lines):
            log(line)
        if reader.is_alive():
            log(f"{HELD_OPEN} after {timeout_s:.0f} s: later output is lost")
