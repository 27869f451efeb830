"""The `imagenet-sketch` command: dispatch and error reporting; each subcommand is a module of `commands`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import user_message

PROG = "imagenet-sketch"
COMMANDS = ("build", "info", "verify", "peek")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="ImageNet-Sketch: build, inspect, download, export.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.commands.{name}").add_to(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing partial was kept, run the command again to finish", file=sys.stderr)
        return 130
    except Exception as error:  # every failure becomes one line, never a traceback
        if os.environ.get("IMAGENET_SKETCH_DEBUG"):
            raise
        message = user_message(error) or f"{type(error).__name__}: {' '.join(str(error).split())}"
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
