"""Random access to the images of an ImageNet-Sketch archive: a zip (local, http(s), hf://) or a folder.

A zip is read through its central directory: each class's members are fetched with one read of the byte
span they occupy and inflated in memory, so nothing is extracted and a remote zip costs one range request
per class instead of one directory scan per image (`spans.py`: which bytes are read, and kept for the next
classes when they are interleaved). What the directory announces is checked first (`limits.py`: zip bombs).
"""

from __future__ import annotations

import os
import pickle
import re
import stat
import struct
import zipfile
from collections.abc import Iterable, Iterator
from itertools import groupby

import fsspec
import numpy as np

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.dataset import limits
from imagenet_sketch_tools.dataset.classes import label_of_wnid
from imagenet_sketch_tools.dataset.inflate import InflateError, Inflater
from imagenet_sketch_tools.dataset.members import Member, ZipEntry, entry
from imagenet_sketch_tools.dataset.remote import TailFirst
from imagenet_sketch_tools.dataset.spans import Spans
from imagenet_sketch_tools.dataset.zipdir import Directory, read_directory

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")
SKIPPED_NAMES = {"Thumbs.db", "__MACOSX"}
LOCAL_HEADER = struct.Struct("<4s22xHH")
# A local header is at most this long: its fixed part, then a name and an extra field of up to 64 KiB each.
MAX_LOCAL_HEADER = LOCAL_HEADER.size + 2 * 0xFFFF


# The release's own form of a member name: checked by one match, it needs none of the general checks below
# (no separator, dot or drive letter can hide in it).
RELEASE_NAME = re.compile(r"(?:sketch/)?(n\d{8})/([A-Za-z0-9_-]+\.(?:JPEG|jpeg|jpg|JPG|png|PNG))")
LAST_NUMBER = re.compile(r"(\d+)\D*$")


def image_path(name: str) -> str | None:
    """`<wnid>/<file>` for an archive member name, None for what is not an image, UserError for the unsafe."""
    release_form = RELEASE_NAME.fullmatch(name)
    if release_form and release_form[1] in label_of_wnid():
        return f"{release_form[1]}/{release_form[2]}"
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise UserError(f"archive member '{name}' points outside the archive; refusing to read an unsafe archive")
    parts = [part for part in parts if part not in ("", ".")]
    if not parts or name.endswith("/"):
        return None
    if any(part.startswith(".") or part in SKIPPED_NAMES for part in parts):
        return None
    if not parts[-1].lower().endswith(IMAGE_EXTENSIONS):
        return None
    if len(parts) < 2:
        raise UserError(f"image '{name}' is not inside a class folder; expected sketch/<wnid>/<file>")
    wnid = parts[-2]
    if wnid not in label_of_wnid():
        raise UserError(
            f"folder '{wnid}' (in '{name}') is not one of the 1000 ImageNet-1k wnids; remove it or fix its name"
        )
    return f"{wnid}/{parts[-1]}"


def sort_key(path: str) -> tuple[str, int, str]:
    """By wnid, then by the number in the file name, so sketch_2 comes before sketch_10."""
    wnid, file_name = path.split("/")
    number = LAST_NUMBER.search(file_name)  # no image extension holds a digit: the stem's last number
    return wnid, int(number[1]) if number else -1, file_name


def is_remote(location: str) -> bool:
    return "://" in location


def open_archive(location: str) -> ZipArchive | FolderArchive:
    """The archive at `location`: a folder, or a zip given by path or URL."""
    if not is_remote(location):
        if os.path.isdir(location):
            return FolderArchive(location)
        if not os.path.exists(location):
            raise UserError(
                f"source '{location}' does not exist; give the path of ImageNet-Sketch.zip, "
                "its extracted folder, or a URL"
            )
        # A device or a FIFO never ends (/dev/zero) or blocks the open itself: refused before it is opened.
        if not stat.S_ISREG(os.stat(location).st_mode):
            raise UserError(
                f"source '{location}' is not a regular file or a folder (a device, a FIFO or a socket); give the "
                "path of ImageNet-Sketch.zip, its extracted folder, or a URL"
            )
    return ZipArchive(location)


def file_inside(path: str, root: str, shown: str) -> str:
    """`path` with its links resolved, if that is a file inside the (resolved) folder `root`.

    A link out of the folder (`n01440764/sketch_1.JPEG -> /etc/passwd`) would put a file the user never meant
    to share into the dataset: it is refused, naming `shown`, as is a dangling link.
    """
    real = os.path.realpath(path)
    if os.path.commonpath([real, root]) != root:
        raise UserError(
            f"'{shown}' is a link to '{real}', outside the folder '{root}'; refusing to read it: "
            "put the file itself in the folder, or remove the link"
        )
    if not os.path.exists(real):
        raise UserError(f"'{shown}' is a link to '{real}', which does not exist; remove it or fix it")
    return real


