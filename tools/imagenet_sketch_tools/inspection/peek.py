"""A quick look at one class: its first images, fetched alone, laid out as a labelled contact sheet PNG.

Images come straight from the archive (`archive.py`): only the zip's central directory and the one span
of bytes holding that class are read, so a remote 7.6 GB zip costs a few MB and nothing is prepared.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.sheet import describe, draw_sheet
from imagenet_sketch_tools.common.sheet import write_png as write_png  # the peek command writes the sheet with it
from imagenet_sketch_tools.dataset import archive
from imagenet_sketch_tools.dataset.classes import class_table, find_wnids, label_of_wnid

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
