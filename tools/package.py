"""Write an archive in the release layout, deterministically: same inputs, same bytes, same sha256."""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

# The DOS epoch: a fixed timestamp keeps the archive's bytes independent of when it was written.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
TOP_FOLDER = "sketch"


def write_zip(members: Iterable[tuple[str, bytes]], output: str | os.PathLike) -> tuple[int, str]:
    """Write `(name, bytes)` members, sorted by name, DEFLATED like the original; return (size, sha256).

    The zip is written beside `output` under a temporary name and renamed when complete, so an
    interrupted run never leaves a half-written archive at `output`.
    """
    output = Path(output)
    partial = output.with_name(output.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in sorted(members, key=lambda member: member[0]):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    os.replace(partial, output)
    return output.stat().st_size, file_sha256(output)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
