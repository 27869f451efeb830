"""One writer per output: a model's folder is written by one eval at a time, and so are the output folder's
results.csv and leaderboard.md. Another eval waits for the holder, saying so in one line that names it, then
carries on (a model's folder it waited for is finished by then: it is read back, not run again).

The lock is filelock's (an OS lock, released by the kernel however its holder ends, `kill -9` included, so a
killed run never blocks the next). Locks live in the package's cache folder, named after the folder they guard,
so nothing is added to the user's output; beside each, `<lock>.owner` names the holder (pid and command line)
for the line the next writer prints.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from imagenet_sketch_tools.common.files import cache_folder, write_atomically


def lock_for(folder: Path, kind: str) -> Path:
    """The lock of `kind` guarding `folder` (however it is spelled: the resolved path names it)."""
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return cache_folder() / "locks" / f"eval-{kind}-{digest}.lock"


def owner_note(lock: Path) -> Path:
    return lock.with_name(f"{lock.name}.owner")


def holder_of(lock: Path) -> str:
    """Who holds `lock`, as its owner note says (`pid N (command)`), or `another process`."""
    try:
        return " ".join(owner_note(lock).read_text(encoding="utf-8").split()) or "another process"
    except OSError:
        return "another process"


@contextmanager
def one_writer(lock: Path, writing: str) -> Iterator[None]:
    """Hold `lock` for the block. When another process holds it, print `writing` (what it writes) with the
    holder's name and wait for it."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    file_lock = FileLock(lock)
    try:
        file_lock.acquire(timeout=0)
    except Timeout:
        print(f"{writing} is being written by {holder_of(lock)}; waiting for it", file=sys.stderr, flush=True)
        file_lock.acquire()
    try:
        write_atomically(owner_note(lock), f"pid {os.getpid()} ({' '.join(sys.argv)})\n")
        yield
    finally:
        owner_note(lock).unlink(missing_ok=True)
        file_lock.release()


def model_writer(folder: Path, model: str) -> AbstractContextManager[None]:
    """The lock of a model's folder (`model`, as results.csv names it, for the waiting line)."""
    return one_writer(lock_for(folder, "model"), f"{model}: {folder}")


def results_writer(output: Path) -> AbstractContextManager[None]:
    """The lock of the output folder's results.csv and leaderboard.md."""
    return one_writer(lock_for(output, "results"), f"{output / 'results.csv'}")
