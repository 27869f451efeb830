import os
import shutil
import struct
import subprocess
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from imagenet_sketch_tools.cli.main import main
from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.dataset import inflate, remote, spans
from imagenet_sketch_tools.dataset.archive import image_path, open_archive, sort_key
from imagenet_sketch_tools.dataset.cache import prepared_hash
from imagenet_sketch_tools.dataset.sample import sketch_jpeg
from support.archives import class_members, stored_rows, write_zip, write_zip_as


@pytest.mark.parametrize(
    "name, expected",
    [
        ("sketch/n01440764/sketch_0.JPEG", "n01440764/sketch_0.JPEG"),
        ("n01440764/sketch_0.jpeg", "n01440764/sketch_0.jpeg"),
        ("ImageNet-Sketch/sketch/n01440764/a.png", "n01440764/a.png"),
        ("sketch/n01440764/", None),
        ("sketch/n01440764/.DS_Store", None),
        ("__MACOSX/sketch/n01440764/._sketch_0.JPEG", None),
        ("sketch/n01440764/Thumbs.db", None),
        ("sketch/README.txt", None),
    ],
)
def test_member_names(name, expected):
    assert image_path(name) == expected


@pytest.mark.parametrize("name", ["../x.JPEG", "sketch/../../x.JPEG", "/etc/n01440764/x.JPEG", "C:/n01440764/x.jpg"])
def test_names_escaping_the_archive_are_refused(name):
    with pytest.raises(UserError, match="outside the archive"):
        image_path(name)


def test_unknown_wnid_folder_is_named():
    with pytest.raises(UserError, match="'n99999999'"):
        image_path("sketch/n99999999/sketch_0.JPEG")


def test_numeric_order_within_a_class():
    paths = [f"n01440764/sketch_{n}.JPEG" for n in (10, 2, 0, 1)]
    assert sorted(paths, key=sort_key) == [f"n01440764/sketch_{n}.JPEG" for n in (0, 1, 2, 10)]


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_zip_members_come_back_byte_identical(tmp_path, compression):
    members = class_members(["n01443537", "n01440764"], per_class=4)
    archive = open_archive(str(write_zip(tmp_path / "a.zip", members, compression)))
    read = dict((member.path, content) for member, content in archive.read(archive.members()))
    assert read == {name.removeprefix("sketch/"): content for name, content in members}


def test_corrupt_member_is_reported(tmp_path):
    members = class_members(["n01440764"], per_class=1)
    path = write_zip(tmp_path / "a.zip", members, zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    offset = data.index(members[0][1][100:120])
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    archive = open_archive(str(path))
    with pytest.raises(UserError, match="CRC"):
        list(archive.read(archive.members()))


@pytest.fixture(params=["libdeflate", "zlib"])
def inflater(request, monkeypatch):
    """Run a test with libdeflate (when installed) and with the zlib fallback used when it is not."""
    if request.param == "zlib":
        monkeypatch.setattr(inflate, "LIBDEFLATE", None)
    elif inflate.LIBDEFLATE is None:
        pytest.skip("libdeflate (the `deflate` package) is not installed")
    return request.param


def test_deflated_members_inflate_identically_with_either_inflater(tmp_path, inflater):
    members = class_members(["n01440764"], per_class=3)
    archive = open_archive(str(write_zip(tmp_path / "a.zip", members, zipfile.ZIP_DEFLATED)))
    read = [content for _, content in archive.read(archive.members())]
    assert read == [content for _, content in members]
    assert all(type(content) is bytes for content in read)


def test_corrupt_deflated_member_is_reported_with_either_inflater(tmp_path, inflater):
    members = class_members(["n01440764"], per_class=1)
    path = write_zip(tmp_path / "a.zip", members, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    compressed_start = data.index(b"sketch_0.JPEG") + len("sketch_0.JPEG")
    for offset in range(compressed_start + 40, compressed_start + 60):
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))
    archive = open_archive(str(path))
    with pytest.raises(UserError, match="corrupt"):
        list(archive.read(archive.members()))


# --- hostile or odd archives ---


def build(capsys, source: Path, cache: Path) -> tuple[int, str]:
    code = main(["build", "--source", str(source), "--cache-dir", str(cache)])
    return code, capsys.readouterr().err


