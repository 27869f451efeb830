"""Stage 5 of the pipeline: which images of an archive are originals, and which are flips, rotations or copies.

Works on any archive in the release layout (zip, folder or zip URL, read with `archive.open_archive`), one class
at a time, so the full release (50,889 images) needs only one class in memory.

Rows of the CSV (`path,kind,of_path,transform,hash_distance,correlation`; paths are `<wnid>/<file>`):
- `augmented`: `path` is `transform` (hflip, vflip, rot180 or copy) of `of_path`, an original of the same class.
- `black`: every pixel is black (within JPEG noise); no of_path. Not compared with anything else.
- `blank`: nearly uniform (grayscale standard deviation below `tone.BLANK_MAX_STDDEV`), e.g. an empty white page.
  Perceptual hashes of such images are noise and collide, so they are flagged and not compared either.
- `unreadable`: Pillow cannot decode it.
- `cross_class_duplicate`: the same bytes (sha256) as `of_path`, the first such image in an earlier class.
An image has at most one of the first four kinds, and may also be a cross_class_duplicate.

How a class is read: images in archive order (by the number in the file name), the lowest-numbered image being
the original, as augment (and the authors) write originals first. Each image is compared with the originals
before it, never with itself (an image equal to its own flip is not its own copy), and only with originals,
since a flip of a flip is again one of the four transforms of the original. A match needs both
- a perceptual hash (imagehash.phash, 64 bits) of the image within HASH_DISTANCE bits of the hash of the original's
  transform, and
- a Pearson correlation of at least MIN_CORRELATION between the image's 64x64 grayscale thumbnail and the
  original's transformed thumbnail; normalised by the thumbnails' spread, so mostly-white sketches whose hashes
  happen to be close are not taken for each other.
Exact byte copies are `copy`; an exact copy of an augmented image is reported as what that image is (e.g. the
second hflip of sketch_0, which the authors' cycle writes byte-identical to the first, is `hflip` of sketch_0).
When several transforms match (a symmetric original), the best correlation wins, ties in transform order; both
answers are then true. The per-class summary (`<stem>_summary.csv`) counts originals, augmented, black, blank,
unreadable and cross-class duplicates; classes of 51 images (the authors' off-by-one) read like any other.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.files import write_atomically
from imagenet_sketch_tools.common.images import decode, tone
from imagenet_sketch_tools.dataset import archive

TRANSFORMS = ("copy", "hflip", "vflip", "rot180")
HASH_DISTANCE = 12
MIN_CORRELATION = 0.9
THUMB = 64
COLUMNS = ("path", "kind", "of_path", "transform", "hash_distance", "correlation")
SUMMARY_COLUMNS = (
    "wnid",
    "total",
    "originals",
    "augmented",
    "black",
    "blank",
    "unreadable",
    "cross_class_duplicates",
)


@dataclass
class Features:
    """What an image is compared by: `status` ok/black/blank/unreadable; hashes and thumbnails per transform."""

    path: str
    sha256: str
    status: str
    # (4, 64) bool and (4, THUMB*THUMB) float (centred, unit norm), one row per TRANSFORMS entry; no rows unless ok
    hashes: np.ndarray = field(default_factory=lambda: np.zeros((0, 64), bool))
    thumbs: np.ndarray = field(default_factory=lambda: np.zeros((0, THUMB * THUMB)))


@dataclass
class Report:
    rows: list[dict] = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)


def transposed(array: np.ndarray, transform: str) -> np.ndarray:
    return {
        "copy": lambda a: a,
        "hflip": np.fliplr,
        "vflip": np.flipud,
        "rot180": lambda a: np.flipud(np.fliplr(a)),
    }[transform](array)


def imported_imagehash():
    try:
        import imagehash
    except ImportError:
        raise UserError("audit needs imagehash: pip install 'imagenet-sketch[pipeline]'") from None
    return imagehash


def features(path: str, content: bytes) -> Features:
    imagehash = imported_imagehash()
    sha256 = hashlib.sha256(content).hexdigest()
    # JPEGs decode at a reduced scale: a 64x64 thumbnail needs no more, and it is several times faster.
    image, _ = decode(content, draft=("L", (THUMB, THUMB)))
    if image is None:
        return Features(path, sha256, "unreadable")
    gray = ImageOps.exif_transpose(image).convert("L")
    if found := tone(gray):
        return Features(path, sha256, found)
    small = gray.resize((32, 32), Image.Resampling.LANCZOS)
    thumb = np.asarray(gray.resize((THUMB, THUMB), Image.Resampling.LANCZOS), dtype=np.float64)
    hashes, thumbs = [], []
    for transform in TRANSFORMS:
        flipped = Image.fromarray(transposed(np.asarray(small), transform))
        hashes.append(imagehash.phash(flipped).hash.flatten())
        centred = transposed(thumb, transform).flatten() - thumb.mean()
        thumbs.append(centred / (np.linalg.norm(centred) or 1.0))
    return Features(path, sha256, "ok", np.array(hashes), np.array(thumbs))


def best_match(image: Features, originals: list[Features]) -> tuple[int, int, int, float] | None:
    """(original index, transform index, hash distance, correlation) of the best match, or None."""
    if not originals:
        return None
    hashes = np.stack([original.hashes for original in originals])  # (n, 4, 64)
    thumbs = np.stack([original.thumbs for original in originals])  # (n, 4, pixels)
    distances = np.count_nonzero(hashes != image.hashes[0], axis=-1)  # (n, 4)
    correlations = thumbs @ image.thumbs[0]  # (n, 4)
    matches = (distances <= HASH_DISTANCE) & (correlations >= MIN_CORRELATION)
    if not matches.any():
        return None
    # Highest correlation; argmax takes the first of equals: the earliest original, then transform order.
    flat = int(np.argmax(np.where(matches, correlations, -np.inf)))
    original, transform = divmod(flat, len(TRANSFORMS))
    return original, transform, int(distances[original, transform]), float(correlations[original, transform])


def audit_class(images: list[tuple[str, bytes]], first_of_sha: dict[str, str]) -> tuple[list[dict], dict]:
    """The rows and the summary of one class; `first_of_sha` (sha256 -> path, all classes so far) is updated."""
    rows, counts = [], Counter()
    originals: list[Features] = []
    origin: dict[str, tuple[str, str, int, float]] = {}  # sha256 -> (original path, transform, distance, corr)
    wnid = images[0][0].split("/")[0]
    for path, content in images:
        image = features(path, content)
        if image.status != "ok":
            rows.append(row(path, image.status))
            counts[image.status] += 1
        elif image.sha256 in origin:
            rows.append(row(path, "augmented", *origin[image.sha256]))
            counts["augmented"] += 1
        elif match := best_match(image, originals):
            index, transform, distance, correlation = match
            origin[image.sha256] = (originals[index].path, TRANSFORMS[transform], distance, correlation)
            rows.append(row(path, "augmented", *origin[image.sha256]))
            counts["augmented"] += 1
        else:
            originals.append(image)
            origin[image.sha256] = (path, "copy", 0, 1.0)
            counts["originals"] += 1
        first = first_of_sha.setdefault(image.sha256, path)
        if first.split("/")[0] != wnid:
            rows.append(row(path, "cross_class_duplicate", first))
            counts["cross_class_duplicates"] += 1
    summary = {"wnid": wnid, "total": len(images), **{name: counts[name] for name in SUMMARY_COLUMNS[2:]}}
    return rows, summary


def row(
    path: str, kind: str, of_path: str = "", transform: str = "", distance: int | str = "", corr: float | str = ""
) -> dict:
    correlation = f"{corr:.4f}" if isinstance(corr, float) else corr
    return dict(zip(COLUMNS, (path, kind, of_path, transform, distance, correlation)))


def audit(location: str, progress: Callable[[Iterable], Iterable] | None = None) -> Report:
    """Audit the archive at `location` (zip, folder or zip URL), class by class."""
    reader = archive.open_archive(location)
    report, first_of_sha = Report(), {}
    try:
        classes = archive.by_class(reader.members())
        if not classes:
            raise UserError(f"'{location}' holds no images; expected sketch/<wnid>/<file> or <wnid>/<file>")
        for members in progress(classes) if progress else classes:
            images = [(member.path, content) for member, content in reader.read(members)]
            rows, summary = audit_class(images, first_of_sha)
            report.rows += rows
            report.summary.append(summary)
    finally:
        reader.close()
    return report


def summary_path(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output.with_name(f"{output.stem}_summary{output.suffix or '.csv'}")


def write_csv(path: str | os.PathLike, columns: Iterable[str], rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, text.getvalue())


def write_report(report: Report, output: str | os.PathLike) -> Path:
    """The rows to `output`, the per-class summary to `<stem>_summary.csv` beside it; returns the latter's path."""
    write_csv(output, COLUMNS, report.rows)
    write_csv(summary_path(output), SUMMARY_COLUMNS, report.summary)
    return summary_path(output)
