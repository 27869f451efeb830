"""Thumbnails: the images shown are read by path from an archive or the prepared copy, alike, and inlined small."""

from __future__ import annotations

import base64
import io

from PIL import Image

import imagenet_sketch
from imagenet_sketch_tools.dataset.sample import sample_members
from imagenet_sketch_tools.report import images

WANTED = {3: "n01440764/sketch_3.JPEG", 20: "n03085013/sketch_3.JPEG", 7: "n01440764/sketch_10.JPEG"}


def stored(path: str) -> bytes:
    return dict(sample_members())[f"sketch/{path}"]


def test_an_archive_gives_the_images_asked_for_by_path(sample_zip):
    found = images.from_archive(str(sample_zip))(WANTED)
    assert found == {path: stored(path) for path in WANTED.values()}


def test_the_prepared_copy_gives_the_same_images(sample_zip, tmp_path):
    cache_dir = str(tmp_path / "cache")
    assert images.from_prepared(cache_dir) is None  # nothing prepared yet: no images, nothing built
    imagenet_sketch.load(str(sample_zip), cache_dir=cache_dir)
    fetch = images.from_prepared(cache_dir)
    assert fetch is not None
    assert fetch({**WANTED, 99: "n01440764/absent.JPEG"}) == {path: stored(path) for path in WANTED.values()}


def test_thumbnails_are_small_webp_and_unreadable_images_are_left_out(sample_zip):
    uris = images.thumbnails(lambda wanted: {"a/x.JPEG": stored(WANTED[3]), "a/y.JPEG": b"not an image"}, {1: "x"})
    assert list(uris) == ["a/x.JPEG"]
    prefix = "data:image/webp;base64,"
    assert uris["a/x.JPEG"].startswith(prefix)
    thumbnail = Image.open(io.BytesIO(base64.b64decode(uris["a/x.JPEG"][len(prefix) :])))
    original = Image.open(io.BytesIO(stored(WANTED[3])))
    assert thumbnail.format == "WEBP" and max(thumbnail.size) == images.THUMB
    assert abs(thumbnail.width / thumbnail.height - original.width / original.height) < 0.02  # aspect kept
    assert images.thumbnails(None, {1: "x"}) == {}
