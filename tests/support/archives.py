"""Archives in the release layout, made at test time."""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import datasets

import imagenet_sketch
from imagenet_sketch_tools.dataset.sample import sketch_jpeg


def write_zip(path: Path, members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """A zip with exactly these members, in this order (unlike the packager, which sorts)."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return path


def class_members(wnids: list[str], per_class: int = 3, top: str = "sketch") -> list[tuple[str, bytes]]:
    """`per_class` small sketches per wnid, named like the release."""
    return [
        (
            f"{top}/{wnid}/sketch_{n}.JPEG",
            sketch_jpeg(seed=i * 100 + n, mode="RGB" if n % 2 else "L", size=(48, 40)),
        )
        for i, wnid in enumerate(wnids)
        for n in range(per_class)
    ]


def stored_rows(source: str | Path, cache: Path) -> list[dict[str, Any]]:
    """The rows the builder prepares from `source`, in order, images as stored: `{"bytes", "path"}`, not decoded."""
    builder = imagenet_sketch.ImagenetSketch(source=str(source), cache_dir=str(cache))
    builder.download_and_prepare()
    dataset = builder.as_dataset("train")
    assert isinstance(dataset, datasets.Dataset)
    return dataset.cast_column("image", datasets.Image(decode=False)).to_list()


class Unseekable:
    """A file zipfile cannot seek back in, so it writes each member's sizes and CRC in a data descriptor after
    its data, as streaming tools (`zip -` to a pipe, many writers) do."""

    def __init__(self, file):
        self.file = file

    def write(self, data: bytes) -> int:
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        pass  # the file is the caller's to close


def write_zip_as(
    path: Path,
    members: list[tuple[str, bytes]],
    compression: int = zipfile.ZIP_DEFLATED,
    *,
    force_zip64: bool = False,
    descriptors: bool = False,
    holes: dict[int, int] | None = None,
) -> Path:
    """Like write_zip, with ZIP64 extra fields on every member, data descriptors, and/or `holes`: {index: n}
    leaves n unclaimed bytes (sparse, so free on disk) before member `index`, as an edited or hostile zip has."""
    with open(path, "wb") as file, zipfile.ZipFile(Unseekable(file) if descriptors else file, "w", compression) as zf:
        for index, (name, content) in enumerate(members):
            # zipfile writes the next member at start_dir: moving it on leaves a hole (seekable files only)
            zf.start_dir += (holes or {}).get(index, 0)
            with zf.open(name, "w", force_zip64=force_zip64) as member:
                member.write(content)
    return path


# --- crafted archives: what a hostile zip looks like, written byte by byte (zipfile refuses to write them) ---

LOCAL = struct.Struct("<4s5H3L2H")
CENTRAL = struct.Struct("<4s6H3L5H2L")
END = struct.Struct("<4s4H2LH")


class Stream(NamedTuple):
    """One member's stored bytes, as a local header announces them."""

    data: bytes
    method: int
    size: int
    crc: int


def deflated_stream(content: bytes) -> Stream:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return Stream(
        compressor.compress(content) + compressor.flush(), zipfile.ZIP_DEFLATED, len(content), zlib.crc32(content)
    )


def stored_stream(content: bytes) -> Stream:
    return Stream(content, zipfile.ZIP_STORED, len(content), zlib.crc32(content))


def local_record(name: str, stream: Stream) -> bytes:
    encoded = name.encode()
    fields = (b"PK\x03\x04", 20, 0, stream.method, 0, 0x21, stream.crc, len(stream.data), stream.size, len(encoded), 0)
    return LOCAL.pack(*fields) + encoded + stream.data


class Listed(NamedTuple):
    """A central directory entry of a crafted zip: it claims the bytes of `streams[stream]` moved on by `shift`,
    and describes them as that stream (or as `described`, for an entry pointing inside another's bytes)."""

    name: str
    stream: int
    shift: int = 0
    described: Stream | None = None


def crafted_zip(path: Path, streams: list[Stream], entries: list[Listed]) -> Path:
    """A zip whose local records are `streams` (each named after the first entry claiming it) and whose central
    directory lists `entries`. Entries sharing a stream overlap; a shifted one points inside another's bytes."""
    body, offsets = bytearray(), []
    names = {entry.stream: entry.name for entry in reversed(entries)}
    for index, stream in enumerate(streams):
        offsets.append(len(body))
        body += local_record(names.get(index, f"unused_{index}"), stream)
    directory = bytearray()
    for entry in entries:
        stream, encoded = entry.described or streams[entry.stream], entry.name.encode()
        sizes = (stream.method, 0, 0x21, stream.crc, len(stream.data), stream.size, len(encoded))
        place = (0, 0, 0, 0, 0o644 << 16, offsets[entry.stream] + entry.shift)
        directory += CENTRAL.pack(b"PK\x01\x02", 20, 20, 0, *sizes, *place) + encoded
    end = END.pack(b"PK\x05\x06", 0, 0, len(entries), len(entries), len(directory), len(body), 0)
    path.write_bytes(bytes(body + directory + end))
    return path
