"""augment (tools/augment.py): the authors' fill order, what is dropped, bytes, resumability, bad input."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from imagenet_sketch_tools.cli.main import main
from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.dataset.sample import black_jpeg, sketch_jpeg
from imagenet_sketch_tools.pipeline.augment import augment, fill_plan
from imagenet_sketch_tools.pipeline.manifest import Manifest

TENCH, GOLDFISH = "n01440764", "n01443537"
# What each transform must do to the pixels, said independently of the code under test.
NUMPY_TRANSFORMS = {
    "hflip": lambda a: a[:, ::-1],
    "vflip": lambda a: a[::-1, :],
    "rot180": lambda a: np.rot90(a, 2),
}


def pixels(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)).convert("L"), dtype=np.float64)


def write_class(root, wnid: str, files: dict[str, bytes]) -> None:
    folder = root / wnid
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)


def outputs(out_dir, wnid: str) -> list[str]:
    return sorted(os.listdir(out_dir / wnid), key=lambda name: int(name[7:-5]))


def test_fill_plan_is_the_authors_cycle():
    # One original, target 6: the example.
    assert [transform for _, transform in fill_plan(1, 6)] == ["original", "hflip", "vflip", "rot180", "copy", "hflip"]
    assert fill_plan(3, 2) == [(0, "original"), (1, "original")]  # more than the target: the first `target`
    assert fill_plan(0, 50) == []


def test_three_images_target_ten_in_exact_order(tmp_path):
    sources = {name: sketch_jpeg(seed, size=(96, 72)) for seed, name in enumerate(["c.jpg", "a.jpg", "b.jpg"])}
    write_class(tmp_path / "in", TENCH, sources)
    summary = augment(tmp_path / "in", tmp_path / "out", target=10)
    assert (summary.classes, summary.originals, summary.augmented) == (1, 3, 7)
    rows = list(Manifest(tmp_path / "out").rows("augment"))
    expected = [("a", "original"), ("b", "original"), ("c", "original")]
    expected += [(name, transform) for transform in ("hflip", "vflip") for name in "abc"] + [("a", "rot180")]
    assert [(row["source"][len(TENCH) + 1 : -4], row["transform"]) for row in rows] == expected
    assert [row["output"] for row in rows] == [f"{TENCH}/sketch_{n}.JPEG" for n in range(10)]
    assert outputs(tmp_path / "out", TENCH) == [f"sketch_{n}.JPEG" for n in range(10)]
    for row in rows:
        written = (tmp_path / "out" / row["output"]).read_bytes()
        source = sources[row["source"].split("/")[-1]]
        assert row["original"] == f"{TENCH}/sketch_{'abc'.index(row['source'][-5])}.JPEG"
        if row["transform"] == "original":
            assert written == source  # an original JPEG is copied untouched
        else:
            expected_pixels = NUMPY_TRANSFORMS[row["transform"]](pixels(source))
            assert np.abs(pixels(written) - expected_pixels).mean() < 2  # the transform, up to JPEG re-encoding
            for other, transform in NUMPY_TRANSFORMS.items():  # and none of the others, nor the source itself
                if other != row["transform"]:
                    assert np.abs(pixels(written) - transform(pixels(source))).mean() > 5, (row, other)
            assert np.abs(pixels(written) - pixels(source)).mean() > 5


def test_copy_is_the_original_bytes_again(tmp_path):
    write_class(tmp_path / "in", TENCH, {"only.jpg": sketch_jpeg(7, size=(64, 48))})
    augment(tmp_path / "in", tmp_path / "out", target=6)
    out = tmp_path / "out" / TENCH
    assert (out / "sketch_4.JPEG").read_bytes() == (out / "sketch_0.JPEG").read_bytes()
    assert (out / "sketch_5.JPEG").read_bytes() == (out / "sketch_1.JPEG").read_bytes()  # hflip again, same bytes
    assert len(set((out / f"sketch_{n}.JPEG").read_bytes() for n in range(4))) == 4


def test_rejects_black_and_unreadable_are_dropped_and_recorded(tmp_path):
    in_dir = tmp_path / "collected"
    write_class(
        in_dir / "raw",
        TENCH,
        {"1.jpg": sketch_jpeg(1), "2.jpg": sketch_jpeg(2), "3.jpg": black_jpeg(), "4.png": b"not an image"},
    )
    Manifest(in_dir).append("decision", path=f"raw/{TENCH}/1.jpg", decision="reject", reason="irrelevant")
    summary = augment(in_dir, tmp_path / "out", target=3)
    assert summary.originals == 1
    assert {row["source"] for row in Manifest(tmp_path / "out").rows("augment")} == {f"raw/{TENCH}/2.jpg"}
    drops = {row["source"]: row["reason"] for row in Manifest(tmp_path / "out").rows("augment_drop")}
    assert set(drops) == {f"raw/{TENCH}/3.jpg", f"raw/{TENCH}/4.png"}
    assert drops[f"raw/{TENCH}/3.jpg"].startswith("black")
    assert drops[f"raw/{TENCH}/4.png"].startswith("unreadable")


def test_a_class_with_nothing_kept_is_reported_not_invented(tmp_path):
    write_class(tmp_path / "in", TENCH, {"a.jpg": sketch_jpeg(1)})
    write_class(tmp_path / "in", GOLDFISH, {"a.jpg": black_jpeg()})
    summary = augment(tmp_path / "in", tmp_path / "out", target=2)
    assert summary.empty_classes == [GOLDFISH]
    assert not (tmp_path / "out" / GOLDFISH).exists()


def test_transparent_png_is_flattened_onto_white_jpeg(tmp_path):
    image = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    image.paste((20, 20, 20, 255), (5, 5, 15, 25))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    write_class(tmp_path / "in", TENCH, {"drawing.png": buffer.getvalue()})
    augment(tmp_path / "in", tmp_path / "out", target=2)
    original = Image.open(tmp_path / "out" / TENCH / "sketch_0.JPEG")
    assert original.format == "JPEG" and original.mode == "RGB"
    gray = np.asarray(original.convert("L"), float)
    assert gray[0, 0] > 240 and gray[15, 10] < 60  # white paper, dark ink
    assert np.asarray(Image.open(tmp_path / "out" / TENCH / "sketch_1.JPEG").convert("L"), float)[15, 29] < 60


def test_rerun_rewrites_nothing_and_repairs_what_is_missing(tmp_path):
    write_class(tmp_path / "in", TENCH, {"a.jpg": sketch_jpeg(1), "b.png": png_sketch(2)})
    augment(tmp_path / "in", tmp_path / "out", target=7)
    folder = tmp_path / "out" / TENCH
    first = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
    times = {name: (folder / name).stat().st_mtime_ns for name in first}
    rows = (tmp_path / "out" / "manifest.jsonl").read_text()
    (folder / "sketch_3.JPEG").unlink()
    summary = augment(tmp_path / "in", tmp_path / "out", target=7)
    assert summary.written == 1
    assert {name: (folder / name).read_bytes() for name in os.listdir(folder)} == first
    assert all((folder / name).stat().st_mtime_ns == times[name] for name in first if name != "sketch_3.JPEG")
    assert (tmp_path / "out" / "manifest.jsonl").read_text() == rows
    # A fresh run elsewhere gives the same bytes: the run is deterministic.
    augment(tmp_path / "in", tmp_path / "again", target=7)
    assert {name: (tmp_path / "again" / TENCH / name).read_bytes() for name in first} == first


def test_new_rejects_and_a_lower_target_remove_outputs_beyond_the_new_count(tmp_path):
    write_class(tmp_path / "in", TENCH, {f"{n}.jpg": sketch_jpeg(n) for n in range(4)})
    augment(tmp_path / "in", tmp_path / "out", target=4)
    assert len(outputs(tmp_path / "out", TENCH)) == 4
    Manifest(tmp_path / "in").append("decision", path=f"{TENCH}/0.jpg", decision="reject", reason="wrong class")
    augment(tmp_path / "in", tmp_path / "out", target=3)
    assert outputs(tmp_path / "out", TENCH) == ["sketch_0.JPEG", "sketch_1.JPEG", "sketch_2.JPEG"]
    assert (tmp_path / "out" / TENCH / "sketch_0.JPEG").read_bytes() == sketch_jpeg(1)


def test_more_originals_than_the_target_keeps_exactly_the_first_target(tmp_path, capsys):
    names = [f"{n:02d}.jpg" for n in range(14)]
    sources = {name: sketch_jpeg(n, size=(64, 48)) for n, name in enumerate(names)}
    write_class(tmp_path / "in", TENCH, dict(reversed(sources.items())))  # written last to first: order is by name
    assert main(["augment", str(tmp_path / "in"), str(tmp_path / "out"), "--target", "10"]) == 0
    assert "1 classes: 10 originals + 0 augmented, 10 files written" in capsys.readouterr().out
    assert outputs(tmp_path / "out", TENCH) == [f"sketch_{n}.JPEG" for n in range(10)]
    for n in range(10):
        assert (tmp_path / "out" / TENCH / f"sketch_{n}.JPEG").read_bytes() == sources[names[n]]
    drops = [(row["source"], row["reason"]) for row in Manifest(tmp_path / "out").rows("augment_drop")]
    assert drops == [(f"{TENCH}/{name}", "over target") for name in names[10:]]
    assert len(list(Manifest(tmp_path / "out").rows("augment"))) == 10


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    write_class(tmp_path / "in", "cats", {"a.jpg": sketch_jpeg(1)})
    with pytest.raises(UserError, match="'.*cats' is not named by an ImageNet-1k wnid"):
        augment(tmp_path / "in", tmp_path / "out")
    assert main(["augment", str(tmp_path / "missing"), str(tmp_path / "out")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["augment", str(tmp_path / "in"), str(tmp_path / "out"), "--target", "0"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--target must be at least 1" in error
    assert not (tmp_path / "out").exists()


def test_command_reports_counts(tmp_path, capsys):
    write_class(tmp_path / "in", TENCH, {"a.jpg": sketch_jpeg(1)})
    write_class(tmp_path / "in", GOLDFISH, {"a.jpg": black_jpeg()})
    assert main(["augment", str(tmp_path / "in"), str(tmp_path / "out"), "--target", "4"]) == 0
    out = capsys.readouterr().out
    assert "1 classes: 1 originals + 3 augmented, 4 files written" in out
    assert f"no usable image and were not written: {GOLDFISH}" in out


def png_sketch(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(sketch_jpeg(seed))).save(buffer, "PNG")
    return buffer.getvalue()
