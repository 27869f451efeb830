"""Which bytes of a zip are read for a class's members, and which are kept for the classes after it.

A class's members are read in offset order, neighbours in one read (closer than MAX_GAP, at most MAX_READ long).
In a zip whose classes are interleaved, those reads cover the members of the following classes as well: read
again for each class, 100 classes of a 400 MB interleaved zip cost 40 GB of reads (and a remote one a range
request per class over the whole file). So the members of the next classes that a read covers are kept,
compressed, for as many classes as fit in MAX_KEPT together, and handed out when their class is read: each byte
is read about once, as in a zip whose classes are grouped, which has nothing in its reads to keep and never
looks at the directory for it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from itertools import islice
from typing import Protocol

import numpy as np

from imagenet_sketch_tools.dataset.members import Member, entry

# Members closer than this are fetched in one read rather than two.
MAX_GAP = 1 << 20
# No single read is longer than this (unless one member alone is): memory follows this cap, not the zip's layout.
MAX_READ = 64 << 20
# The compressed members of later classes kept from reads made for an earlier one.
MAX_KEPT = 128 << 20


def runs(members: list[Member]) -> Iterator[list[Member]]:
    """Members (sorted by offset) in runs read at once: neighbours closer than MAX_GAP, spanning at most MAX_READ."""
    run: list[Member] = []
    for member in members:
        if run and (
            entry(member).offset - entry(run[-1]).end > MAX_GAP or entry(member).end - entry(run[0]).offset > MAX_READ
        ):
            yield run
            run = []
        run.append(member)
    if run:
        yield run


class Reader(Protocol):
    def read_span(self, start: int, end: int) -> bytes: ...
    def members(self) -> list[Member]: ...


class Spans:
    """Reads a zip's members by runs, keeping the later classes' members those reads cover.

    It holds data only, never its reader (given per call): no cycle keeps a closed reader and its lists alive.
    """

    def __init__(self):
        self._by_offset: list[Member] | None = None
        self._offsets: list[int] = []
        self._wnids: list[str] = []  # the zip's classes, in order
        self._class_bytes: dict[str, int] = {}  # a class's members' bytes in the zip, headers included
        self._kept: dict[str, dict[int, np.ndarray]] = {}  # wnid -> offset -> the member's bytes from its header

    def know(self, members: list[Member]) -> None:
        """Take the zip's image members as its layout (what `reader.members()` gives)."""
        self._by_offset = sorted(members, key=lambda member: entry(member).offset)
        self._offsets = [entry(member).offset for member in self._by_offset]
        self._class_bytes = {}
        for member in self._by_offset:
            self._class_bytes[member.wnid] = self._class_bytes.get(member.wnid, 0) + _length(member)
        self._wnids = sorted(self._class_bytes)

    def raw(self, members: list[Member], reader: Reader) -> Iterator[tuple[Member, np.ndarray, int]]:
        """Each member with bytes holding it from its local header on, and the zip offset those bytes start at,
        read through `reader.read_span(start, end)`. `reader.members()` lists every image member of the zip: it is
        asked once, the first time a read holds other classes, unless `know` was told already."""
        if not members:
            return
        wnids = {member.wnid for member in members}
        # Classes are read in order: kept members of a class before these will never be asked for.
        for passed in [wnid for wnid in self._kept if wnid < min(wnids)]:
            del self._kept[passed]
        kept = {offset: blob for wnid in wnids for offset, blob in self._kept.pop(wnid, {}).items()}
        pending = []
        for member in sorted(members, key=lambda member: entry(member).offset):
            blob = kept.get(entry(member).offset)
            if blob is None:
                pending.append(member)
            else:
                yield member, blob, entry(member).offset
        window: set[str] | None = None
        for run in runs(pending):
            start, end = entry(run[0]).offset, max(entry(member).end for member in run)
            if _holds_others(run, end - start):
                window = self._window(max(wnids), reader) if window is None else window
                end = self._extended(start, end, window)
            blob = np.frombuffer(reader.read_span(start, end), np.uint8)
            if window:
                self._keep(blob, start, window)
            for member in run:
                yield member, blob, start
            del blob  # one span in memory at a time: freed before the next is read

    def _window(self, after: str, reader: Reader) -> set[str]:
        """The classes right after `after` whose members fit in MAX_KEPT together."""
        if self._by_offset is None:
            self.know(reader.members())
        window, room = set(), MAX_KEPT
        for wnid in self._wnids[bisect.bisect_right(self._wnids, after) :]:
            room -= self._class_bytes[wnid]
            if room < 0:
                break
            window.add(wnid)
        return window

    def _extended(self, start: int, end: int, window: set[str]) -> int:
        """`end` moved past the `window` classes' members that follow it closely: the last turn of an
        interleaved zip holds the last member of every class, each else fetched on its own."""
        for member in islice(self._by_offset or [], bisect.bisect_left(self._offsets, end), None):
            where = entry(member)
            if member.wnid not in window or where.offset - end > MAX_GAP or where.end - start > MAX_READ:
                break
            end = where.end
        return end

    def _keep(self, blob: np.ndarray, start: int, window: set[str]) -> None:
        """Copy out the members of the `window` classes that `blob` (read from `start`) holds whole."""
        if not window or self._by_offset is None:
            return
        end = start + blob.size
        for member in islice(self._by_offset, bisect.bisect_left(self._offsets, start), None):
            where = entry(member)
            if where.offset >= end:
                break
            if member.wnid in window and where.end <= end:
                self._kept.setdefault(member.wnid, {})[where.offset] = blob[
                    where.offset - start : where.end - start
                ].copy()


def _length(member: Member) -> int:
    return entry(member).end - entry(member).offset


def _holds_others(run: list[Member], span: int) -> bool:
    """Whether a run's read is mostly other members' bytes (interleaved classes), not just folder entries."""
    own = sum(_length(member) for member in run)
    return (span - own) * 4 > own
