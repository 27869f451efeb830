"""Writing an archive in the release layout, deterministically: same members, same bytes, same sha256.

Members are sorted by name, stamped with the DOS epoch and mode 0644 and DEFLATED like the original, so the bytes
depend only on the members' names and contents, never on file times, the walk order or the clock. Both the
pipeline's `package` stage and the embedded sample write through here.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from imagenet_sketch_tools.common.files import file_sha256

# The DOS epoch: a fixed timestamp keeps the archive's bytes independent of when it was written.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
TOP_FOLDER = "sketch"


def write_zip(members: Iterable[tuple[str, bytes | os.PathLike]], output: str | os.PathLike) -> tuple[int, str]:
    """Write `(name, bytes or file path)` members, sorted by name, DEFLATED like the original; return (size, sha256).

    The zip is written beside `output` under a hidden temporary name of its own and renamed when complete, so an
    interrupted or failed run never leaves a half-written archive at `output` (nor a temporary file beside it), and
    two processes writing the same archive at once never write into one file.
    """
    output = Path(output)
    handle, partial = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            _write_members(members, file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(partial, 0o644)  # mkstemp makes it 0600; the archive is meant to be shared like any download
        os.replace(partial, output)
    finally:
        Path(partial).unlink(missing_ok=True)
    return output.stat().st_size, file_sha256(output)


def _write_members(members: Iterable[tuple[str, bytes | os.PathLike]], file) -> None:
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in sorted(members, key=lambda member: member[0]):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content if isinstance(content, bytes) else Path(content).read_bytes())
