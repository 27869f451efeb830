"""Options shared by the commands that read a source."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from imagenet_sketch_tools.dataset import sources

if TYPE_CHECKING:
    import datasets


def add_source_arguments(parser: argparse.ArgumentParser, builds: bool = True) -> None:
    """--source | --sample and --cache-dir; and --num-proc for the commands that build (`builds`)."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--source", help="ImageNet-Sketch.zip, its extracted folder, or a zip URL (http(s)://, hf://)")
    where.add_argument(
        "--sample", action="store_true", help="the sample config: the embedded sample archive (a few classes)"
    )
    parser.add_argument("--cache-dir", help="datasets cache folder (default: the HF datasets cache)")
    if builds:
        parser.add_argument("--num-proc", type=positive_int, default=None, help="processes for the build (default: 1)")


def positive_int(text: str) -> int:
    """A count of processes: a whole number, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def source_of(args: argparse.Namespace) -> str | None:
    """The archive to read directly (peek): the sample's with --sample."""
    if args.sample:
        from imagenet_sketch_tools.dataset.sample import sample_archive

        return sample_archive()
    return args.source


def prepared(args: argparse.Namespace) -> datasets.Dataset:
    """The prepared train split for the command's source options, built first if needed."""
    import imagenet_sketch

    config = sources.SAMPLE_CONFIG if args.sample else "default"
    return imagenet_sketch.load(args.source, name=config, cache_dir=args.cache_dir, num_proc=args.num_proc)
