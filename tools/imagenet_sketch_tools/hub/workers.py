"""How export's worker processes start: nothing heavy is imported here, so this runs the moment a worker is up."""

from __future__ import annotations

import signal
import threading

from imagenet_sketch_tools.common.errors import ignore_unraisable


def start_worker() -> None:
    """Ctrl-C reaches every process of the group. A worker then leaves quietly (SystemExit prints no traceback,
    and it lets go of the pool's queue lock, which the parent's terminate needs), and the parent removes the
    unfinished package. tqdm gets a thread lock: its default, a multiprocessing semaphore, is never released by
    a worker the pool terminates, which made every export end with a "leaked semaphore" warning."""
    signal.signal(signal.SIGINT, _leave_quietly)
    from tqdm.auto import tqdm

    tqdm.set_lock(threading.RLock())


def _leave_quietly(signum, frame) -> None:
    ignore_unraisable()  # the SystemExit may land inside a finaliser (Dataset.__del__)
    raise SystemExit(1)
