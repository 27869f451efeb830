import zipfile

import pytest

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.dataset import archive as archive_module
from imagenet_sketch_tools.dataset.archive import image_path, open_archive, sort_key
from support.archives import class_members, write_zip


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
        monkeypatch.setattr(archive_module, "libdeflate", None)
    elif archive_module.libdeflate is None:
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
