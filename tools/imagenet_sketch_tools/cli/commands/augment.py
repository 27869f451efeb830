"""`imagenet-sketch augment IN_DIR OUT_DIR`: fill every class to the target count by the authors' rule."""

from __future__ import annotations

import argparse

from tqdm import tqdm

from imagenet_sketch_tools.pipeline.augment import DEFAULT_TARGET, augment


def add_to(commands) -> None:
    parser = commands.add_parser(
        "augment",
        help="fill each class to the target by flips, rotations and copies",
        description="Originals (sorted by file name, the review's rejects dropped) become <wnid>/sketch_<n>.JPEG; "
        "classes short of the target get hflips, then vflips, then rot180s, then copies, in a cycle.",
    )
    parser.add_argument(
        "in_dir", metavar="IN_DIR", help="collect's output folder (raw/<wnid>/...) or a folder of <wnid>/"
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="where <wnid>/sketch_<n>.JPEG and manifest.jsonl go")
    parser.add_argument(
        "--target", type=int, default=DEFAULT_TARGET, help=f"images per class (default {DEFAULT_TARGET})"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    summary = augment(args.in_dir, args.out_dir, args.target, progress=lambda folders: tqdm(folders, unit="class"))
    print(
        f"{summary.classes} classes: {summary.originals:,} originals + {summary.augmented:,} augmented, "
        f"{summary.written:,} files written (the rest were already there) in {args.out_dir}"
    )
    if summary.dropped:
        print(
            f"dropped {len(summary.dropped):,} images (unreadable, black or over the target; "
            "see augment_drop rows in the manifest)"
        )
    if summary.empty_classes:
        print(
            f"{len(summary.empty_classes)} classes have no usable image and were not written: "
            + " ".join(summary.empty_classes)
        )
    return 0
