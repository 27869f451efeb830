"""Stage 3 of the pipeline: fill every class to the target count the way the authors did, deterministically.

The authors' rule (issue #5): keep the readable images whose mean grayscale pixel value is above 0, numbered
from 0 in sorted file-name order; while the class has fewer than the target, append horizontal flips of the kept
images in order, then vertical flips, then 180-degree rotations, then plain copies, repeating that cycle. One
original and target 6 gives: original, hflip, vflip, rot180, copy, hflip. Their loop wrote up to target + 1
files; this one writes exactly the target. A class with more kept images than the target keeps the first `target`
in file-name order (the release never holds more than 51 per class) and records the rest as dropped.

Decisions:
- IN_DIR is either collect's output (`IN_DIR/raw/<wnid>/<file>`, manifest `IN_DIR/manifest.jsonl`) or a plain
  folder of `<wnid>/` image folders (manifest optional). Rejected images are `Manifest(IN_DIR).rejected()`, paths
  relative to IN_DIR. Every regular file of a class folder is a candidate; what Pillow cannot read is dropped.
- Dropped images (unreadable, or all black: grayscale mean 0, or kept but beyond the target: "over target") are
  recorded as `augment_drop` rows with a reason.
  A class with no kept image is reported and gets no folder: nothing is invented.
- An original that is already a JPEG in mode L or RGB is copied byte for byte, untouched (as the release's
  files are the authors' downloads). Any other original (PNG, GIF, CMYK JPEG, ...) is flattened onto white and
  encoded as JPEG. Transforms are computed on the original's pixels as a viewer shows them (EXIF orientation
  applied, as `datasets` does when decoding) and encoded with fixed settings, so a run gives the same bytes
  every time (given the same Pillow). A `copy` is the original's output bytes again.
- Each output is written under a hidden temporary name and renamed, and only when its bytes differ from what is
  there: a rerun rewrites nothing and appends no manifest row it already has, and an interrupted run leaves no
  half-written file. Stale `sketch_<n>.JPEG` beyond a class's new count (e.g. after more rejects) are removed.
- Rows `augment` in `OUT_DIR/manifest.jsonl`: output (`<wnid>/sketch_<n>.JPEG`, relative to OUT_DIR), source
  (relative to IN_DIR, as in collect's manifest), transform, original (the output holding the source), sha256.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.files import write_atomically
from imagenet_sketch_tools.common.images import decode, has_zero_mean
from imagenet_sketch_tools.dataset.classes import label_of_wnid
from imagenet_sketch_tools.pipeline.manifest import Manifest

TRANSFORMS = ("hflip", "vflip", "rot180", "copy")
OVER_TARGET = "over target"
DEFAULT_TARGET = 50
JPEG_QUALITY = 95
OUTPUT_NAME = re.compile(r"^sketch_(\d+)\.JPEG$")


@dataclass(frozen=True)
class Original:
    """A kept image: `source` relative to IN_DIR, `image` its pixels as shown (mode L or RGB), `content` its bytes."""

    source: str
    image: Image.Image
    content: bytes
    is_plain_jpeg: bool


@dataclass
class Summary:
    classes: int = 0
    originals: int = 0
    augmented: int = 0
    written: int = 0
    dropped: list[tuple[str, str]] = field(default_factory=list)
    empty_classes: list[str] = field(default_factory=list)


def fill_plan(count: int, target: int) -> list[tuple[int, str]]:
    """`(original index, transform)` for each output, in output order: the first `target` originals, then the cycle."""
    plan = [(index, "original") for index in range(min(count, target))]
    for step in range(max(0, target - count) if count else 0):
        plan.append((step % count, TRANSFORMS[(step // count) % len(TRANSFORMS)]))
    return plan


def transformed(image: Image.Image, transform: str) -> Image.Image:
    if transform == "hflip":
        return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if transform == "vflip":
        return image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    if transform == "rot180":
        return image.transpose(Image.Transpose.ROTATE_180)
    if transform in ("copy", "original"):
        return image
    raise ValueError(f"unknown transform {transform!r}")


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False)
    return buffer.getvalue()


def flattened(image: Image.Image) -> Image.Image:
    """Mode L or RGB; transparency composited onto white paper (a transparent sketch is not black)."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("L", "RGB"):
        return image
    if image.mode in ("1", "I", "I;16", "F"):
        return image.convert("L")
    if (image.mode == "P" and "transparency" in image.info) or image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, "white")
        return Image.alpha_composite(paper, rgba).convert("RGB")
    return image.convert("RGB")


def load_original(source: str, content: bytes) -> tuple[Original | None, str]:
    """The kept image, or None and why it is dropped."""
    opened, unreadable = decode(content)
    if opened is None:
        return None, f"unreadable: {unreadable}"[:200]
    is_plain_jpeg = opened.format == "JPEG" and opened.mode in ("L", "RGB")
    image = flattened(opened)
    if has_zero_mean(image):
        return None, "black: mean pixel value is 0"
    return Original(source, image, content, is_plain_jpeg), ""


