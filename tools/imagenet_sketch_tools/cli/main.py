"""The `imagenet-sketch` command: dispatch and error reporting; each subcommand is a module of `commands`."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
from typing import NoReturn

from imagenet_sketch_tools.common.errors import cause_of, ignore_unraisable, user_message

PROG = "imagenet-sketch"
COMMANDS = (
    "build",
    "info",
    "verify",
    "peek",
    "download",
    "export",
    "push",
    "collect",
    "review",
    "augment",
    "package",
    "audit",
    "eval",
    "report",
)


class Parser(argparse.ArgumentParser):
    """argparse, with its errors in the one-line form every failure takes (exit 2, argparse's status for a
    command line it refuses); subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {' '.join(message.split())}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="ImageNet-Sketch: build, inspect, download and export the dataset, "
        "rebuild it with the authors' pipeline, and evaluate ImageNet models on it.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.commands.{name}").add_to(commands)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (`timeout`, CI cancellation, `docker stop`), unwound as Ctrl-C is: workers stopped, nothing kept."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with interrupts_stop_this_process_only():
            return args.run(args)
    except KeyboardInterrupt as stop:
        return interrupted(args, stop)
    except Exception as error:  # every failure becomes one line, never a traceback
        # A process pool (num_proc) turns the interrupt into an error of its own while stopping.
        stop = cause_of(error, KeyboardInterrupt)
        if stop is not None:
            return interrupted(args, stop)
        if os.environ.get("IMAGENET_SKETCH_DEBUG"):
            raise
        message = user_message(error) or f"{type(error).__name__}: {' '.join(str(error).split())}"
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1


def interrupted(args: argparse.Namespace, stop: BaseException) -> int:
    """One line saying what was kept (a command that keeps something to resume says what), and the exit status
    of the signal: 130 for Ctrl-C, 143 for SIGTERM."""
    kept = getattr(args, "interrupted_note", None) or "nothing partial was kept, run the command again to finish"
    if isinstance(stop, Terminated):
        print(f"{PROG}: terminated; {kept}", file=sys.stderr)
        return 128 + signal.SIGTERM
    print(f"{PROG}: interrupted; {kept}", file=sys.stderr)
    return 128 + signal.SIGINT


@contextlib.contextmanager
def interrupts_stop_this_process_only():
    """Ctrl-C reaches the whole process group. The worker processes `datasets` forks for num_proc inherit this
    handler and so ignore it (each would print a traceback otherwise); this process stops, and its pool
    terminates them before the unfinished build is removed.

    SIGTERM reaches this process only: it terminates its workers, then stops as Ctrl-C does (a forked worker
    does not inherit this: see `_sigterm_by_default_in_forked_children`)."""
    this_process = os.getpid()

    def on_interrupt(signum, frame):
        if os.getpid() == this_process:
            raise KeyboardInterrupt
        ignore_unraisable()  # a worker of datasets' pool, which is stopping it

    try:
        previous = signal.signal(signal.SIGINT, on_interrupt), signal.signal(signal.SIGTERM, _on_terminate)
    except ValueError:  # not the main thread: signal handlers cannot be set here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def _on_terminate(signum, frame) -> None:
    stop_workers()
    raise Terminated


def _sigterm_by_default_in_forked_children() -> None:
    """A pool terminates its workers with SIGTERM and waits for them: in a forked worker SIGTERM must kill at
    once, as the kernel's default does, not unwind through Python (a worker blocked on its pool's queue lock
    was seen to outlive it, and the pool's join then waited forever)."""
    if signal.getsignal(signal.SIGTERM) is _on_terminate:
        with contextlib.suppress(ValueError):  # forked from a thread that Python does not count as main
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


os.register_at_fork(after_in_child=_sigterm_by_default_in_forked_children)


def stop_workers() -> None:
    """Terminate the worker processes this process started with multiprocessing (export's), as a pool's
    terminate does: SIGTERM, which they take by default and so die at once (a Ctrl-C they would unwind, and one
    landing in a finaliser is printed and ignored). datasets' workers (multiprocess) are left to their pool,
    which terminates them as it unwinds; its Manager process must outlive them."""
    module = sys.modules.get("multiprocessing")  # not imported for this: no worker if it is not imported
    for worker in module.active_children() if module is not None else []:
        worker.terminate()


if __name__ == "__main__":
    sys.exit(main())
