"""Archives in the release layout, made at test time."""

from __future__ import annotations

import zipfile
from pathlib import Path

from imagenet_sketch_tools.dataset.sample import sketch_jpeg


def write_zip(path: Path, members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """A zip with exactly these members, in this order (unlike the packager, which sorts)."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return path


def class_members(wnids: list[str], per_class: int = 3, top: str = "sketch") -> list[tuple[str, bytes]]:
    """`per_class` small sketches per wnid, named like the release."""
    return [
        (
            f"{top}/{wnid}/sketch_{n}.JPEG",
            sketch_jpeg(seed=i * 100 + n, mode="RGB" if n % 2 else "L", size=(48, 40)),
        )
        for i, wnid in enumerate(wnids)
        for n in range(per_class)
    ]