def assert_refused(code: int, err: str, cache: Path, *fragments: str) -> None:
    """One line naming what is wrong, and nothing a later load could pick up."""
    errors = [line for line in err.splitlines() if line.startswith("imagenet-sketch: error: ")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in err, err
    assert all(fragment in errors[0] for fragment in fragments), err
    assert prepared_hash(str(cache)) is None and not list(cache.rglob("*.arrow"))


def test_two_members_for_one_image_in_a_zip_are_refused(tmp_path, capsys):
    members = class_members(["n01440764"], per_class=2)
    other = sketch_jpeg(seed=7, mode="L", size=(48, 40))
    source = write_zip(tmp_path / "a.zip", [*members, ("n01440764/sketch_0.JPEG", other)])
    code, err = build(capsys, source, tmp_path / "cache")
    assert_refused(code, err, tmp_path / "cache", "'sketch/n01440764/sketch_0.JPEG'", "'n01440764/sketch_0.JPEG'")


def test_one_member_name_twice_in_a_zip_is_refused(tmp_path, capsys):
    members = class_members(["n01440764"], per_class=2)
    with pytest.warns(UserWarning, match="Duplicate name"):
        source = write_zip(tmp_path / "a.zip", [*members, (members[0][0], b"second")])
    code, err = build(capsys, source, tmp_path / "cache")
    assert_refused(code, err, tmp_path / "cache", "'sketch/n01440764/sketch_0.JPEG' twice")


def test_two_files_for_one_image_in_a_folder_are_refused(tmp_path, capsys):
    for top in ("sketch/", ""):
        target = tmp_path / "folder" / f"{top}n01440764" / "sketch_0.JPEG"
        target.parent.mkdir(parents=True)
        target.write_bytes(sketch_jpeg(seed=len(top), mode="L", size=(48, 40)))
    code, err = build(capsys, tmp_path / "folder", tmp_path / "cache")
    assert_refused(code, err, tmp_path / "cache", "'n01440764/sketch_0.JPEG'", "'sketch/n01440764/sketch_0.JPEG'")


def traced_peak(function) -> int:
    """The most memory Python held at once (above what it held before) while `function` ran."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def read_class(archive, wnid: str) -> dict[str, bytes]:
    return {member.path: content for member, content in archive.read(m for m in archive.members() if m.wnid == wnid)}


def test_interleaved_classes_are_read_in_spans_no_longer_than_the_cap(tmp_path, monkeypatch):
    cap = 4 << 20
    monkeypatch.setattr(spans, "MAX_READ", cap)
    monkeypatch.setattr(spans, "MAX_KEPT", cap)  # what is kept of the other class's members for its own read
    small = class_members(["n01440764"], per_class=40)
    large = os.urandom(900_000)  # under MAX_GAP, so every small member is a neighbour of the next
    members = [pair for n, member in enumerate(small) for pair in (member, (f"sketch/n01443537/{n}.JPEG", large))]
    archive = open_archive(str(write_zip(tmp_path / "a.zip", members, zipfile.ZIP_STORED)))
    assert (tmp_path / "a.zip").stat().st_size > 35e6
    read = {}
    peak = traced_peak(lambda: read.update(read_class(archive, "n01440764")))
    assert read == {name.removeprefix("sketch/"): content for name, content in small}
    assert peak < 2 * cap + sum(len(content) for _, content in small) + (1 << 20)


def test_bytes_no_member_claims_are_not_read(tmp_path):
    members = class_members(["n01440764"], per_class=3)
    hole = 64 << 20
    archive = open_archive(str(write_zip_as(tmp_path / "a.zip", members, holes={1: hole})))
    read = {}
    peak = traced_peak(lambda: read.update(read_class(archive, "n01440764")))
    assert read == {name.removeprefix("sketch/"): content for name, content in members}
    assert peak < 1 << 20


def patch_announced_size(path: Path, name: str, size: int) -> None:
    """Make the central directory say `name` inflates to `size` bytes (its local header is left alone)."""
    data = bytearray(path.read_bytes())
    entry = data.index(name.encode(), data.index(b"PK\x01\x02")) - 46  # the name follows the 46-byte header
    assert data[entry : entry + 4] == b"PK\x01\x02"
    data[entry + 24 : entry + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("size", [3_000_000_000, 50_000_000], ids=["gigabytes", "ratio"])
def test_a_member_announcing_an_absurd_size_is_refused_before_allocating_it(tmp_path, capsys, size, inflater):
    members = class_members(["n01440764"], per_class=2)
    path = write_zip(tmp_path / "a.zip", members, zipfile.ZIP_DEFLATED)
    patch_announced_size(path, members[1][0], size)
    archive = open_archive(str(path))
    errors = []

    def read_all() -> None:
        try:
            list(archive.read(archive.members()))
        except UserError as error:
            errors.append(str(error))

    assert traced_peak(read_all) < 1 << 20
    assert len(errors) == 1 and f"member '{members[1][0]}'" in errors[0] and f"announces {size:,} bytes" in errors[0]
    code, err = build(capsys, path, tmp_path / "cache")
    assert_refused(code, err, tmp_path / "cache", "no image has")


# --- ZIP64 and data descriptors: what `zip`, streaming writers and archives beyond 4 GiB use ---


def as_zipfile_reads(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as opened:
        return {info.filename: opened.read(info) for info in opened.infolist() if not info.is_dir()}


def as_we_read(path: Path) -> dict[str, bytes]:
    archive = open_archive(str(path))
    try:
        return {member.source_name: content for member, content in archive.read(archive.members())}
    finally:
        archive.close()


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
@pytest.mark.parametrize("force_zip64, descriptors", [(True, False), (False, True), (True, True)])
def test_zip64_and_data_descriptor_members_read_as_zipfile_reads_them(tmp_path, compression, force_zip64, descriptors):
    members = class_members(["n01443537", "n01440764"], per_class=3)
    path = write_zip_as(tmp_path / "a.zip", members, compression, force_zip64=force_zip64, descriptors=descriptors)
    data = path.read_bytes()
    with zipfile.ZipFile(path) as opened:
        infos = opened.infolist()
    # the zip really is what the test says: sizes only in a ZIP64 extra field, and/or only after the data
    assert all(bool(info.flag_bits & 0x08) == descriptors for info in infos)
    local_sizes = [data[info.header_offset + 18 : info.header_offset + 26] for info in infos]
    assert all((sizes == b"\xff" * 8) == force_zip64 for sizes in local_sizes if not descriptors)
    assert as_we_read(path) == as_zipfile_reads(path) == dict(members)


def test_a_build_of_a_zip64_zip_with_data_descriptors_stores_the_members_untouched(tmp_path):
    members = class_members(["n01443537", "n01440764"], per_class=3)
    path = write_zip_as(tmp_path / "a.zip", members, force_zip64=True, descriptors=True)
    stored = {row["image"]["path"]: row["image"]["bytes"] for row in stored_rows(path, tmp_path / "cache")}
    assert stored == {name.removeprefix("sketch/"): content for name, content in as_zipfile_reads(path).items()}


def test_members_beyond_4_gib_are_read(tmp_path):
    members = class_members(["n01440764", "n01443537"], per_class=2)
    # a sparse hole: the file is 4.5 GiB long but takes a few kilobytes on disk
    path = write_zip_as(tmp_path / "a.zip", members, holes={1: 9 << 29})
    with zipfile.ZipFile(path) as opened:
        beyond = [info for info in opened.infolist() if info.header_offset > 0xFFFFFFFF]
    assert len(beyond) == 3  # their offsets are in ZIP64 extra fields of the central directory
    assert as_we_read(path) == dict(members)


@pytest.mark.skipif(shutil.which("zip") is None, reason="Info-ZIP `zip` is not installed")
def test_a_zip_streamed_by_info_zip_is_read_as_zipfile_reads_it(tmp_path):
    for name, content in class_members(["n01440764", "n01443537"], per_class=3):
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / name).write_bytes(content)
    # `zip -` writes to a pipe it cannot seek back in: data descriptors (and ZIP64 records) like streaming tools
    streamed = subprocess.run(["zip", "-q", "-r", "-", "sketch"], cwd=tmp_path / "src", capture_output=True, check=True)
    path = tmp_path / "streamed.zip"
    path.write_bytes(streamed.stdout)
    with zipfile.ZipFile(path) as opened:
        assert all(info.flag_bits & 0x08 for info in opened.infolist() if not info.is_dir())
    assert as_we_read(path) == as_zipfile_reads(path) and len(as_zipfile_reads(path)) == 6


def test_a_remote_zip_s_directory_costs_one_ranged_read_when_it_fits_the_tail(tmp_path, http_server):
    members = class_members(["n01440764", "n01443537"], per_class=3)
    path = write_zip(tmp_path / "a.zip", members)
    http_server.serve("/a.zip", path)
    reader = open_archive(f"{http_server.url}/a.zip")
    try:
        found = reader.members()
        gets = [range_ for method, _, range_ in http_server.requests if method == "GET"]
        size = path.stat().st_size
        # The end record, the ZIP64 locator and the directory all come from one read of the file's end.
        assert gets == [f"bytes={size - max(size // 16, 1024)}-{size - 1}"]
        assert [content for _, content in reader.read(found)] == [content for _, content in members]
    finally:
        reader.close()


def test_a_directory_larger_than_the_tail_is_read_whole(tmp_path, http_server, monkeypatch):
    monkeypatch.setattr(remote.TailFirst, "TAIL", 64)
    members = class_members(["n01440764"], per_class=4)
    path = write_zip(tmp_path / "a.zip", members)
    http_server.serve("/a.zip", path)
    reader = open_archive(f"{http_server.url}/a.zip")
    try:
        assert [member.path for member in reader.members()] == [name.split("/", 1)[1] for name, _ in members]
        assert len([method for method, _, _ in http_server.requests if method == "GET"]) == 2
    finally:
        reader.close()
