"""Choosing a class, fetching only its first images, and the contact sheet (inspection/peek.py, common/sheet.py)."""

from __future__ import annotations

import os
import stat
import zipfile

import pytest
from PIL import Image

import imagenet_sketch
from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.sheet import CELL_HEIGHT, CELL_WIDTH, PAD, THUMB, TITLE_HEIGHT
from imagenet_sketch_tools.dataset.classes import label_of_wnid
from imagenet_sketch_tools.dataset.sample import black_jpeg, sketch_jpeg
from imagenet_sketch_tools.inspection.peek import (
    Peeked,
    choose_wnid,
    contact_sheet,
    from_archive,
    from_dataset,
    write_png,
)
from support.archives import class_members, write_zip


def test_a_class_is_chosen_by_wnid_or_by_a_word_of_its_name():
    assert choose_wnid(wnid="n03710721") == "n03710721"
    assert choose_wnid(name="tench") == "n01440764"
    assert choose_wnid(name="Tinca") == "n01440764"
    assert choose_wnid() is None


def test_an_ambiguous_word_names_every_match_and_asks_for_a_wnid():
    with pytest.raises(UserError) as caught:
        choose_wnid(name="maillot")
    message = str(caught.value)
    assert "n03710637 (maillot)" in message and "n03710721 (maillot, tank suit)" in message
    assert "--wnid" in message


def test_unknown_wnid_or_word_is_an_error():
    with pytest.raises(UserError, match="'n00000000' is not one of the 1000"):
        choose_wnid(wnid="n00000000")
    with pytest.raises(UserError, match="no class name has the word 'zzzz'"):
        choose_wnid(name="zzzz")


def test_first_images_of_a_class_in_archive_order(sample_zip):
    peeked = from_archive(str(sample_zip), "n01440764", 11)
    assert peeked.wnid == "n01440764" and peeked.class_size == 12
    assert [path for path, _ in peeked.images] == [f"n01440764/sketch_{n}.JPEG" for n in range(11)]
    with zipfile.ZipFile(sample_zip) as archive:
        assert all(content == archive.read("sketch/" + path) for path, content in peeked.images)
    assert from_archive(str(sample_zip), None, 2).wnid == "n01440764"  # no class given: the first one


def test_a_class_absent_from_the_archive_is_an_error(sample_zip):
    with pytest.raises(UserError, match=r"class n01443537 \(goldfish, Carassius auratus\) has no images"):
        from_archive(str(sample_zip), "n01443537", 4)


def test_the_prepared_dataset_gives_the_same_images(tmp_path, sample_zip):
    dataset = imagenet_sketch.load(str(sample_zip), cache_dir=str(tmp_path / "cache"))
    assert from_dataset(dataset, "n03085013", 3) == from_archive(str(sample_zip), "n03085013", 3)
    assert from_dataset(dataset, None, 1).wnid == "n01440764"


def test_a_remote_zip_is_read_for_that_class_only(tmp_path, http_server):
    wnids = sorted(label_of_wnid())[:40]
    archive = write_zip(tmp_path / "forty.zip", class_members(wnids, per_class=6))
    url = http_server.serve("/ImageNet-Sketch.zip", archive)
    peeked = from_archive(url, wnids[20], 4)
    assert [path for path, _ in peeked.images] == [f"{wnids[20]}/sketch_{n}.JPEG" for n in range(4)]
    assert not [r for r in http_server.requests if r[0] == "GET" and r[2] is None], "the whole archive was fetched"
    spans = [r[2].removeprefix("bytes=").split("-") for r in http_server.requests if r[2]]
    fetched = sum(int(end) - int(start) + 1 for start, end in spans)
    assert fetched < archive.stat().st_size / 4


def test_contact_sheet_grid_thumbnails_and_captions():
    images = [(f"n03085013/sketch_{n}.JPEG", sketch_jpeg(n, "RGB", (320, 240))) for n in range(16)]
    images[5] = ("n03085013/sketch_5.JPEG", black_jpeg("L", (200, 100)))
    images[9] = ("n03085013/sketch_9.JPEG", b"")
    sheet = contact_sheet(Peeked("n03085013", images, 50))
    assert sheet.size == (4 * CELL_WIDTH, TITLE_HEIGHT + 4 * CELL_HEIGHT)  # 16 images: a 4 x 4 grid

    def cell_origin(index: int) -> tuple[int, int]:
        return index % 4 * CELL_WIDTH + PAD, TITLE_HEIGHT + index // 4 * CELL_HEIGHT + PAD

    # The black image is fitted into its square, keeping its 2:1 shape: black in the middle, white above.
    left, top = cell_origin(5)
    assert sheet.getpixel((left + THUMB // 2, top + THUMB // 2)) == (0, 0, 0)
    assert sheet.getpixel((left + THUMB // 2, top + 10)) == (255, 255, 255)
    # The unreadable one is a grey square with a red outline.
    left, top = cell_origin(9)
    assert sheet.getpixel((left + 3, top + 3)) == (211, 211, 211)
    assert sheet.getpixel((left, top + THUMB // 2)) == (255, 0, 0)
    # Every caption band holds text (dark pixels) under its thumbnail.
    for index in range(16):
        left, top = cell_origin(index)
        caption = sheet.crop((left, top + THUMB + 2, left + THUMB, top + CELL_HEIGHT - 2 * PAD))
        assert caption.convert("L").getextrema()[0] < 100


def test_grid_width_follows_the_count():
    one = contact_sheet(Peeked("n01440764", [("n01440764/sketch_0.JPEG", sketch_jpeg(0))], 1))
    assert one.size == (CELL_WIDTH, TITLE_HEIGHT + CELL_HEIGHT)
    three = contact_sheet(Peeked("n01440764", [(f"n01440764/sketch_{n}.JPEG", sketch_jpeg(n)) for n in range(3)], 3))
    assert three.size == (3 * CELL_WIDTH, TITLE_HEIGHT + CELL_HEIGHT)
    many = [(f"n01440764/sketch_{n}.JPEG", b"") for n in range(50)]
    assert contact_sheet(Peeked("n01440764", many, 50)).size == (8 * CELL_WIDTH, TITLE_HEIGHT + 7 * CELL_HEIGHT)


def test_png_written_whole_with_ordinary_permissions(tmp_path):
    output = tmp_path / "grid.png"
    write_png(Image.new("RGB", (30, 20), "white"), output)
    with Image.open(output) as written:
        assert written.format == "PNG" and written.size == (30, 20)
    assert os.listdir(tmp_path) == ["grid.png"]
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(output.stat().st_mode) == 0o666 & ~mask


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial(tmp_path):
    output = tmp_path / "grid.png"
    output.write_bytes(b"previous sheet")
    with pytest.raises(OSError):
        write_png(Image.new("CMYK", (4, 4)), output)  # PNG cannot hold CMYK: Pillow fails mid-save
    assert output.read_bytes() == b"previous sheet"
    assert os.listdir(tmp_path) == ["grid.png"]


def test_a_missing_output_folder_is_an_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        write_png(Image.new("RGB", (4, 4)), tmp_path / "no" / "grid.png")
