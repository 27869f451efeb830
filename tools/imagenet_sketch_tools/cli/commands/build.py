"""`imagenet-sketch build`: prepare the dataset in the datasets cache and say what was built."""

from __future__ import annotations

import argparse
import os
import time

from imagenet_sketch_tools.cli.options import add_source_arguments, prepared


def add_to(commands) -> None:
    parser = commands.add_parser("build", help="prepare the dataset in the datasets cache")
    add_source_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    dataset = prepared(args)
    seconds = time.perf_counter() - started
    classes = len(dataset.unique("wnid"))
    size = sum(os.path.getsize(file["filename"]) for file in dataset.cache_files)
    print(
        f"built {dataset.num_rows:,} rows, {classes} classes present, {size / 1e6:,.1f} MB in {seconds:.1f} s\n"
        f"at {os.path.dirname(dataset.cache_files[0]['filename'])}"
    )
    return 0