def by_class(members: Iterable[Member]) -> list[list[Member]]:
    """Members grouped per wnid, in order."""
    return [list(group) for _, group in groupby(members, key=lambda member: member.wnid)]


class ClassShard:
    """One class's members, as a shard of gen_kwargs.

    With num_proc > 1, datasets sends each worker its shards pickled by dill, whose pure-Python pickler
    takes ~90 us per Member (~4.5 s for the release's 50,889, before the second worker can start).
    Pickled here as one blob by the C pickler instead, they cost ~5 us each.
    """

    def __init__(self, members: list[Member]):
        self.members = members
        self.wnid = members[0].wnid

    def __reduce__(self):
        return _unpickle_shard, (pickle.dumps(self.members, protocol=pickle.HIGHEST_PROTOCOL),)


def _unpickle_shard(blob: bytes) -> ClassShard:
    return ClassShard(pickle.loads(blob))


class FolderArchive:
    """An extracted release: `<root>[/sketch]/<wnid>/<file>`."""

    def __init__(self, root: str):
        self.location = root

    def members(self) -> list[Member]:
        found = []
        root = os.path.realpath(self.location)
        for directory, subdirectories, files in os.walk(self.location):
            subdirectories.sort()
            for file_name in files:
                file_path = os.path.join(directory, file_name)
                relative = os.path.relpath(file_path, self.location).replace(os.sep, "/")
                path = image_path(relative)
                if path is not None:
                    real = file_inside(file_path, root, relative)
                    found.append(Member(path, path.split("/")[0], real, relative))
        return _refuse_duplicates(sorted(found, key=lambda member: sort_key(member.path)), self.location)

    def read(self, members: Iterable[Member]) -> Iterator[tuple[Member, bytes]]:
        for member in members:
            yield member, self._read_file(member)

    def _read_file(self, member: Member) -> bytes:
        # No link is followed at the last step: the path was resolved when listed, and must still be that file.
        # (A FIFO blocks this open until written to, as a stalled network mount would; Ctrl-C still ends it.)
        descriptor = os.open(_file_of(member), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(descriptor, "rb") as file:
            status = os.fstat(descriptor)
            if not stat.S_ISREG(status.st_mode) or status.st_size > limits.MAX_MEMBER_SIZE:
                raise UserError(
                    f"'{member.source_name}' in '{self.location}' is not an image file (a device, a FIFO, or "
                    f"{status.st_size:,} bytes); remove it from the folder"
                )
            return file.read(status.st_size)  # what it held when opened, however it grows

    def read_contiguous(self, members: list[Member], most: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        if most is not None:
            _refuse_large_class(members, sum(os.stat(_file_of(member)).st_size for member in members), most)
        contents = [content for _, content in self.read(members)]
        offsets = np.zeros(len(contents) + 1, np.int64)
        np.cumsum([len(content) for content in contents], out=offsets[1:])
        return np.frombuffer(b"".join(contents), np.uint8), offsets

    def close(self) -> None:
        pass


class ZipArchive:
    """A zip read by random access; `location` is a local path or any fsspec URL (http(s)://, hf://)."""

    def __init__(self, location: str):
        self.location = location
        self._inflater = Inflater()
        self._spans = Spans()
        try:
            if is_remote(location):
                # No read-ahead cache: each class is one exact range request, the directory a few small ones.
                filesystem, path = fsspec.core.url_to_fs(location)
                self._file = TailFirst(filesystem.open(path, "rb", cache_type="none"))
            else:
                self._file = open(location, "rb")
        except FileNotFoundError:
            raise UserError(
                f"source '{location}' was not found or could not be reached; check the path or URL"
            ) from None
        except OSError as error:
            raise UserError(f"cannot open '{location}': {error}") from None

    def members(self) -> list[Member]:
        try:
            directory = read_directory(self._file) or zipfile.ZipFile(self._file)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error) as error:
            raise UserError(
                f"'{self.location}' is not a readable zip ({error}); it may be truncated or not a zip at "
                "all: download it again"
            ) from None
        listed = directory.entries if isinstance(directory, Directory) else directory.infolist()
        infos = sorted(listed, key=lambda info: info.header_offset)
        # Everything a zip bomb could hide behind is refused here, from the directory alone: nothing is inflated yet.
        limits.check_disjoint(infos, directory.start_dir, self.location)
        # A member's bytes end where the next member (or, for the last, the central directory) begins, and never
        # past its longest possible header and its compressed size: bytes no member claims are not read.
        ends = [info.header_offset for info in infos[1:]] + [directory.start_dir]
        found, announced = [], 0
        for info, end in zip(infos, ends):
            path = image_path(info.filename)
            if path is None:
                continue
            limits.check_member(info, self.location)
            announced += info.file_size
            end = min(end, info.header_offset + MAX_LOCAL_HEADER + info.compress_size)
            place = ZipEntry(info.header_offset, end, info.compress_type, info.compress_size, info.file_size, info.CRC)
            found.append(Member(path, path.split("/")[0], place, info.filename))
        limits.check_total(announced, self._file.seek(0, 2), self.location)
        self._spans.know(found)
        return _refuse_duplicates(sorted(found, key=lambda member: sort_key(member.path)), self.location)

    def read(self, members: Iterable[Member]) -> Iterator[tuple[Member, bytes]]:
        """The members' decompressed bytes, in the order given, inflated one by one as their bytes are read:
        memory holds one read span and whatever members the zip stores before those asked first."""
        members = list(members)
        inflated: dict[str, np.ndarray] = {}
        waiting = iter(members)
        next_member = next(waiting, None)
        for member, blob, start in self._spans.raw(members, self):
            inflated[member.path] = np.empty(entry(member).file_size, np.uint8)
            self._inflate(member, blob, start, inflated[member.path], 0)
            while next_member is not None and next_member.path in inflated:
                yield next_member, inflated.pop(next_member.path).tobytes()
                next_member = next(waiting, None)

    def read_contiguous(self, members: list[Member], most: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The members' decompressed bytes back to back in one array, in the order given, and their n + 1 offsets.

        Each member is inflated straight into its place (no bytes object per member, nothing copied after), from
        one read per run of neighbouring members; the array is what the builder hands Arrow as it is. Its size is
        what the members announce, refused past `most` before it is allocated; none inflates past its own.
        """
        offsets = np.zeros(len(members) + 1, np.int64)
        np.cumsum([entry(member).file_size for member in members], out=offsets[1:])
        if most is not None:
            _refuse_large_class(members, int(offsets[-1]), most)
        content = np.empty(int(offsets[-1]), np.uint8)
        place = {member.path: int(offset) for member, offset in zip(members, offsets)}
        for member, blob, start in self._spans.raw(members, self):
            self._inflate(member, blob, start, content, place[member.path])
        return content, offsets

    def _inflate(self, member: Member, blob: np.ndarray, blob_start: int, content: np.ndarray, at: int) -> None:
        """Inflate one member from the span `blob` (read from `blob_start`) into `content[at:]`, CRC-checked."""
        where, name, location = entry(member), member.source_name, self.location
        header_at = where.offset - blob_start
        header = blob[header_at : header_at + LOCAL_HEADER.size].tobytes()
        if len(header) < LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise UserError(f"'{location}' is truncated or corrupt at member '{name}'; download it again")
        _, name_length, extra_length = LOCAL_HEADER.unpack(header)
        data_start = header_at + LOCAL_HEADER.size + name_length + extra_length
        if blob_start + data_start + where.compress_size > where.end:  # its data would run into the next member
            raise UserError(f"member '{name}' of '{location}' overlaps the next; the archive is corrupt or hostile")
        data = blob[data_start : data_start + where.compress_size]
        if len(data) < where.compress_size:
            raise UserError(f"'{location}' is truncated inside member '{name}'; download it again")
        if where.compress_type == zipfile.ZIP_STORED:
            if where.compress_size != where.file_size:
                raise UserError(f"member '{name}' of '{location}' is corrupt (stored sizes differ)")
            content[at : at + where.file_size] = data
        elif where.compress_type == zipfile.ZIP_DEFLATED:
            try:
                self._inflater.inflate_into(data, content, at, where.file_size)
            except InflateError as error:
                raise UserError(f"member '{name}' of '{location}' is corrupt ({error})") from None
        else:
            raise UserError(
                f"member '{name}' uses zip compression method {where.compress_type}; "
                "only stored and deflated members are supported"
            )
        if self._inflater.crc32(content, at, where.file_size) != where.crc:
            raise UserError(f"member '{name}' of '{location}' is corrupt (CRC mismatch)")

    def read_span(self, start: int, end: int) -> bytes:
        try:
            self._file.seek(start)
            return self._file.read(end - start)
        except OSError as error:
            raise UserError(f"reading '{self.location}' failed at byte {start}: {error}") from None

    def close(self) -> None:
        self._file.close()
        self._inflater.close()


def _refuse_duplicates(members: list[Member], location: str) -> list[Member]:
    """`members` (sorted by path), if no two of them are the same image; one would silently replace the other."""
    for previous, member in zip(members, members[1:]):
        if previous.path == member.path:
            both = (
                f"'{member.source_name}' twice"
                if previous.source_name == member.source_name
                else f"both '{previous.source_name}' and '{member.source_name}'"
            )
            raise UserError(f"'{location}' holds {both}, the same image {member.path}; remove one of them")
    return members


def _file_of(member: Member) -> str:
    """A folder member's file (a zip's members have a place in the zip instead, and never come here)."""
    where = member.where
    assert isinstance(where, str), "a zip member has no file of its own"
    return where


def _refuse_large_class(members: list[Member], size: int, most: int) -> None:
    if size > most:
        raise UserError(
            f"class {members[0].wnid} holds {size:,} bytes of images, more than {most:,}; the archive is corrupt "
            "or hostile, or the class must be split"
        )
