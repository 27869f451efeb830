"""The embedded sample: a small archive laid out exactly like the release, generated deterministically.

Classes are chosen for what they exercise: the two `crane` and the two `maillot` wnids (same words,
distinct labels), a class with an all-black image (as `n03085013/sketch_3.JPEG` is in the release),
and a class with more than ten images (so `sketch_2` must sort before `sketch_10`).
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

from PIL import Image, ImageDraw

from imagenet_sketch_tools.common.files import cache_folder
from imagenet_sketch_tools.dataset.zipwriter import TOP_FOLDER, write_zip

SAMPLE_CLASSES = {
    "n01440764": 12,  # tench
    "n02012849": 4,  # crane (the bird)
    "n03085013": 5,  # computer keyboard; sketch_3 is all black, as in the release
    "n03126707": 4,  # crane (the machine)
    "n03710637": 3,  # maillot
    "n03710721": 3,  # maillot, tank suit
}
BLACK_IMAGES = {("n03085013", 3)}
SAMPLE_NAME = "ImageNet-Sketch-sample.zip"


def sketch_jpeg(seed: int, mode: str = "L", size: tuple[int, int] = (160, 120), strokes: int = 24) -> bytes:
    """A sketch-like JPEG: dark pencil strokes on white paper, the same bytes for the same arguments."""
    rng = random.Random(seed)
    image = Image.new(mode, size, "white")
    draw = ImageDraw.Draw(image)
    width, height = size
    for _ in range(strokes):
        ink = rng.randrange(0, 90)
        colour = ink if mode == "L" else (ink, ink, ink + rng.randrange(0, 40))
        box = sorted(rng.sample(range(width), 2)), sorted(rng.sample(range(height), 2))
        corners = [box[0][0], box[1][0], box[0][1], box[1][1]]
        if rng.random() < 0.5:
            draw.line(corners, fill=colour, width=rng.randrange(1, 4))
        else:
            draw.arc(corners, rng.randrange(360), rng.randrange(360), fill=colour, width=rng.randrange(1, 3))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=rng.randrange(70, 95))
    return buffer.getvalue()


def black_jpeg(mode: str = "RGB", size: tuple[int, int] = (160, 120)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, "black").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def sample_members() -> list[tuple[str, bytes]]:
    """The sample's `(member name, JPEG bytes)` pairs, in the release's `sketch/<wnid>/sketch_<n>.JPEG` layout."""
    members = []
    for class_index, (wnid, count) in enumerate(sorted(SAMPLE_CLASSES.items())):
        for n in range(count):
            seed = class_index * 1000 + n
            mode = "RGB" if n % 3 == 1 else "L"
            size = (120 + 8 * (seed % 7), 96 + 8 * (seed % 5))
            content = black_jpeg(mode, size) if (wnid, n) in BLACK_IMAGES else sketch_jpeg(seed, mode, size)
            members.append((f"{TOP_FOLDER}/{wnid}/sketch_{n}.JPEG", content))
    return members


def sample_archive(directory: str | os.PathLike | None = None) -> str:
    """Path of the sample zip, written into `directory` (default: a cache folder) if not there yet."""
    path = Path(directory or cache_folder()) / SAMPLE_NAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_zip(sample_members(), path)
    return str(path)
