"""The `imagenet-sketch` command: argument parsing and printing only; the work is in the stage modules."""

from __future__ import annotations

import argparse
import os
import sys
import time

from .errors import user_message

PROG = "imagenet-sketch"


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--source", help="ImageNet-Sketch.zip, its extracted folder, or a zip URL (http(s)://, hf://)")
    where.add_argument("--sample", action="store_true", help="use the embedded sample archive (a few classes)")
    parser.add_argument("--cache-dir", help="datasets cache folder (default: the HF datasets cache)")
    parser.add_argument("--num-proc", type=int, default=None, help="processes for the build (default: 1)")


def source_of(args: argparse.Namespace) -> str | None:
    if args.sample:
        from .sample import sample_archive

        return sample_archive()
    return args.source


def prepared(args: argparse.Namespace):
    """The prepared train split for the command's source options, built first if needed."""
    import imagenet_sketch

    return imagenet_sketch.load(source_of(args), cache_dir=args.cache_dir, num_proc=args.num_proc)


def run_build(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    dataset = prepared(args)
    seconds = time.perf_counter() - started
    classes = len(set(dataset.unique("wnid")))
    size = sum(os.path.getsize(file["filename"]) for file in dataset.cache_files)
    print(
        f"built {dataset.num_rows:,} rows, {classes} classes present, {size / 1e6:,.1f} MB "
        f"in {seconds:.1f} s\nat {os.path.dirname(dataset.cache_files[0]['filename'])}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="ImageNet-Sketch: build, inspect, download, export.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser("build", help="prepare the dataset in the datasets cache")
    add_source_arguments(build)
    build.set_defaults(run=run_build)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing partial was kept, run the command again to finish", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - every failure becomes one line, never a traceback
        if os.environ.get("IMAGENET_SKETCH_DEBUG"):
            raise
        message = user_message(error) or f"{type(error).__name__}: {' '.join(str(error).split())}"
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
