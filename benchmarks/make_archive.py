"""Make a large benchmark archive laid out like the ImageNet-Sketch release: sketch/<wnid>/sketch_<n>.JPEG.

    python benchmarks/make_archive.py /work/bench-data/bench.zip [--classes 1000 --per-class 15 --kb 165]
    python benchmarks/make_archive.py /work/bench-data/release.zip --flavour release [--per-class 51]
    python benchmarks/make_archive.py /work/bench-data/tiny-mixed.zip --per-class 100 --kb 1 --interleave

The defaults give about 2.5 GB (1000 real wnids x 15 images x ~165 KB), so fixed start-up costs amortise as
they do on the real 7.6 GB archive. How the images are made, and why it is honest:

- A pool of distinct sketch-like JPEGs (pencil strokes from `sample.sketch_jpeg`, plus paper grain: Gaussian
  noise, sigma 4) is encoded with Pillow at quality 92, sized so the mean is about --kb. Like real sketch
  JPEGs they barely shrink under DEFLATE (ratio ~0.98-0.99, printed at the end), yet DEFLATE still emits
  Huffman-coded blocks rather than stored ones, so inflating them costs what inflating the release costs.
- Every member is one pool image with a JPEG comment segment (COM, 0xFFFE) naming the member inserted right
  after the start-of-image marker. That keeps each file a valid JPEG with its own bytes and CRC, and costs
  nothing to make. Reuse cannot help any reader: a zip DEFLATEs each member on its own (32 KB window), so
  a member's compressed size and inflate cost are those of a fresh image.
- `--flavour release` makes the pool like the release's sketches instead: clean line drawings (strokes, no
  grain) on larger canvases, half grayscale and half RGB, sizes log-normal with a long tail (sigma 0.7, so a
  few images are 4-5x the mean) around ~150 KB. `--per-class 51` then gives the release's scale (51,000
  members, ~7.8 GB).
- `--modes L`, `RGB` or `gray-rgb` makes every pool image gray, colour, or gray saved as a colour JPEG (chroma
  exactly neutral, so it decodes to R = G = B), for benchmarks whose cost depends on that mix.
- `--interleave` writes the classes' images in turn (every class's first image, then every class's second...)
  instead of class after class: a zip whose classes are interleaved, which a reader must not pay for.
- Members are DEFLATED (level 6, zlib's and zip's default), written in name order with folder entries, with
  the fixed timestamp of `zipwriter.write_zip`. write_zip itself is not used because it holds every member in
  memory to sort them (2.5 GB here); this streams them instead, writing to OUT.partial and renaming at the end.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import random
import struct
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from imagenet_sketch_tools.dataset.classes import class_table
from imagenet_sketch_tools.dataset.sample import sketch_jpeg
from imagenet_sketch_tools.dataset.zipwriter import FIXED_DATE_TIME, TOP_FOLDER

POOL_SIZE = 256
GRAIN_SIGMA = 4.0
QUALITY = 92
# Measured for the images below (grain sigma 4, quality 92): JPEG bytes per pixel, to size the pool images.
BYTES_PER_PIXEL = {"L": 0.70, "RGB": 0.80}


def pool_image(seed: int, target_bytes: float, modes: str = "mixed") -> bytes:
    """A distinct sketch-like JPEG of roughly `target_bytes`: strokes on paper with grain."""
    rng = random.Random(seed)
    mode = jpeg_mode(modes, seed % 3 == 1)
    pixels = target_bytes / BYTES_PER_PIXEL[mode]
    aspect = rng.uniform(0.6, 1.6)
    size = (max(64, int(math.sqrt(pixels * aspect))), max(64, int(math.sqrt(pixels / aspect))))
    strokes = Image.open(io.BytesIO(sketch_jpeg(seed, mode, size, strokes=int(pixels // 1000) + 50)))
    ink = np.asarray(strokes, dtype=np.float32)
    grain = np.random.default_rng(seed).normal(0.0, GRAIN_SIGMA, ink.shape[:2] + ((1,) if ink.ndim == 3 else ()))
    buffer = io.BytesIO()
    image = Image.fromarray(np.clip(ink + grain, 0, 255).astype(np.uint8))
    (image.convert("RGB") if modes == "gray-rgb" else image).save(buffer, "JPEG", quality=QUALITY)
    return buffer.getvalue()


def jpeg_mode(modes: str, colour_turn: bool) -> str:
    """The canvas mode of a pool image: `mixed` alternates gray and colour sketches (colour on `colour_turn`),
    `L` and `RGB` give only one kind, and `gray-rgb` gray sketches saved as colour JPEGs (R = G = B)."""
    if modes == "mixed":
        return "RGB" if colour_turn else "L"
    return "RGB" if modes == "RGB" else "L"


def line_drawing(seed: int, target_bytes: float, modes: str = "mixed") -> bytes:
    """A distinct line-drawing JPEG (pencil strokes on clean paper) of `target_bytes` within 3%.

    How many bytes a line drawing encodes to depends on its canvas and its strokes together, so the canvas is
    found by a few damped corrections rather than from a bytes-per-pixel constant.
    """
    rng = random.Random(seed)
    mode = jpeg_mode(modes, seed % 2 == 1)
    aspect = rng.uniform(0.6, 1.6)
    pixels = target_bytes / 0.25
    content = b""
    for _ in range(6):
        size = (max(64, int(math.sqrt(pixels * aspect))), max(64, int(math.sqrt(pixels / aspect))))
        content = sketch_jpeg(seed, mode, size, strokes=int(size[0] * size[1] // 2500) + 40)
        if abs(len(content) / target_bytes - 1) < 0.03:
            break
        pixels *= (target_bytes / len(content)) ** 0.7
    return as_colour_jpeg(content) if modes == "gray-rgb" else content


def as_colour_jpeg(content: bytes) -> bytes:
    """A gray JPEG re-encoded as a three-channel one: neutral chroma, so it decodes to R = G = B."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(content)).convert("RGB").save(buffer, "JPEG", quality=QUALITY)
    return buffer.getvalue()


