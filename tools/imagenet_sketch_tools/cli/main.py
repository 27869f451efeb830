"""The `imagenet-sketch` command: dispatch and error reporting; each subcommand is a module of `commands`."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys

from imagenet_sketch_tools.common.errors import cause_of, user_message

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
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="ImageNet-Sketch: build, inspect, download, export.")
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

    SIGTERM reaches this process only: it passes it on to its workers as the Ctrl-C they would have had, then
    stops the same way. A forked worker that inherited the handler and is terminated by its pool dies at once."""
    this_process = os.getpid()

    def on_interrupt(signum, frame):
        if os.getpid() == this_process:
            raise KeyboardInterrupt

    def on_terminate(signum, frame):
        if os.getpid() != this_process:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        interrupt_workers()
        raise Terminated

    try:
        previous = signal.signal(signal.SIGINT, on_interrupt), signal.signal(signal.SIGTERM, on_terminate)
    except ValueError:  # not the main thread: signal handlers cannot be set here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def interrupt_workers() -> None:
    """Send Ctrl-C to this process's worker processes: multiprocessing's (export) and multiprocess's (datasets),
    whichever this process has imported (neither is imported for it)."""
    for name in ("multiprocessing", "multiprocess"):
        module = sys.modules.get(name)
        for worker in module.active_children() if module is not None else []:
            if worker.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
