"""What counts as a black or a blank image, for the stages that flag or classify them (review, audit).

`verify` reports the strictly all-black (every channel 0) and `augment` keeps the authors' own rule (mean pixel
above 0); these two thresholds are for the looser question "is there a sketch here at all?".
"""

from __future__ import annotations

from PIL import Image, ImageStat

# The brightest pixel of an all-black JPEG stays this dark, encoding noise included.
BLACK_MAX_LEVEL = 16
# Below this grayscale standard deviation a page is nearly uniform (e.g. empty white): its perceptual hash is
# noise, the same for every such page.
BLANK_MAX_STDDEV = 2.0


def tone(gray: Image.Image) -> str | None:
    """ "black" or "blank" for a grayscale image that shows no sketch, None for one that does."""
    stat = ImageStat.Stat(gray)
    if stat.extrema[0][1] <= BLACK_MAX_LEVEL:
        return "black"
    if stat.stddev[0] < BLANK_MAX_STDDEV:
        return "blank"
    return None
