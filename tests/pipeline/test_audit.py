"""audit (tools/audit.py): planted flips, rotations, copies, black images and cross-class duplicates are found,
and a clean set of distinct sketches (sparse ones and a symmetric one included) gives no row at all."""

from __future__ import annotations

import csv
import hashlib
import io
import os

import numpy as np
import pytest
from PIL import Image

from imagenet_sketch_tools.cli.main import main
from imagenet_sketch_tools.dataset.sample import black_jpeg, sketch_jpeg
from imagenet_sketch_tools.pipeline.audit import HASH_DISTANCE, audit, features, write_report
from imagenet_sketch_tools.pipeline.augment import augment
from support.archives import write_zip

WNIDS = ["n01440764", "n01443537", "n01484850"]
STROKES = (2, 5, 12, 24, 40)
COLLIDING = ((12, 1036), (13, 1067))


def varied_sketch(seed: int) -> bytes:
    """Distinct sketches: sparse (2 strokes) to dense, grayscale and colour, several sizes."""
    size = (150 + 16 * (seed % 5), 110 + 12 * (seed % 4))
    return sketch_jpeg(seed, "L" if seed % 3 else "RGB", size, strokes=STROKES[seed % len(STROKES)])


def symmetric_sketch(seed: int) -> bytes:
    """A sketch equal to its own horizontal flip: it must not be taken for its own flip."""
    image = Image.open(io.BytesIO(sketch_jpeg(seed, size=(80, 120)))).convert("L")
    canvas = Image.new("L", (160, 120), "white")
    canvas.paste(image, (0, 0))
    canvas.paste(Image.fromarray(np.asarray(image)[:, ::-1].copy()), (80, 0))
    return encoded(canvas)