def class_folders(in_dir: Path) -> tuple[Path, list[Path]]:
    """The folder the sources' paths are relative to, and the class folders: collect's `raw/` or plain."""
    if not in_dir.is_dir():
        raise UserError(f"input folder '{in_dir}' does not exist; give collect's output folder or a folder of <wnid>/")
    images_root = in_dir / "raw" if (in_dir / "raw").is_dir() else in_dir
    folders = sorted(path for path in images_root.iterdir() if path.is_dir() and not path.name.startswith("."))
    for folder in folders:
        if folder.name not in label_of_wnid():
            raise UserError(
                f"folder '{folder}' is not named by an ImageNet-1k wnid; remove or rename it "
                "(expected IN_DIR/<wnid>/ or IN_DIR/raw/<wnid>/)"
            )
    if not folders:
        raise UserError(f"no class folders in '{in_dir}'; expected IN_DIR/<wnid>/<file> or IN_DIR/raw/<wnid>/<file>")
    return images_root, folders


def candidate_files(folder: Path) -> list[Path]:
    return sorted(
        (path for path in folder.iterdir() if path.is_file() and not path.name.startswith(".")),
        key=lambda path: path.name,
    )


def class_outputs(originals: list[Original], target: int) -> Iterator[tuple[int, int, str, bytes]]:
    """`(output number, original index, transform, bytes)` for each output of a class, in order."""
    encoded_originals = [
        original.content if original.is_plain_jpeg else jpeg_bytes(original.image) for original in originals
    ]
    for n, (index, transform) in enumerate(fill_plan(len(originals), target)):
        original = originals[index]
        if transform in ("original", "copy"):
            content = encoded_originals[index]
        else:
            content = jpeg_bytes(transformed(original.image, transform))
        yield n, index, transform, content


def write_if_changed(path: Path, content: bytes) -> bool:
    """Put `content` at `path` through a hidden temporary name; False if it was already there."""
    if path.is_file() and path.stat().st_size == len(content) and path.read_bytes() == content:
        return False
    write_atomically(path, content)
    return True


def remove_stale(folder: Path, count: int) -> None:
    for path in folder.iterdir():
        match = OUTPUT_NAME.match(path.name)
        if match and int(match.group(1)) >= count:
            path.unlink()


class ManifestWriter:
    """Appends a row only if it differs from the latest row already recorded for the same key."""

    def __init__(self, manifest: Manifest):
        self.manifest = manifest
        self.latest = {
            self._key(row): self._fields(row) for row in manifest.rows() if row["event"].startswith("augment")
        }

    @staticmethod
    def _key(row: dict) -> tuple[str, str]:
        return row["event"], row.get("output") or row["source"]  # every augment row has one or both

    @staticmethod
    def _fields(row: dict) -> dict:
        return {name: value for name, value in row.items() if name not in ("event", "time")}

    def append(self, event: str, **fields: str) -> None:
        key = (event, fields.get("output") or fields["source"])
        if self.latest.get(key) != fields:
            self.manifest.append(event, **fields)
            self.latest[key] = fields


def augment_class(
    in_dir: Path, folder: Path, out_dir: Path, target: int, rejected: set[str], log: ManifestWriter
) -> tuple[int, int, int, list[tuple[str, str]]]:
    """Write one class; return (originals, augmented, files written, dropped (source, reason))."""
    originals, dropped = [], []
    for path in candidate_files(folder):
        source = path.relative_to(in_dir).as_posix()
        if source in rejected:
            continue
        original, reason = load_original(source, path.read_bytes())
        if original is None:
            dropped.append((source, reason))
            log.append("augment_drop", source=source, reason=reason)
        else:
            originals.append(original)
    for original in originals[target:]:  # the rule is exactly the target: the first ones in file-name order stay
        dropped.append((original.source, OVER_TARGET))
        log.append("augment_drop", source=original.source, reason=OVER_TARGET)
    originals = originals[:target]
    class_dir = out_dir / folder.name
    if not originals:
        if class_dir.is_dir():
            remove_stale(class_dir, 0)  # a class emptied by new rejects must not keep its old images
        return 0, 0, 0, dropped
    class_dir.mkdir(parents=True, exist_ok=True)
    written = count = 0
    for n, index, transform, content in class_outputs(originals, target):
        written += write_if_changed(class_dir / f"sketch_{n}.JPEG", content)
        log.append(
            "augment",
            output=f"{folder.name}/sketch_{n}.JPEG",
            source=originals[index].source,
            transform=transform,
            original=f"{folder.name}/sketch_{index}.JPEG",
            sha256=hashlib.sha256(content).hexdigest(),
        )
        count += 1
    remove_stale(class_dir, count)
    return len(originals), count - len(originals), written, dropped


def augment(
    in_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    target: int = DEFAULT_TARGET,
    progress: Callable[[list[Path]], Iterable[Path]] | None = None,
) -> Summary:
    """Fill every class of `in_dir` to `target` images into `out_dir/<wnid>/sketch_<n>.JPEG`."""
    if target < 1:
        raise UserError(f"--target must be at least 1, not {target}")
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    images_root, folders = class_folders(in_dir)
    if out_dir.resolve() == images_root.resolve():
        raise UserError(f"output folder '{out_dir}' is the input's image folder; choose another OUT_DIR")
    rejected = Manifest(in_dir).rejected()
    log = ManifestWriter(Manifest(out_dir))
    summary = Summary()
    for folder in progress(folders) if progress else folders:
        originals, augmented, written, dropped = augment_class(in_dir, folder, out_dir, target, rejected, log)
        summary.dropped += dropped
        if not originals:
            summary.empty_classes.append(folder.name)
            continue
        summary.classes += 1
        summary.originals += originals
        summary.augmented += augmented
        summary.written += written
    return summary
