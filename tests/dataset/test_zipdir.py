"""The one-pass directory reader agrees with zipfile on every zip it reads, and leaves the unusual to zipfile."""

from __future__ import annotations

import io
import zipfile

import pytest

from imagenet_sketch_tools.dataset.zipdir import read_directory
from support.archives import class_members


def zip_bytes(members, *, comment: bytes = b"", force_zip64: bool = False, flag_utf8: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.comment = comment
        for name, content in members:
            with archive.open(name, "w", force_zip64=force_zip64) as member:
                member.write(content)
    return buffer.getvalue()


def as_zipfile_lists(content: bytes) -> tuple[list[tuple], int]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        infos = archive.infolist()
        return [(i.filename, i.header_offset, i.compress_type, i.compress_size, i.file_size, i.CRC) for i in infos], (
            archive.start_dir
        )


MEMBERS = class_members(["n01440764", "n01443537"], per_class=3) + [("sketch/n01440764/é.JPEG", b"x" * 10)]


@pytest.mark.parametrize(
    "options", [{}, {"comment": b"made by a test"}, {"comment": b"#" * 65_535}, {"force_zip64": True}]
)
def test_the_directory_is_what_zipfile_reads(options):
    content = zip_bytes(MEMBERS, **options)
    directory = read_directory(io.BytesIO(content))
    assert directory is not None
    assert ([tuple(entry) for entry in directory.entries], directory.start_dir) == as_zipfile_lists(content)


def test_a_zip_with_bytes_before_it_is_left_to_zipfile():
    # zipfile shifts every offset by the prefix ("concat"); the one-pass reader does not try.
    assert read_directory(io.BytesIO(b"#!/bin/sh\n" + zip_bytes(MEMBERS))) is None


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x05\x06" + b"\0" * 10])
def test_what_is_not_a_plain_zip_is_left_to_zipfile(content):
    assert read_directory(io.BytesIO(content)) is None


def test_a_zip64_end_record_is_used_even_when_no_field_overflowed(monkeypatch):
    # zipfile writes ZIP64 end records once offsets pass ZIP64_LIMIT (2 GiB), with the plain end record's fields
    # still holding the real values; a small limit makes such a zip here.
    with monkeypatch.context() as patched:
        patched.setattr(zipfile, "ZIP64_LIMIT", 1000)
        content = zip_bytes(MEMBERS, force_zip64=True)
    assert b"PK\x06\x06" in content[-200:]
    directory = read_directory(io.BytesIO(content))
    assert directory is not None
    assert ([tuple(entry) for entry in directory.entries], directory.start_dir) == as_zipfile_lists(content)
