"""package (tools/package.py): byte-for-byte reproducible release-layout zips that the builder loads."""

from __future__ import annotations

import os
import zipfile

import pytest

from imagenet_sketch_tools.cli.main import main
from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.files import file_sha256
from imagenet_sketch_tools.dataset.classes import label_of_wnid
from imagenet_sketch_tools.dataset.zipwriter import write_zip
from imagenet_sketch_tools.pipeline import package
from imagenet_sketch_tools.pipeline.package import package_folder
from support.archives import class_members, stored_rows

WNIDS = ["n01440764", "n02012849", "n03126707"]


def extracted(root, top: str = "") -> dict[str, bytes]:
    """A folder of class folders (under `root/top`), as augment writes; returns member name -> bytes."""
    members = dict(class_members(WNIDS, per_class=4))
    for name, content in members.items():
        path = root / top / name.removeprefix("sketch/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return members


def test_same_images_give_the_same_bytes_whatever_the_file_times(tmp_path):
    members = extracted(tmp_path / "out")
    size, sha256, count = package_folder(tmp_path / "out", tmp_path / "first.zip")
    for folder, _, files in os.walk(tmp_path / "out"):
        for name in files:
            os.utime(os.path.join(folder, name), (1_900_000_000, 1_900_000_000))
    again = package_folder(tmp_path / "out", tmp_path / "second.zip")
    assert (tmp_path / "first.zip").read_bytes() == (tmp_path / "second.zip").read_bytes()
    assert (
        again
        == (size, sha256, count)
        == (os.path.getsize(tmp_path / "first.zip"), file_sha256(tmp_path / "first.zip"), 12)
    )
    assert (tmp_path / "first.zip.sha256").read_text() == f"{sha256}  first.zip\n"
    with zipfile.ZipFile(tmp_path / "first.zip") as archive:
        infos = archive.infolist()
        assert [info.filename for info in infos] == sorted(members)
        assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in infos)
        assert {info.filename: archive.read(info) for info in infos} == members


def test_paths_and_bytes_members_give_the_same_zip(tmp_path):
    members = extracted(tmp_path / "out")
    by_path = [(name, tmp_path / "out" / name.removeprefix("sketch/")) for name in reversed(list(members))]
    assert write_zip(by_path, tmp_path / "a.zip") == write_zip(members.items(), tmp_path / "b.zip")


@pytest.mark.parametrize("top", ["", "sketch"])
def test_the_builder_loads_it_with_the_right_labels(tmp_path, top):
    members = extracted(tmp_path / "out", top)
    package_folder(tmp_path / "out", tmp_path / "ImageNet-Sketch.zip")
    rows = stored_rows(tmp_path / "ImageNet-Sketch.zip", tmp_path / "c")
    assert len(rows) == len(members)
    for row in rows:
        assert row["label"] == label_of_wnid()[row["wnid"]]
        assert row["image"]["bytes"] == members["sketch/" + row["image"]["path"]]


def test_a_folder_that_is_not_a_wnid_is_named_and_nothing_is_written(tmp_path, capsys):
    extracted(tmp_path / "out")
    (tmp_path / "out" / "goldfish").mkdir()
    (tmp_path / "out" / "goldfish" / "sketch_0.JPEG").write_bytes(b"x")
    assert main(["package", str(tmp_path / "out"), "--output", str(tmp_path / "x.zip")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "folder 'goldfish'" in error
    assert os.listdir(tmp_path) == ["out"]


def test_an_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images under"):
        package_folder(tmp_path / "empty", tmp_path / "x.zip")


def test_command_prints_size_and_sha256(tmp_path, capsys):
    extracted(tmp_path / "out")
    assert main(["package", str(tmp_path / "out"), "--output", str(tmp_path / "x.zip")]) == 0
    out = capsys.readouterr().out
    assert f"{os.path.getsize(tmp_path / 'x.zip'):,} bytes" in out and file_sha256(tmp_path / "x.zip") in out


def test_a_package_that_fails_midway_leaves_nothing_behind(tmp_path, monkeypatch):
    extracted(tmp_path / "out")
    listed = package.folder_members

    def listed_then_one_removed(folder):
        members = listed(folder)
        (tmp_path / "out" / WNIDS[1] / "sketch_3.JPEG").unlink()  # a member unreadable halfway through the writing
        return members

    monkeypatch.setattr(package, "folder_members", listed_then_one_removed)
    (tmp_path / "dist").mkdir()
    with pytest.raises(OSError):
        package_folder(tmp_path / "out", tmp_path / "dist" / "ImageNet-Sketch.zip")
    assert list((tmp_path / "dist").iterdir()) == []


def test_write_zip_removes_its_temporary_file_when_a_member_is_missing(tmp_path):
    members = [(name, content) for name, content in class_members(WNIDS, per_class=2)]
    members.insert(3, ("sketch/n02012849/sketch_7.JPEG", tmp_path / "vanished.JPEG"))  # deleted after listing
    with pytest.raises(FileNotFoundError):
        write_zip(members, tmp_path / "a.zip")
    assert [path.name for path in tmp_path.iterdir()] == []
