"""Dropping known noise from a file descriptor that a library's C++ code writes to directly, where Python's
logging cannot reach it (Ray's core worker logs to the process's stderr)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

CHUNK = 65536


@contextmanager
def dropping_lines(markers: tuple[str, ...], fd: int = 2) -> Iterator[None]:
    """Within the block, lines written to `fd` that contain every one of `markers` are dropped; everything else
    is passed on as it arrives (a progress bar's carriage returns included, so it stays live). A line is judged
    within the write that carries it: C++ loggers write a line in one call."""
    if not hasattr(os, "pipe"):
        yield
        return
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    original = os.dup(fd)
    os.dup2(write_end, fd)
    os.close(write_end)
    wanted = [marker.encode() for marker in markers]

    def forward() -> None:
        while chunk := os.read(read_end, CHUNK):
            kept = [line for line in chunk.splitlines(keepends=True) if not all(m in line for m in wanted)]
            if kept:
                os.write(original, b"".join(kept))

    thread = threading.Thread(target=forward, name="dropping-lines", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, fd)  # closes the pipe's last write end: the thread reads its end and stops
        thread.join()
        os.close(read_end)
        os.close(original)
