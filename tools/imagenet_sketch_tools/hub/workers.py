"""How export's worker processes start: nothing heavy is imported here, so this runs the moment a worker is up."""

from __future__ import annotations

import signal
import sys
import threading


def start_worker() -> None:
    """Ctrl-C reaches every process of the group. A worker then leaves quietly (SystemExit prints no traceback,
    and it lets go of the pool's queue lock, which the parent's terminate needs), and the parent removes the
    unfinished package. tqdm gets a thread lock: its default, a multiprocessing semaphore, is never released by
    a worker the pool terminates, which made every export end with a "leaked semaphore" warning."""
    signal.signal(signal.SIGINT, _leave_quietly)
    from tqdm.auto import tqdm

    tqdm.set_lock(threading.RLock())


def _leave_quietly(signum, frame) -> None:
    # the SystemExit may land inside a finaliser (Dataset.__del__), where Python prints it as "Exception
    # ignored": the worker is on its way out, so nothing it raises from now on is news to the user
    sys.unraisablehook = _ignore
    raise SystemExit(1)


def _ignore(unraisable: object) -> None:
    pass
