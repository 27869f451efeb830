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
    "report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="ImageNet-Sketch: build, inspect, download and export the dataset, "
        "rebuild it with the authors' pipeline, and evaluate ImageNet models on it.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.commands.{name}").add_to(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with interrupts_stop_this_process_only():
            return args.run(args)
    except KeyboardInterrupt:
        return interrupted()
    except Exception as error:  # every failure becomes one line, never a traceback
        # A process pool (num_proc) turns the interrupt into an error of its own while stopping.
        if cause_of(error, KeyboardInterrupt):
            return interrupted()
        if os.environ.get("IMAGENET_SKETCH_DEBUG"):
            raise
        message = user_message(error) or f"{type(error).__name__}: {' '.join(str(error).split())}"
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1


def interrupted() -> int:
    print(f"{PROG}: interrupted; nothing partial was kept, run the command again to finish", file=sys.stderr)
    return 130


@contextlib.contextmanager
def interrupts_stop_this_process_only():
    """Ctrl-C reaches the whole process group. The worker processes `datasets` forks for num_proc inherit this
    handler and so ignore it (each would print a traceback otherwise); this process stops, and its pool
    terminates them before the unfinished build is removed."""
    this_process = os.getpid()

    def on_interrupt(signum, frame):
        if os.getpid() == this_process:
            raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, on_interrupt)
    except ValueError:  # not the main thread: signal handlers cannot be set here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(main())
