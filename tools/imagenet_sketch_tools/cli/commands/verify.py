"""`imagenet-sketch verify`: decode every image of the prepared dataset; fail if any cannot be decoded."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from tqdm.auto import tqdm

from imagenet_sketch_tools.cli.options import add_source_arguments, prepared
from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.inspection.report import check_images, release_line

BATCH_ROWS = 256


def add_to(commands) -> None:
    parser = commands.add_parser("verify", help="decode every image; report unreadable and all-black ones")
    add_source_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    dataset = prepared(args)
    unreadable, black = [], []
    images = tqdm(stored_images(dataset), total=dataset.num_rows, desc="decoding", unit="img")
    for check in check_images(images, workers=args.num_proc or 1):
        if check.unreadable:
            unreadable.append(check)
        elif check.black:
            black.append(check)
    for check in unreadable:
        print(f"unreadable: {check.path}: {check.unreadable}")
    for check in black:
        print(f"all black: {check.path} (every pixel 0; kept, the release has such images)")
    print(
        f"decoded {dataset.num_rows - len(unreadable):,} of {dataset.num_rows:,} images; "
        f"{len(unreadable)} unreadable, {len(black)} all black"
    )
    print(release_line(dataset.num_rows, sample=args.sample))
    if unreadable:
        raise UserError(
            f"{len(unreadable)} of {dataset.num_rows:,} images cannot be decoded (listed above); "
            "the archive is damaged or not the release: download it again"
        )
    return 0


def stored_images(dataset) -> Iterator[tuple[str, bytes]]:
    """Every row's `(path, bytes)` as stored, read as Arrow batches (no decoding by datasets)."""
    for table in dataset.with_format("arrow").iter(batch_size=BATCH_ROWS):
        column = table.column("image").combine_chunks()
        yield from zip(column.field("path").to_pylist(), column.field("bytes").to_pylist())
