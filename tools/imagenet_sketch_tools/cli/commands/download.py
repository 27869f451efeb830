"""`imagenet-sketch download`: fetch ImageNet-Sketch.zip from the first mirror that works, verified, resumable."""

from __future__ import annotations

import argparse
import re

from imagenet_sketch_tools.fetch.download import Expected, default_output


def add_to(commands) -> None:
    parser = commands.add_parser(
        "download",
        help="download ImageNet-Sketch.zip, checked by its size and sha256",
        description="Try the mirrors in order (hf, gdrive, kaggle) until one serves the verified archive; "
        "an interrupted download resumes where it stopped.",
    )
    parser.add_argument(
        "--mirror", help="hf, gdrive, kaggle, a zip URL, or a local zip/folder (default: each mirror in turn)"
    )
    parser.add_argument("--output", help=f"where the zip goes (default: {default_output()})")
    parser.add_argument(
        "--sha256",
        type=sha256_hex,
        help="expected sha256 (default: the release's; given alone, no size is checked)",
    )
    parser.add_argument(
        "--size",
        type=int,
        help="expected size in bytes (default: the release's; given alone, no sha256 is checked)",
    )
    parser.set_defaults(run=run)


def sha256_hex(text: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a sha256 (64 hexadecimal digits)")
    return text.lower()


def run(args: argparse.Namespace) -> int:
    from imagenet_sketch_tools.fetch.mirrors import download

    output = args.output or default_output()
    # An interrupted transfer is kept on purpose: the next run resumes it (main prints this on Ctrl-C/SIGTERM).
    args.interrupted_note = f"what arrived is kept in {output}.partial: run the same command again to resume it"
    path = download(args.mirror, output, Expected.release(args.size, args.sha256))
    print(path)
    return 0
