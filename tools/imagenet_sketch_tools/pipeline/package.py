"""Stage 4 of the pipeline: write an archive in the release layout, deterministically (same inputs, same sha256).

The archive is written by `dataset.zipwriter.write_zip` (sorted members, fixed timestamps). `package_folder` is
the `package` command: it takes `DIR/<wnid>/<file>` or `DIR/sketch/<wnid>/<file>` (augment's output, or an
extracted release) and names the members `sketch/<wnid>/<file>`, reading each file only when it is written, so
the full 7.6 GB release never sits in memory. It also writes `ZIP.sha256` (in `sha256sum` format) so a copy can
be checked with `sha256sum -c`.
"""

from __future__ import annotations

import os
from pathlib import Path

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.files import write_atomically
from imagenet_sketch_tools.dataset.archive import file_inside, image_path
from imagenet_sketch_tools.dataset.zipwriter import TOP_FOLDER, write_zip


def folder_members(folder: str | os.PathLike) -> list[tuple[str, Path]]:
    """`(sketch/<wnid>/<file>, path)` for the images of `folder/<wnid>/` or `folder/sketch/<wnid>/`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"'{folder}' is not a folder; give augment's output folder (DIR/<wnid>/sketch_<n>.JPEG)")
    root = folder / TOP_FOLDER if (folder / TOP_FOLDER).is_dir() else folder
    real_folder = os.path.realpath(folder)
    members = []
    for class_dir in sorted(root.iterdir()):
        if not class_dir.is_dir() or class_dir.name.startswith("."):
            continue
        for path in sorted(class_dir.iterdir()):
            if path.is_dir() and not path.name.startswith("."):
                raise UserError(f"unexpected folder '{path}'; package expects DIR/<wnid>/<file>, one level of classes")
            # image_path skips what is not an image and names a class folder that is not a wnid.
            member = image_path(f"{class_dir.name}/{path.name}") if path.is_file() else None
            if member is not None:
                # A link is packaged as the file it points to, and only if that file is inside the folder.
                real = file_inside(str(path), real_folder, str(path.relative_to(folder)))
                members.append((f"{TOP_FOLDER}/{member}", Path(real)))
    if not members:
        raise UserError(f"no images under '{folder}'; expected DIR/<wnid>/<file> or DIR/{TOP_FOLDER}/<wnid>/<file>")
    return members


def package_folder(folder: str | os.PathLike, output: str | os.PathLike) -> tuple[int, str, int]:
    """Write the release-layout zip of `folder` and `output.sha256` beside it; return (size, sha256, images)."""
    members = folder_members(folder)
    output = Path(output)
    if not output.parent.is_dir():
        raise UserError(f"folder '{output.parent}' for the archive does not exist; create it first")
    size, sha256 = write_zip(members, output)
    write_atomically(output.with_name(output.name + ".sha256"), f"{sha256}  {output.name}\n")
    return size, sha256, len(members)
