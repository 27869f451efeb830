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


class Unseekable:
    """A file zipfile cannot seek back in, so it writes each member's sizes and CRC in a data descriptor after
    its data, as streaming tools (`zip -` to a pipe, many writers) do."""

    def __init__(self, file):
        self.file = file

    def write(self, data: bytes) -> int:
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()


def write_zip_as(
    path: Path,
    members: list[tuple[str, bytes]],
    compression: int = zipfile.ZIP_DEFLATED,
    *,
    force_zip64: bool = False,
    descriptors: bool = False,
    holes: dict[int, int] | None = None,
) -> Path:
    """Like write_zip, with ZIP64 extra fields on every member, data descriptors, and/or `holes`: {index: n}
    leaves n unclaimed bytes (sparse, so free on disk) before member `index`, as an edited or hostile zip has."""
    with open(path, "wb") as file, zipfile.ZipFile(Unseekable(file) if descriptors else file, "w", compression) as zf:
        for index, (name, content) in enumerate(members):
            # zipfile writes the next member at start_dir: moving it on leaves a hole (seekable files only)
            zf.start_dir += (holes or {}).get(index, 0)
            with zf.open(name, "w", force_zip64=force_zip64) as member:
                member.write(content)
    return path
