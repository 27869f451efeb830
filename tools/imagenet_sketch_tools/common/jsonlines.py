"""Append-only JSON-lines files (the pipeline's manifest, review's analysis cache): one object per line, added at
the end, never rewritten, so a crash loses at most the line being written.

A crash can leave that last line cut short. Readers skip it; before the next append it is cut off, since the
line after it would otherwise be glued onto it, leaving invalid JSON in the middle of the file for every later
run. Cutting it loses nothing acknowledged: a durable append returns only once its whole line is on disk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from imagenet_sketch_tools.common.errors import UserError

TAIL_CHUNK = 1 << 16


class JsonLines:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def rows(self) -> Iterator[dict]:
        """Every complete line's object, in order; an unterminated last line (a write cut short) is skipped."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as file:
            for number, line in enumerate(file, start=1):
                if line.endswith("\n"):
                    yield self._parse(line, number)

    def append(self, row: dict) -> None:
        """Add one row and make it durable before returning."""
        with self._open_for_append() as file:
            file.write(_line(row))
            file.flush()
            os.fsync(file.fileno())

    @contextmanager
    def appending(self) -> Iterator[Callable[[dict], None]]:
        """A function adding rows, each written when given but made durable only at the end (for a cache)."""
        with self._open_for_append() as file:

            def add(row: dict) -> None:
                file.write(_line(row))

            yield add
            file.flush()
            os.fsync(file.fileno())

    def _open_for_append(self) -> BinaryIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "a+b")
        try:
            _drop_unterminated_tail(file)
        except BaseException:
            file.close()
            raise
        return file

    def _parse(self, line: str, number: int) -> dict:
        try:
            return json.loads(line)
        except json.JSONDecodeError as error:
            # Only a file damaged before fragments were cut off (or edited by hand) gets here.
            raise UserError(
                f"line {number} of '{self.path}' is not JSON ({error.msg}); fix or delete that line and run again"
            ) from None


def _line(row: dict) -> bytes:
    return (json.dumps(row, sort_keys=True) + "\n").encode("utf-8")


def _drop_unterminated_tail(file: BinaryIO) -> None:
    """Truncate `file` to the end of its last complete line (it is opened for appending, so writes follow)."""
    end = file.seek(0, os.SEEK_END)
    if end == 0:
        return
    file.seek(end - 1)
    if file.read(1) == b"\n":  # the common case: one byte read per append
        return
    position = end
    while position > 0:
        start = max(0, position - TAIL_CHUNK)
        file.seek(start)
        newline = file.read(position - start).rfind(b"\n")
        if newline >= 0:
            file.truncate(start + newline + 1)
            return
        position = start
    file.truncate(0)
