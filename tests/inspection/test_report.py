"""The summaries and image checks behind `info` and `verify` (tools/report.py)."""

from __future__ import annotations

import io

import datasets
from PIL import Image

from imagenet_sketch_tools.common.images import is_all_black
from imagenet_sketch_tools.dataset.classes import class_table
from imagenet_sketch_tools.dataset.release import RELEASE_ROWS
from imagenet_sketch_tools.dataset.sample import black_jpeg, sketch_jpeg
from imagenet_sketch_tools.inspection.report import (
    check_image,
    check_images,
    class_counts,
    describe_feature,
    release_line,
)

WNIDS = class_table()[0]


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_counts_per_class_with_the_smallest_and_largest_named():
    counts = class_counts(["n01440764"] * 12 + ["n01443537"] * 3 + ["n01484850"] * 5 + ["n01491361"] * 4)
    assert counts.per_class == {"n01440764": 12, "n01443537": 3, "n01484850": 5, "n01491361": 4}
    summary = counts.summary()
    assert summary[0] == "4 of 1000 classes have images; per class: min 3 (n01443537), median 4.5, max 12 (n01440764)"
    assert summary[1] == "996 classes have no images"
    assert len(counts.missing) == 996 and "n01440764" not in counts.missing


def test_a_few_missing_classes_are_listed_by_wnid_and_name():
    present = [wnid for wnid in WNIDS if wnid not in ("n02012849", "n03710721")]
    summary = class_counts(present * 50).summary()
    assert summary[0].startswith("998 of 1000 classes have images; per class: min 50")
    assert summary[1] == "2 classes have no images: n02012849 (crane); n03710721 (maillot, tank suit)"


def test_every_class_present_and_no_class_at_all():
    assert class_counts(list(WNIDS)).summary()[1] == "every class has images"
    assert class_counts([]).summary() == ["no class has any image"]


def test_row_count_against_the_release():
    assert release_line(RELEASE_ROWS) == "50,889 rows: the full release (50,889 rows)"
    assert release_line(31) == "31 rows: not the full release (50,889 rows; 50,858 fewer)"
    assert release_line(RELEASE_ROWS + 2) == "50,891 rows: more than the release's 50,889 (2 extra)"


def test_features_described_in_a_word_or_two():
    label = datasets.ClassLabel(names=list(class_table()[1]))
    assert describe_feature(datasets.Image()) == "Image"
    assert describe_feature(label) == "ClassLabel (1000 classes)"
    assert describe_feature(datasets.Value("string")) == "Value (string)"


def test_a_sketch_decodes_and_is_not_black():
    for mode in ("L", "RGB"):
        result = check_image("a/b.JPEG", sketch_jpeg(1, mode))
        assert result.unreadable is None and not result.black


def test_black_images_are_found_in_any_mode():
    assert check_image("k/sketch_3.JPEG", black_jpeg("L")).black
    assert check_image("k/sketch_3.JPEG", black_jpeg("RGB")).black
    assert is_all_black(Image.new("RGBA", (4, 4), (0, 0, 0, 255)))
    assert is_all_black(Image.new("P", (4, 4), 0))


def test_one_pixel_above_zero_is_not_black():
    image = Image.new("RGB", (8, 8), "black")
    image.putpixel((7, 7), (0, 0, 1))  # blue only: a luminance check would round it to 0
    assert check_image("x.png", png(image)).black is False
    grey = Image.new("L", (8, 8), 0)
    grey.putpixel((0, 0), 1)
    assert check_image("x.png", png(grey)).black is False


def test_undecodable_bytes_say_why():
    assert check_image("w/empty.JPEG", b"").unreadable == "empty (0 bytes)"
    html = check_image("w/page.JPEG", b"<!DOCTYPE html><html>Sign in</html>").unreadable
    assert html is not None and html.startswith("not an image Pillow can identify (35 bytes, starting b'<!DOCTYPE ht")
    truncated = sketch_jpeg(2, "RGB", (200, 160))
    result = check_image("w/cut.JPEG", truncated[: len(truncated) // 2])
    assert result.unreadable and "truncated" in result.unreadable and "\n" not in result.unreadable


def test_threads_give_the_same_results_in_the_same_order():
    images = [(f"w/{n}.JPEG", sketch_jpeg(n, size=(40, 30)) if n % 5 else b"") for n in range(300)]
    images[7] = ("w/7.JPEG", black_jpeg("L", (40, 30)))
    one = list(check_images(images, workers=1))
    assert list(check_images(iter(images), workers=3)) == one
    assert [check.path for check in one] == [path for path, _ in images]
    assert sum(check.unreadable is not None for check in one) == 60 and one[7].black
