"""How much a zip may claim before anything is inflated: what a zip bomb is refused by.

Everything here is checked against the central directory alone, so a hostile archive is refused before a
buffer is allocated or a byte inflated:
- members must not overlap: a stream shared by many entries (or one member nested in another's bytes) is how
  a 30 KB zip claims gigabytes without any single member looking odd;
- no member announces more than MAX_MEMBER_SIZE, or (past RATIO_FLOOR) more than MAX_MEMBER_RATIO times its
  compressed size: JPEG and PNG barely deflate;
- the images together announce at most `inflated_limit(archive size)`: MAX_RATIO times the archive's size
  (at least RATIO_FLOOR_TOTAL), and never more than the ceiling. The release inflates 7.59 GB to 8.4 GB (1.1x),
  well inside the defaults (4x, 32 GB). Both can be raised for an archive one trusts, through the environment
  variables below (read when an archive is opened, so they reach the builder's worker processes too).
Inflation itself is held to each member's announced size (`inflate.Inflater`), so what these allow is all
that can ever be allocated.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol

from imagenet_sketch_tools.common.errors import UserError

# No image is this large; a member announcing more is corrupt or a bomb.
MAX_MEMBER_SIZE = 256 << 20
# Past this size, a member deflating more than this ratio is no JPEG or PNG.
MAX_MEMBER_RATIO = 100
RATIO_FLOOR = 1 << 20
# The whole archive: announced image bytes per archive byte, and an absolute ceiling (both overridable).
RATIO_VARIABLE = "IMAGENET_SKETCH_MAX_RATIO"
CEILING_VARIABLE = "IMAGENET_SKETCH_MAX_INFLATED_GB"
DEFAULT_RATIO = 4.0
DEFAULT_CEILING_GB = 32.0
# Any archive may announce this much, whatever its ratio: small test and sample zips of plain images deflate well.
RATIO_FLOOR_TOTAL = 64 << 20
# A local header's fixed part; its name follows it.
LOCAL_HEADER_SIZE = 30


class Listed(Protocol):
    """A central directory entry, as `zipdir.Entry` and `zipfile.ZipInfo` both give it."""

    @property
    def filename(self) -> str: ...
    @property
    def header_offset(self) -> int: ...
    @property
    def compress_size(self) -> int: ...
    @property
    def file_size(self) -> int: ...


def _setting(variable: str, default: float) -> float:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UserError(f"{variable}={raw!r} is not a positive number; unset it or give e.g. {default:g}")
    return value


def inflated_limit(archive_size: int) -> int:
    """The most image bytes an archive of `archive_size` bytes may announce."""
    ratio = _setting(RATIO_VARIABLE, DEFAULT_RATIO)
    ceiling = _setting(CEILING_VARIABLE, DEFAULT_CEILING_GB) * 1e9
    return int(min(ceiling, max(RATIO_FLOOR_TOTAL, ratio * archive_size)))


def check_member(entry: Listed, location: str) -> None:
    """Refuse a member whose announced sizes no image has, before a buffer of that size is allocated."""
    size, compressed = entry.file_size, entry.compress_size
    if max(size, compressed) > MAX_MEMBER_SIZE or size > max(RATIO_FLOOR, MAX_MEMBER_RATIO * compressed):
        raise UserError(
            f"member '{entry.filename}' of '{location}' announces {size:,} bytes from {compressed:,} compressed, "
            "which no image has; the archive is corrupt or hostile: get it again from a trusted source"
        )


def check_total(announced: int, archive_size: int, location: str) -> None:
    """Refuse an archive whose images together announce more than `inflated_limit` allows."""
    limit = inflated_limit(archive_size)
    if announced > limit:
        raise UserError(
            f"the images of '{location}' announce {announced:,} bytes from a {archive_size:,}-byte archive, more "
            f"than the {limit:,} allowed; it is corrupt or a zip bomb. If you trust it, raise {RATIO_VARIABLE} "
            f"(default {DEFAULT_RATIO:g}, inflated bytes per archive byte) or {CEILING_VARIABLE} "
            f"(default {DEFAULT_CEILING_GB:g})"
        )


def check_disjoint(entries: Sequence[Listed], directory_start: int, location: str) -> None:
    """Refuse members (sorted by offset) whose bytes overlap one another or the central directory.

    Each member needs at least its local header, its name and its compressed data before the next begins; a
    stream claimed by several entries, or a member inside another's bytes, leaves less.
    """
    for entry, following in zip(entries, entries[1:]):
        if _least_end(entry) > following.header_offset:
            raise UserError(
                f"members '{entry.filename}' and '{following.filename}' of '{location}' overlap; the archive is "
                "corrupt or a zip bomb: get it again from a trusted source"
            )
    if entries and _least_end(entries[-1]) > directory_start:
        raise UserError(
            f"member '{entries[-1].filename}' of '{location}' runs into the central directory; the archive is "
            "corrupt or hostile: get it again from a trusted source"
        )


def _least_end(entry: Listed) -> int:
    # The name is counted in its shortest encoding (cp437, one byte a character): never more than it takes.
    return entry.header_offset + LOCAL_HEADER_SIZE + len(entry.filename) + entry.compress_size
