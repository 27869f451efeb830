"""`imagenet-sketch package DIR --output ZIP`: the release-layout archive, byte-for-byte reproducible."""

from __future__ import annotations

import argparse

from imagenet_sketch_tools.pipeline.package import package_folder


def add_to(commands) -> None:
    parser = commands.add_parser(
        "package",
        help="write ImageNet-Sketch.zip from a folder, reproducibly",
        description="Sorted members, fixed timestamps: the same images give the same sha256. "
        "Also writes ZIP.sha256 beside the archive.",
    )
    parser.add_argument("folder", metavar="DIR", help="DIR/<wnid>/<file> or DIR/sketch/<wnid>/<file>")
    parser.add_argument("--output", "-o", default="ImageNet-Sketch.zip", help="the zip to write")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    size, sha256, count = package_folder(args.folder, args.output)
    print(f"wrote {args.output}: {count:,} images, {size:,} bytes\nsha256 {sha256}")
    return 0
