"""One writer per output: a lock file for what is written, and a note saying which process holds it.

The lock of an output lives in the package's cache folder (`locks/<digest of its absolute path>.lock`), so
nothing is added beside the user's files, even after a failure. It is filelock's (an OS lock, released by the
kernel however its holder dies, `kill -9` included), so a lock left by a killed process never blocks the next
run. Beside it, `<lock>.owner` names the holder (pid and command line) for the message the next writer shows;
it is advisory, rewritten by every holder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.files import cache_folder, write_atomically


def lock_of(output: str | os.PathLike, kind: str = "") -> Path:
    """The lock file that guards writing `output` (the same for every spelling of its path); `kind` tells apart
    two locks of one folder (eval's model folder and its results.csv)."""
    digest = hashlib.sha256(os.path.realpath(output).encode()).hexdigest()[:24]
    return cache_folder() / "locks" / f"{kind + '-' if kind else ''}{digest}.lock"


def owner_note(lock: str | os.PathLike) -> Path:
    return Path(f"{lock}.owner")


def holder_of(lock: str | os.PathLike) -> str:
    """Who holds `lock`, as its owner note says: `pid N (command)`, or `another process` if it says nothing."""
    try:
        return " ".join(owner_note(lock).read_text(encoding="utf-8").split()) or "another process"
    except OSError:
        return "another process"


@contextlib.contextmanager
def exclusive(
    lock: str | os.PathLike,
    *,
    busy: Callable[[str], str],
    wait: bool,
    say: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold `lock` for the block. If another process holds it: with `wait`, `say` the line `busy(holder)` and
    wait for it; else stop at once with UserError(`busy(holder)`)."""
    Path(lock).parent.mkdir(parents=True, exist_ok=True)
    file_lock = FileLock(str(lock))
    try:
        file_lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise UserError(busy(holder_of(lock))) from None
        (say or _to_stderr)(busy(holder_of(lock)))
        file_lock.acquire()
    try:
        command = " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])
        write_atomically(owner_note(lock), f"pid {os.getpid()} ({command})\n")
        yield
    finally:
        owner_note(lock).unlink(missing_ok=True)
        file_lock.release()


def is_held(lock: str | os.PathLike) -> bool:
    """True if a live process holds `lock` now (a lock whose holder died is free: the kernel released it)."""
    if not os.path.exists(lock):
        return False
    file_lock = FileLock(str(lock))
    try:
        file_lock.acquire(timeout=0)
    except Timeout:
        return True
    file_lock.release()
    return False


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
