"""A zip's central directory read in one pass, for the common case; anything unusual is left to `zipfile`.

The release's directory lists 50,889 members. `zipfile.ZipFile` builds a full `ZipInfo` per member (extra
fields decoded, times, attributes): ~0.4 s of CPU before streaming's first example. Reading only the six
fields the archive reader needs takes a third of that. Where the directory is not the plain kind (a prefix
before the zip, several disks, an entry that does not parse), `read_directory` returns None and the caller
uses `zipfile`, which also words the errors of a damaged file.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

END = struct.Struct("<4s4H2LH")  # end of central directory record
ZIP64_LOCATOR = struct.Struct("<4sLQL")
ZIP64_END = struct.Struct("<4sQ2H2L4Q")
CENTRAL = struct.Struct("<4s6H3L5HLL")  # central directory file header, 46 bytes
UTF8_FLAG = 0x800
ZIP64_EXTRA = 0x0001
FULL_32, FULL_16 = 0xFFFFFFFF, 0xFFFF
TAIL = (1 << 16) + END.size  # the end record, after a comment of at most 64 KiB


class Entry(NamedTuple):
    """What the reader needs of a member, under `zipfile.ZipInfo`'s names."""

    filename: str
    header_offset: int
    compress_type: int
    compress_size: int
    file_size: int
    CRC: int


class Directory(NamedTuple):
    entries: list[Entry]
    start_dir: int  # where the central directory begins: the end of the last member's bytes


def read_directory(file) -> Directory | None:
    """The directory of the zip in the seekable binary `file`, or None where `zipfile` should read it."""
    size = file.seek(0, 2)
    tail_start = max(0, size - END.size)  # an end record with no comment: the usual case, and the least read
    file.seek(tail_start)
    tail = file.read(size - tail_start)
    if not tail.startswith(b"PK\x05\x06"):
        tail_start = max(0, size - TAIL)
        file.seek(tail_start)
        tail = file.read(size - tail_start)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < END.size:
        return None
    _, disk, disk_of_directory, _, count, directory_size, directory_offset, comment = END.unpack_from(tail, at)
    if disk or disk_of_directory or at + END.size + comment != len(tail):
        return None
    end_at = tail_start + at
    # A ZIP64 end record may stand before the end record even when no field overflowed (zipfile writes one past
    # 2 GiB of offsets): as zipfile does, take it whenever its locator is there.
    zip64 = _zip64_end(file, tail, at, tail_start)
    if zip64 is not None:
        count, directory_size, directory_offset, end_at = zip64
    elif count == FULL_16 or FULL_32 in (directory_size, directory_offset):
        return None
    if directory_offset + directory_size != end_at:  # bytes prepended to the zip (zipfile's "concat")
        return None
    file.seek(directory_offset)
    entries = _entries(file.read(directory_size), count)
    return None if entries is None else Directory(entries, directory_offset)


def _zip64_end(file, tail: bytes, at: int, tail_start: int) -> tuple[int, int, int, int] | None:
    """(count, directory size, directory offset, where the ZIP64 end record begins), or None."""
    locator_at = at - ZIP64_LOCATOR.size
    if locator_at < 0:  # the locator lies before the bytes read so far
        file.seek(tail_start + locator_at)
        tail, at, tail_start = file.read(ZIP64_LOCATOR.size) + tail, at + ZIP64_LOCATOR.size, tail_start + locator_at
        locator_at = 0
    if tail[locator_at : locator_at + 4] != b"PK\x06\x07":
        return None
    _, _, end_offset, _ = ZIP64_LOCATOR.unpack_from(tail, locator_at)
    file.seek(end_offset)
    record = file.read(ZIP64_END.size)
    if len(record) < ZIP64_END.size or record[:4] != b"PK\x06\x06":
        return None
    _, _, _, _, disk, disk_of_directory, _, count, directory_size, directory_offset = ZIP64_END.unpack(record)
    if disk or disk_of_directory:
        return None
    return count, directory_size, directory_offset, end_offset


def _entries(directory: bytes, count: int) -> list[Entry] | None:
    entries = []
    at, unpack = 0, CENTRAL.unpack_from
    for _ in range(count):
        if directory[at : at + 4] != b"PK\x01\x02" or at + CENTRAL.size > len(directory):
            return None
        fields = unpack(directory, at)
        flags, method, crc, compressed, size = fields[3], fields[4], fields[7], fields[8], fields[9]
        name_length, extra_length, comment_length, disk, offset = (
            fields[10],
            fields[11],
            fields[12],
            fields[13],
            fields[16],
        )
        name_at = at + CENTRAL.size
        raw_name = directory[name_at : name_at + name_length]
        name = raw_name.decode("utf-8" if flags & UTF8_FLAG else "cp437")
        name = name.split("\0", 1)[0]  # as zipfile: a name ends at a NUL
        if FULL_32 in (compressed, size, offset) or disk == FULL_16:
            extra = directory[name_at + name_length : name_at + name_length + extra_length]
            widened = _zip64_sizes(extra, size, compressed, offset)
            if widened is None:
                return None
            size, compressed, offset = widened
        entries.append(Entry(name, offset, method, compressed, size, crc))
        at = name_at + name_length + extra_length + comment_length
    return entries if at == len(directory) else None


def _zip64_sizes(extra: bytes, size: int, compressed: int, offset: int) -> tuple[int, int, int] | None:
    """(size, compressed size, offset) with the 64-bit values of the ZIP64 extra field for the fields that
    overflowed, in the order the spec gives; None if the field is missing or short."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<2H", extra, at)
        if kind == ZIP64_EXTRA:
            values = list(struct.unpack_from(f"<{length // 8}Q", extra, at + 4))
            try:
                size = values.pop(0) if size == FULL_32 else size
                compressed = values.pop(0) if compressed == FULL_32 else compressed
                offset = values.pop(0) if offset == FULL_32 else offset
            except IndexError:
                return None
            return size, compressed, offset
        at += 4 + length
    return None
