"""The contact sheet's look, shared by `imagenet-sketch peek` (a class's first images) and `imagenet-sketch
eval`'s mistakes.png: thumbnails in a grid under a title, each with caption lines, written as a PNG."""

from __future__ import annotations

import io
import math
import os

from PIL import Image, ImageDraw, ImageFont

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.files import write_atomically
from imagenet_sketch_tools.common.images import decode

THUMB = 160  # the side of the square each thumbnail is fitted into
CAPTION_LINES = 2
PAD = 6
FONT_SIZE = 12
LINE_HEIGHT = FONT_SIZE + 4
TITLE_HEIGHT = 2 * LINE_HEIGHT + PAD
CELL_WIDTH = THUMB + 2 * PAD
CELL_HEIGHT = THUMB + 2 * PAD + CAPTION_LINES * LINE_HEIGHT


def describe(content: bytes) -> tuple[Image.Image | None, str]:
    """A decoded image (None if it cannot be decoded) and its `WxH mode` caption."""
    image, _ = decode(content)  # a decoding failure is shown on the sheet, not raised: this is an inspection tool
    if image is None:
        return None, f"{len(content):,} bytes, unreadable"
    return image, f"{image.width}x{image.height} {image.mode}"


def draw_sheet(
    title: str, subtitle: str, cells: list[tuple[Image.Image | None, list[str]]], columns: int | None = None
) -> Image.Image:
    """The sheet's look: a title and a grey subtitle over a grid of thumbnails (None: an "unreadable" box),
    each with its caption lines under it."""
    font = _font()
    count = max(len(cells), 1)
    # At least four across (a row of a few is easier to scan than a square with holes), square beyond 16.
    columns = columns or min(count, max(4, math.ceil(math.sqrt(count))))
    rows = math.ceil(count / columns)
    lines = max([CAPTION_LINES, *(len(caption) for _, caption in cells)])
    cell_height = CELL_HEIGHT + (lines - CAPTION_LINES) * LINE_HEIGHT
    sheet = Image.new("RGB", (columns * CELL_WIDTH, TITLE_HEIGHT + rows * cell_height), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((PAD, PAD // 2), _fit(draw, title, sheet.width - 2 * PAD, font), fill="black", font=font)
    draw.text((PAD, PAD // 2 + LINE_HEIGHT), subtitle, fill="dimgray", font=font)
    for index, (image, caption) in enumerate(cells):
        left = (index % columns) * CELL_WIDTH + PAD
        top = TITLE_HEIGHT + (index // columns) * cell_height + PAD
        if image is None:
            draw.rectangle([left, top, left + THUMB - 1, top + THUMB - 1], fill="lightgray", outline="red")
            draw.text((left + PAD, top + THUMB // 2 - FONT_SIZE), "unreadable", fill="red", font=font)
        else:
            thumbnail = image.convert("RGB")
            thumbnail.thumbnail((THUMB, THUMB))
            sheet.paste(thumbnail, (left + (THUMB - thumbnail.width) // 2, top + (THUMB - thumbnail.height) // 2))
            draw.rectangle([left - 1, top - 1, left + THUMB, top + THUMB], outline="lightgray")
        for line_index, text in enumerate(caption):
            position = (left, top + THUMB + 2 + line_index * LINE_HEIGHT)
            draw.text(position, _fit(draw, text, THUMB, font), fill="black", font=font)
    return sheet


def write_png(image: Image.Image, output: str | os.PathLike) -> None:
    """Write a PNG through `files.write_atomically`: `output` is never half-written."""
    output = os.path.abspath(output)
    directory = os.path.dirname(output)
    if not os.path.isdir(directory):
        raise UserError(f"folder '{directory}' does not exist; create it or choose another --output")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    write_atomically(output, buffer.getvalue())


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font) -> str:
    """`text`, shortened with an ellipsis in the middle until it fits `width` pixels."""
    for keep in range(len(text), 0, -1):
        head = (keep + 1) // 2
        candidate = text if keep == len(text) else text[:head] + "…" + text[len(text) - (keep - head) :]
        if draw.textlength(candidate, font=font) <= width:
            return candidate
    return "…"
