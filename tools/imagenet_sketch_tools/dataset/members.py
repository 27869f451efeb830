"""What the readers list of an archive: its images, and where each one's bytes lie."""

from __future__ import annotations

from typing import NamedTuple

from imagenet_sketch_tools.dataset.classes import label_of_wnid


# Named tuples, not dataclasses: the release lists 50,889 members, and a frozen dataclass costs ~3 us to make
# where a named tuple costs well under one (0.16 s against 0.03 s of the listing, on the path to streaming's
# first example).
class ZipEntry(NamedTuple):
    """Where a member's bytes lie in the zip: its local header offset and the offset where the next begins."""

    offset: int
    end: int
    compress_type: int
    compress_size: int
    file_size: int
    crc: int


class Member(NamedTuple):
    """One image: `path` is `<wnid>/<file name>`, the name it is stored under."""

    path: str
    wnid: str
    where: ZipEntry | str  # a ZipEntry in a zip, a file path in a folder
    source_name: str

    @property
    def label(self) -> int:
        return label_of_wnid()[self.wnid]


def entry(member: Member) -> ZipEntry:
    """A zip member's place in the zip (a folder's members have a path instead, and never come here)."""
    where = member.where
    assert not isinstance(where, str), "a folder member has no place in a zip"
    return where
