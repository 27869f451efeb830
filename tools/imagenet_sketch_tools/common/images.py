"""Decoding an image, or saying why it cannot be decoded, and the rules for images that show no sketch.

Every stage that opens an image (verify, peek, collect, review, augment, audit) goes through `decode`, so each
treats the same bytes as readable or not, for the same reason. What counts as black differs on purpose, and the
three rules live here side by side:
- `is_all_black`: every channel of every pixel is 0 (verify reports these; the release has some);
- `has_zero_mean`: the authors' augment rule, grayscale mean 0 (kept exactly as they wrote it);
- `tone`: the looser "is there a sketch here at all?" of review and audit (black, or blank: nearly uniform).
"""

from __future__ import annotations

import io
import os
import warnings

from PIL import Image, ImageStat

# The brightest pixel of an all-black JPEG stays this dark, encoding noise included.
BLACK_MAX_LEVEL = 16
# Below this grayscale standard deviation a page is nearly uniform (e.g. empty white): its perceptual hash is
# noise, the same for every such page.
BLANK_MAX_STDDEV = 2.0


def decode(
    content: bytes | str | os.PathLike[str] | None, draft: tuple[str, tuple[int, int]] | None = None
) -> tuple[Image.Image | None, str | None]:
    """`(image, None)` with the image fully decoded, or `(None, why)` with one line saying why it cannot be.

    `content` is the file's bytes or its path. `draft` (mode, size) lets a JPEG decode at a reduced scale when
    only a thumbnail is needed. The image keeps the `format` Pillow found.
    """
    if content is None or (isinstance(content, bytes | bytearray | memoryview) and not content):
        return None, "empty (0 bytes)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # EXIF and palette warnings are not failures
            image = Image.open(io.BytesIO(content) if isinstance(content, bytes | bytearray | memoryview) else content)
            if draft:
                image.draft(*draft)
            image.load()
            return image, None
    except Image.UnidentifiedImageError:
        if isinstance(content, bytes | bytearray | memoryview):
            size = f"{len(content):,} bytes, starting {bytes(content[:12])!r}"
        else:
            size = "not an image file"
        return None, f"not an image Pillow can identify ({size})"
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, bomb errors... for damaged files
        return None, f"{type(error).__name__}: {' '.join(str(error).split())}"


def is_all_black(image: Image.Image) -> bool:
    """True if every colour channel of every pixel is 0 (alpha, if any, is not looked at)."""
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    return image.getbbox() is None  # the box around pixels with a non-zero channel; None when there are none


def has_zero_mean(image: Image.Image) -> bool:
    """The authors' augment rule for a black image: its mean grayscale pixel value is 0."""
    return ImageStat.Stat(image.convert("L")).mean[0] <= 0


def tone(gray: Image.Image) -> str | None:
    """ "black" or "blank" for a grayscale image that shows no sketch, None for one that does."""
    stat = ImageStat.Stat(gray)
    if stat.extrema[0][1] <= BLACK_MAX_LEVEL:
        return "black"
    if stat.stddev[0] < BLANK_MAX_STDDEV:
        return "blank"
    return None
