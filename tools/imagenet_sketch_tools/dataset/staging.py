"""Building a prepared copy out of sight of datasets' cache lookup, and publishing it in one rename.

datasets builds `<hash>` in a `<hash>.incomplete` folder beside it, which its own cache lookup (`load_dataset` with
no script: every `<config>/<version>/<hash>` folder, reading each one's dataset_info.json) trips on while a build
runs, and forever after a build is killed. Here datasets is given a hidden folder of this process's own,
`.<hash>.<pid>-<random>.building`, to build into: glob's `*` skips names starting with a dot, so no lookup ever
sees it. Complete, it is renamed to `<hash>` (atomic on one file system): a copy is complete or absent, whatever
kills the build. One build of a copy at a time (`<hash>_builder.lock`, the file datasets itself locks); what a
killed build left (its hidden folders, an `<hash>.incomplete` of an older version) is removed by the next build
of that copy, under the lock, or by `load()` when no build holds it.
"""

from __future__ import annotations

import errno
import glob
import os
import shutil
from pathlib import Path

from imagenet_sketch_tools.common.errors import UserError, causes
from imagenet_sketch_tools.common.files import unique_sibling
from imagenet_sketch_tools.common.locks import exclusive, is_held

DATASET_INFO = "dataset_info.json"
# A full disk (ENOSPC), a file size limit (EFBIG) or a quota (EDQUOT): the build cannot go on where it writes.
NO_SPACE = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def builder_lock(output_dir: str) -> str:
    return output_dir + "_builder.lock"


def leftovers(output_dir: str) -> list[str]:
    """What an unfinished build of `output_dir` may have left: hidden staging folders and files of its own, and
    the `<hash>.incomplete` folder datasets makes when it builds in place (older versions of this builder)."""
    folder, name = os.path.split(output_dir)
    return [*glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*")), output_dir + ".incomplete"]


def remove_leftovers(output_dir: str) -> None:
    """Remove what unfinished builds of `output_dir` left; only called under its builder lock."""
    for path in leftovers(output_dir):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.remove(path)


def remove_stale(version_folders: list[str]) -> None:
    """Remove the leftovers of every copy in these `<config>/<version>` folders that no build holds now."""
    for folder in version_folders:
        copies = {copy for entry in os.scandir(folder) if (copy := _copy_of(entry.name)) is not None}
        for name in copies:
            output_dir = os.path.join(folder, name)
            if not is_held(builder_lock(output_dir)):
                remove_leftovers(output_dir)


def _copy_of(entry: str) -> str | None:
    """The copy (`<hash>`) a leftover entry belongs to, or None for a copy itself and other files."""
    if entry.endswith(".incomplete") and not entry.startswith("."):
        return entry.removesuffix(".incomplete")
    if entry.startswith(".") and "." in entry[1:]:
        return entry[1:].split(".", 1)[0]
    return None


def build_out_of_sight(build, output_dir: str, *, reuse: bool) -> None:
    """Run `build(into)` so that `output_dir` appears only complete: into a hidden staging folder, renamed to
    `output_dir` at the end, under the copy's lock (a second build of the same copy waits, saying for whom).

    With `reuse` and a complete `output_dir` there, `build(output_dir)` only loads its info (datasets' own reuse,
    under datasets' own lock: the same file, so not while this process holds it). A full disk is reported with
    its cause and the folder it hit."""
    if not (reuse and is_complete(output_dir)):
        with exclusive(
            builder_lock(output_dir), busy=lambda holder: f"waiting for {holder}, building {output_dir}", wait=True
        ):
            remove_leftovers(output_dir)
            if not (reuse and is_complete(output_dir)):  # else the build this one waited for made it
                _build_and_publish(build, output_dir)
                return
    build(output_dir)


def is_complete(output_dir: str) -> bool:
    return os.path.exists(os.path.join(output_dir, DATASET_INFO))


def _build_and_publish(build, output_dir: str) -> None:
    staging = str(unique_sibling(Path(output_dir), "building"))
    try:
        build(staging)
        _publish(staging, output_dir)
    except Exception as error:
        no_space = _no_space(error, output_dir)
        if no_space is None:
            raise
        raise no_space from error
    finally:
        remove_leftovers(output_dir)


def _publish(staging: str, output_dir: str) -> None:
    """Put the complete copy at `output_dir` in one rename (a copy rebuilt on purpose replaces the old one)."""
    if os.path.exists(output_dir):
        replaced = str(unique_sibling(Path(output_dir), "replaced"))
        os.rename(output_dir, replaced)
    os.rename(staging, output_dir)


def _no_space(error: BaseException, output_dir: str) -> UserError | None:
    """The one-line error for a build stopped by a full disk (datasets wraps it in DatasetGenerationError)."""
    cause = next((c for c in causes(error) if isinstance(c, OSError) and c.errno in NO_SPACE), None)
    if cause is None:
        return None
    where = cause.filename or os.path.dirname(output_dir)
    reason = f"{errno.errorcode.get(cause.errno or 0, 'OSError')}: {os.strerror(cause.errno or 0)}"
    return UserError(
        f"the build could not write to {where} ({reason}: the disk is full or a file size limit was reached); "
        f"nothing was kept: free space there, or give --cache-dir on another disk"
    )
