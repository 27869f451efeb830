"""A quick look at one class: its first images, fetched alone, laid out as a labelled contact sheet PNG.

Images come straight from the archive (`archive.py`): only the zip's central directory and the one span
of bytes holding that class are read, so a remote 7.6 GB zip costs a few MB and nothing is prepared.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.files import write_atomically
from imagenet_sketch_tools.common.images import decode
from imagenet_sketch_tools.dataset import archive
from imagenet_sketch_tools.dataset.classes import class_table, find_wnids, label_of_wnid

THUMB = 160  # the side of the square each thumbnail is fitted into
CAPTION_LINES = 2
PAD = 6
FONT_SIZE = 12
LINE_HEIGHT = FONT_SIZE + 4
TITLE_HEIGHT = 2 * LINE_HEIGHT + PAD
CELL_WIDTH = THUMB + 2 * PAD
CELL_HEIGHT = THUMB + 2 * PAD + CAPTION_LINES * LINE_HEIGHT
LISTED_MATCHES = 8


@dataclass(frozen=True)
class Peeked:
    """The first images of a class, and how many the class has in all."""

    wnid: str
    images: list[tuple[str, bytes]]  # (path `<wnid>/<file>`, stored bytes)
    class_size: int


def choose_wnid(wnid: str | None = None, name: str | None = None) -> str | None:
    """The one wnid meant by `--wnid` or `--name` (None: neither given); UserError if none or several match."""
    if wnid is not None:
        if wnid not in label_of_wnid():
            raise UserError(f"'{wnid}' is not one of the 1000 ImageNet-1k wnids; use --name to search by name")
        return wnid
    if name is None:
        return None
    matches = find_wnids(name)
    if not matches:
        raise UserError(f"no class name has the word '{name}'; try another word, or give --wnid")
    if len(matches) > 1:
        names = dict(zip(*class_table()))
        listed = "; ".join(f"{match} ({names[match]})" for match in matches[:LISTED_MATCHES])
        more = f"; and {len(matches) - LISTED_MATCHES} more" if len(matches) > LISTED_MATCHES else ""
        raise UserError(f"'{name}' matches {len(matches)} classes: {listed}{more}; pick one with --wnid")
    return matches[0]


def from_archive(location: str, wnid: str | None, count: int) -> Peeked:
    """The first `count` images of class `wnid` (default: the archive's first class) read from the archive."""
    reader = archive.open_archive(location)
    try:
        members = reader.members()
        if not members:
            raise UserError(f"'{location}' holds no images; expected sketch/<wnid>/sketch_<n>.JPEG")
        wnid = wnid or members[0].wnid
        in_class = [member for member in members if member.wnid == wnid]
        if not in_class:
            raise UserError(f"class {wnid} ({dict(zip(*class_table()))[wnid]}) has no images in '{location}'")
        images = [(member.path, content) for member, content in reader.read(in_class[:count])]
    finally:
        reader.close()
    return Peeked(wnid, images, len(in_class))


def from_dataset(dataset, wnid: str | None, count: int) -> Peeked:
    """The same from a prepared dataset (rows of a class are contiguous, in archive order)."""
    wnids = dataset.data.column("wnid").to_pylist()
    if not wnids:
        raise UserError("the prepared dataset has no rows; build it again from the archive")
    wnid = wnid or wnids[0]
    rows = [index for index, row_wnid in enumerate(wnids) if row_wnid == wnid]
    if not rows:
        raise UserError(f"class {wnid} ({dict(zip(*class_table()))[wnid]}) has no images in the prepared dataset")
    images = dataset.with_format("arrow")[rows[:count]].column("image").combine_chunks()
    return Peeked(wnid, list(zip(images.field("path").to_pylist(), images.field("bytes").to_pylist())), len(rows))


def describe(content: bytes) -> tuple[Image.Image | None, str]:
    """A decoded image (None if it cannot be decoded) and its `WxH mode` caption."""
    image, _ = decode(content)  # a decoding failure is shown on the sheet, not raised: this is an inspection tool
    if image is None:
        return None, f"{len(content):,} bytes, unreadable"
    return image, f"{image.width}x{image.height} {image.mode}"


def contact_sheet(peeked: Peeked, columns: int | None = None) -> Image.Image:
    """Thumbnails in a grid, each captioned with its file name and `WxH mode`, under a title naming the class."""
    name = class_table()[1][label_of_wnid()[peeked.wnid]]
    title = f"{peeked.wnid} (label {label_of_wnid()[peeked.wnid]}): {name}"
    shown = f"first {len(peeked.images)} of {peeked.class_size} images"
    cells = []
    for path, content in peeked.images:
        image, caption = describe(content)
        cells.append((image, [path.split("/")[-1], caption]))
    return draw_sheet(title, shown, cells, columns)


def draw_sheet(
    title: str, subtitle: str, cells: list[tuple[Image.Image | None, list[str]]], columns: int | None = None
) -> Image.Image:
    """The sheet's look: a title and a grey subtitle over a grid of thumbnails (None: an "unreadable" box),
    each with its caption lines under it. Shared with `imagenet-sketch eval`'s mistakes.png."""
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