def encoded(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


# The transforms audit must recognise, made with numpy rather than augment's code, so the two cannot share a mistake.
NUMPY_TRANSFORMS = {
    "hflip": lambda a: a[:, ::-1],
    "vflip": lambda a: a[::-1],
    "rot180": lambda a: np.rot90(a, 2),
    "copy": lambda a: a,
}


def transform_of(content: bytes, transform: str, quality: int = 80) -> bytes:
    pixels = np.asarray(Image.open(io.BytesIO(content)))
    return encoded(Image.fromarray(np.ascontiguousarray(NUMPY_TRANSFORMS[transform](pixels))), quality)


def clean_members() -> list[tuple[str, bytes]]:
    members = [
        (f"sketch/{wnid}/sketch_{n}.JPEG", varied_sketch(100 * i + n))
        for i, wnid in enumerate(WNIDS)
        for n in range(10)
    ]
    members.append((f"sketch/{WNIDS[0]}/sketch_10.JPEG", symmetric_sketch(5)))
    # Two sparse sketches whose perceptual hashes collide (see the test): the pixel correlation keeps them apart.
    members += [(f"sketch/{WNIDS[2]}/sketch_{n}.JPEG", sketch_jpeg(seed, strokes=2)) for n, seed in COLLIDING]
    return members


def as_folder(root, members: list[tuple[str, bytes]]) -> str:
    for name, content in members:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return str(root)


def test_a_clean_set_gives_no_row(tmp_path):
    members = clean_members()
    assert len({hashlib.sha256(content).digest() for _, content in members}) == len(members)
    first, second = (features("", sketch_jpeg(seed, strokes=2)) for _, seed in COLLIDING)
    assert np.count_nonzero(first.hashes != second.hashes[0], axis=-1).min() <= HASH_DISTANCE
    report = audit(str(write_zip(tmp_path / "clean.zip", members)))
    assert report.rows == []
    assert [(row["wnid"], row["total"], row["originals"]) for row in report.summary] == [
        (WNIDS[0], 11, 11),
        (WNIDS[1], 10, 10),
        (WNIDS[2], 12, 12),
    ]


def planted_members() -> tuple[list[tuple[str, bytes]], set[tuple[str, str, str, str]]]:
    members = clean_members()
    content = dict(members)
    a, b = content[f"sketch/{WNIDS[0]}/sketch_0.JPEG"], content[f"sketch/{WNIDS[0]}/sketch_3.JPEG"]
    sparse = content[f"sketch/{WNIDS[1]}/sketch_0.JPEG"]  # 2 strokes
    symmetric = content[f"sketch/{WNIDS[0]}/sketch_10.JPEG"]
    white = encoded(Image.new("L", (90, 90), "white"))
    planted = {
        f"{WNIDS[0]}/sketch_11.JPEG": (transform_of(a, "hflip"), "augmented", f"{WNIDS[0]}/sketch_0.JPEG", "hflip"),
        f"{WNIDS[0]}/sketch_12.JPEG": (transform_of(b, "vflip"), "augmented", f"{WNIDS[0]}/sketch_3.JPEG", "vflip"),
        f"{WNIDS[0]}/sketch_13.JPEG": (transform_of(b, "rot180"), "augmented", f"{WNIDS[0]}/sketch_3.JPEG", "rot180"),
        f"{WNIDS[0]}/sketch_14.JPEG": (a, "augmented", f"{WNIDS[0]}/sketch_0.JPEG", "copy"),
        f"{WNIDS[0]}/sketch_15.JPEG": (transform_of(b, "copy", 60), "augmented", f"{WNIDS[0]}/sketch_3.JPEG", "copy"),
        f"{WNIDS[1]}/sketch_10.JPEG": (
            transform_of(sparse, "rot180"),
            "augmented",
            f"{WNIDS[1]}/sketch_0.JPEG",
            "rot180",
        ),
        f"{WNIDS[1]}/sketch_11.JPEG": (black_jpeg(), "black", "", ""),
        f"{WNIDS[1]}/sketch_12.JPEG": (white, "blank", "", ""),
        f"{WNIDS[1]}/sketch_13.JPEG": (b"\xff\xd8 truncated", "unreadable", "", ""),
        f"{WNIDS[2]}/sketch_10.JPEG": (a, "cross_class_duplicate", f"{WNIDS[0]}/sketch_0.JPEG", ""),
        # A symmetric image's flip equals it: reported against it, whichever of copy/hflip fits best.
        f"{WNIDS[2]}/sketch_11.JPEG": (symmetric, "cross_class_duplicate", f"{WNIDS[0]}/sketch_10.JPEG", ""),
    }
    members += [(f"sketch/{path}", content) for path, (content, *_) in planted.items()]
    expected = {(path, kind, of_path, transform) for path, (_, kind, of_path, transform) in planted.items()}
    return members, expected


def test_planted_flips_rotations_copies_and_duplicates_are_found_and_nothing_else(tmp_path):
    members, expected = planted_members()
    report = audit(str(write_zip(tmp_path / "planted.zip", members)))
    assert {(row["path"], row["kind"], row["of_path"], row["transform"]) for row in report.rows} == expected
    first = {row["wnid"]: row for row in report.summary}[WNIDS[0]]
    assert (first["total"], first["originals"], first["augmented"]) == (16, 11, 5)
    second = {row["wnid"]: row for row in report.summary}[WNIDS[1]]
    assert (second["black"], second["blank"], second["unreadable"], second["originals"]) == (1, 1, 1, 10)
    third = {row["wnid"]: row for row in report.summary}[WNIDS[2]]
    assert (third["cross_class_duplicates"], third["originals"]) == (2, 14)


def test_a_symmetric_images_flip_is_reported_against_it(tmp_path):
    symmetric = symmetric_sketch(9)
    members = [
        (f"sketch/{WNIDS[0]}/sketch_0.JPEG", symmetric),
        (f"sketch/{WNIDS[0]}/sketch_1.JPEG", transform_of(symmetric, "hflip")),
    ]
    (row,) = audit(as_folder(tmp_path, members)).rows
    assert (row["path"], row["kind"], row["of_path"]) == (f"{WNIDS[0]}/sketch_1.JPEG", "augmented", members[0][0][7:])
    assert row["transform"] in ("copy", "hflip")


def test_zip_folder_and_url_give_the_same_report(tmp_path, http_server):
    members, _ = planted_members()
    archive = write_zip(tmp_path / "planted.zip", members)
    from_zip = audit(str(archive))
    assert audit(as_folder(tmp_path / "extracted", members)) == from_zip
    assert audit(http_server.serve("/ImageNet-Sketch.zip", archive)) == from_zip
    assert not [request for request in http_server.requests if request[0] == "GET" and request[2] is None]


@pytest.mark.parametrize("target", [6, 51])
def test_augments_output_is_read_back_in_the_authors_order(tmp_path, target):
    """One original: the cycle original, hflip, vflip, rot180, copy, ...; 51 files like the release's off-by-one."""
    (tmp_path / "in" / WNIDS[0]).mkdir(parents=True)
    (tmp_path / "in" / WNIDS[0] / "a.jpg").write_bytes(varied_sketch(3))
    augment(tmp_path / "in", tmp_path / "out", target=target)
    report = audit(str(tmp_path / "out"))
    cycle = ("hflip", "vflip", "rot180", "copy")
    assert [(row["path"], row["of_path"], row["transform"]) for row in report.rows] == [
        (f"{WNIDS[0]}/sketch_{n}.JPEG", f"{WNIDS[0]}/sketch_0.JPEG", cycle[(n - 1) % 4]) for n in range(1, target)
    ]
    assert report.summary == [
        {
            "wnid": WNIDS[0],
            "total": target,
            "originals": 1,
            "augmented": target - 1,
            "black": 0,
            "blank": 0,
            "unreadable": 0,
            "cross_class_duplicates": 0,
        }
    ]


def test_command_writes_both_csvs(tmp_path, capsys):
    members, expected = planted_members()
    source = write_zip(tmp_path / "planted.zip", members)
    output = tmp_path / "report" / "audit.csv"
    output.parent.mkdir()
    assert main(["audit", str(source), "--output", str(output)]) == 0
    with open(output, newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0])[:4] == ["path", "kind", "of_path", "transform"]
    assert {(row["path"], row["kind"], row["of_path"], row["transform"]) for row in rows} == expected
    with open(tmp_path / "report" / "audit_summary.csv", newline="") as file:
        summary = list(csv.DictReader(file))
    assert [row["wnid"] for row in summary] == WNIDS and summary[0]["augmented"] == "5"
    assert sorted(os.listdir(output.parent)) == ["audit.csv", "audit_summary.csv"]
    assert "44 images in 3 classes: 35 originals, 6 augmented" in capsys.readouterr().out


def test_write_report_replaces_whole_files(tmp_path):
    report = audit(str(write_zip(tmp_path / "clean.zip", clean_members())))
    (tmp_path / "a.csv").write_text("stale\n" * 100)
    write_report(report, tmp_path / "a.csv")
    assert (tmp_path / "a.csv").read_text() == "path,kind,of_path,transform,hash_distance,correlation\n"
    assert np.array([row["total"] for row in report.summary]).sum() == 33


def test_bad_sources_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for source, message in ((tmp_path / "missing.zip", "does not exist"), (tmp_path / "empty", "holds no images")):
        assert main(["audit", str(source), "--output", str(tmp_path / "a.csv")]) == 1
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and message in error
    assert not (tmp_path / "a.csv").exists()
