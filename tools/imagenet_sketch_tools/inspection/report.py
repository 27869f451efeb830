"""What `info` and `verify` say about a prepared dataset: per-class counts, the release row count, image checks."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import datasets

from imagenet_sketch_tools.common.images import decode, is_all_black
from imagenet_sketch_tools.dataset.classes import class_table
from imagenet_sketch_tools.dataset.release import RELEASE_ROWS

# Missing classes are listed by wnid and name up to this many; beyond it only their number is given.
LISTED_MISSING = 10


@dataclass(frozen=True)
class ClassCounts:
    """Images per class, over the 1000 ImageNet-1k classes."""

    per_class: dict[str, int]  # wnid -> images, only for classes with at least one image

    @property
    def missing(self) -> list[str]:
        return [wnid for wnid in class_table()[0] if wnid not in self.per_class]

    def summary(self) -> list[str]:
        if not self.per_class:
            return ["no class has any image"]
        counts = sorted(self.per_class.values())
        fewest = min(self.per_class, key=lambda wnid: (self.per_class[wnid], wnid))
        most = max(self.per_class, key=lambda wnid: (self.per_class[wnid], wnid))
        lines = [
            f"{len(self.per_class)} of 1000 classes have images; per class: min {counts[0]} ({fewest}), "
            f"median {statistics.median(counts):g}, max {counts[-1]} ({most})"
        ]
        missing = self.missing
        if not missing:
            lines.append("every class has images")
        elif len(missing) <= LISTED_MISSING:
            names = dict(zip(*class_table()))
            lines.append(f"{len(missing)} classes have no images: " + "; ".join(f"{w} ({names[w]})" for w in missing))
        else:
            lines.append(f"{len(missing)} classes have no images")
        return lines


def class_counts(wnids: Iterable[str]) -> ClassCounts:
    """Count the images of each class from the `wnid` of every row."""
    return ClassCounts(dict(Counter(wnids)))


def release_line(rows: int, sample: bool = False) -> str:
    """How `rows` compares with the published release; the sample (`--sample`, asked for) is called the sample."""
    if sample:
        return f"{rows:,} rows: the sample (a few classes; the full release has {RELEASE_ROWS:,} rows)"
    if rows == RELEASE_ROWS:
        return f"{rows:,} rows: the full release ({RELEASE_ROWS:,} rows)"
    if rows < RELEASE_ROWS:
        return f"{rows:,} rows: not the full release ({RELEASE_ROWS:,} rows; {RELEASE_ROWS - rows:,} fewer)"
    return f"{rows:,} rows: more than the release's {RELEASE_ROWS:,} ({rows - RELEASE_ROWS:,} extra)"


def describe_feature(feature: object) -> str:
    """A feature's type in a word or two: `Image`, `ClassLabel (1000 classes)`, `Value (string)`."""
    kind = type(feature).__name__
    if isinstance(feature, datasets.ClassLabel):
        return f"{kind} ({len(feature.names)} classes)"
    if isinstance(feature, datasets.Value):
        return f"{kind} ({feature.dtype})"
    return kind


@dataclass(frozen=True)
class ImageCheck:
    """The outcome of decoding one image: why it could not be decoded (None if it could), and if it is all black."""

    path: str
    unreadable: str | None
    black: bool = False


def check_image(path: str, content: bytes) -> ImageCheck:
    """Decode `content` fully with Pillow; say why it failed, or whether every pixel is 0."""
    image, unreadable = decode(content)
    return ImageCheck(path, unreadable, image is not None and is_all_black(image))


def check_images(images: Iterable[tuple[str, bytes]], workers: int = 1) -> Iterator[ImageCheck]:
    """Check every `(path, bytes)`, in order; Pillow decodes without the GIL, so threads run in parallel."""
    if workers <= 1:
        yield from (check_image(path, content) for path, content in images)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # Bounded look-ahead: map() would otherwise pull every image into memory before the first result.
        batch: list[tuple[str, bytes]] = []
        for item in images:
            batch.append(item)
            if len(batch) == 64 * workers:
                yield from pool.map(lambda pair: check_image(*pair), batch)
                batch = []
        yield from pool.map(lambda pair: check_image(*pair), batch)