def make_pool(kb: float, count: int = POOL_SIZE, flavour: str = "grain", modes: str = "mixed") -> list[bytes]:
    """`count` distinct JPEGs whose sizes spread around `kb` KB (log-normal, as real image sizes do)."""
    rng = random.Random(2019)
    if flavour == "release":
        spread = [math.exp(rng.gauss(0, 0.7)) for _ in range(count)]
        # Scaled so the pool's mean is exactly `kb`: the archive's mean then is too, whatever the draw.
        return [line_drawing(seed, kb * 1024 * share * count / sum(spread), modes) for seed, share in enumerate(spread)]
    return [pool_image(seed, kb * 1024 * math.exp(rng.gauss(-0.08, 0.4)), modes) for seed in range(count)]


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The same JPEG with a comment segment after its start-of-image marker: still valid, other bytes."""
    comment = text.encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + jpeg[2:]


def member_order(wnids: list[str], per_class: int, interleave: bool) -> list[tuple[int, int, str]]:
    """(class index, index in class, member name) in the order written: class after class, as the release and
    write_zip write them, or with `interleave` each class's n-th image in turn (round robin over the classes),
    as a zip appended to class by class in rounds would be."""
    # Name order within a class, as write_zip writes: sketch_10 comes before sketch_2.
    names = sorted(f"sketch_{n}.JPEG" for n in range(per_class))
    order = [(c, n, f"{TOP_FOLDER}/{wnid}/{name}") for c, wnid in enumerate(wnids) for n, name in enumerate(names)]
    return sorted(order, key=lambda member: (member[1], member[0])) if interleave else order


def write_archive(output: Path, wnids: list[str], per_class: int, pool: list[bytes], interleave: bool = False) -> dict:
    """Stream the members into OUT.partial, rename to OUT; return the archive's figures."""
    partial = output.with_name(output.name + ".partial")
    total_bytes = 0
    compressed_bytes = 0
    started = time.perf_counter()
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_info(f"{TOP_FOLDER}/", directory=True), b"")
        for wnid in wnids:
            archive.writestr(_info(f"{TOP_FOLDER}/{wnid}/", directory=True), b"")
        for written, (class_index, n, member) in enumerate(member_order(wnids, per_class, interleave), 1):
            content = with_comment(pool[(class_index * per_class + n) % len(pool)], member)
            archive.writestr(_info(member), content)
            total_bytes += len(content)
            compressed_bytes += archive.getinfo(member).compress_size
            if written % (50 * per_class) == 0:
                print(f"  {written:,}/{len(wnids) * per_class:,} images, {total_bytes / 1e9:.2f} GB", file=sys.stderr)
    os.replace(partial, output)
    return {
        "path": str(output),
        "classes": len(wnids),
        "images": len(wnids) * per_class,
        "archive_bytes": output.stat().st_size,
        "image_bytes": total_bytes,
        "mean_image_kb": total_bytes / 1024 / (len(wnids) * per_class),
        "deflate_ratio": compressed_bytes / total_bytes,
        "write_seconds": time.perf_counter() - started,
    }


def _info(name: str, directory: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
    info.compress_type = zipfile.ZIP_STORED if directory else zipfile.ZIP_DEFLATED
    info.external_attr = (0o40755 << 16 | 0x10) if directory else 0o644 << 16
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("output", type=Path, help="where to write the zip (outside the repository)")
    parser.add_argument("--classes", type=int, default=1000, help="how many of the 1000 wnids, in label order")
    parser.add_argument("--per-class", type=int, default=15, help="images per class")
    parser.add_argument("--kb", type=float, default=None, help="mean JPEG size in KB (default 165, release: 150)")
    parser.add_argument(
        "--flavour", choices=("grain", "release"), default="grain", help="grainy scans, or release-like line drawings"
    )
    parser.add_argument(
        "--modes",
        choices=("mixed", "L", "RGB", "gray-rgb"),
        default="mixed",
        help="mixed: gray and colour JPEGs (grain: 2:1, release: 1:1); L or RGB: one kind only; gray-rgb: gray "
        "sketches saved as colour JPEGs (default: mixed)",
    )
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="write each class's n-th image in turn (round robin over the classes) instead of class after class",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.classes <= 1000:
        parser.error("--classes must be between 1 and 1000")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    pool = make_pool(args.kb or (150 if args.flavour == "release" else 165), flavour=args.flavour, modes=args.modes)
    print(f"pool of {len(pool)} JPEGs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    wnids = list(class_table()[0][: args.classes])
    figures = write_archive(args.output, wnids, args.per_class, pool, args.interleave)
    print(
        f"wrote {figures['path']}: {figures['images']:,} images in {figures['classes']} classes, "
        f"{figures['archive_bytes'] / 1e9:.2f} GB, mean {figures['mean_image_kb']:.0f} KB per image, "
        f"DEFLATE ratio {figures['deflate_ratio']:.3f}, in {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
