"""`imagenet-sketch info`: the prepared dataset's features, rows, and images per class."""

from __future__ import annotations

import argparse
import os

from imagenet_sketch_tools.cli.options import add_source_arguments, prepared
from imagenet_sketch_tools.inspection.report import class_counts, describe_feature, release_line


def add_to(commands) -> None:
    parser = commands.add_parser("info", help="features, row count, images per class (builds first if needed)")
    add_source_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    dataset = prepared(args)
    print("features:")
    for name, feature in dataset.features.items():
        print(f"  {name}: {describe_feature(feature)}")
    print(release_line(dataset.num_rows, sample=args.sample))
    for line in class_counts(dataset.data.column("wnid").to_pylist()).summary():
        print(line)
    print(f"prepared at {os.path.dirname(dataset.cache_files[0]['filename'])}")
    return 0
