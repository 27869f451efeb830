"""`imagenet-sketch audit SOURCE --output CSV`: which images are originals, flips, rotations, copies or black."""

from __future__ import annotations

import argparse
from collections import Counter

from tqdm import tqdm

from imagenet_sketch_tools.fetch.locate import resolve
from imagenet_sketch_tools.pipeline.audit import audit, write_report


def add_to(commands) -> None:
    parser = commands.add_parser(
        "audit",
        help="find flipped, rotated, copied, black and duplicate images",
        description="Writes CSV (path,kind,of_path,transform,...) and CSV's <stem>_summary.csv (counts per class).",
    )
    parser.add_argument("source", metavar="SOURCE", help="ImageNet-Sketch.zip, its extracted folder, or a zip URL")
    parser.add_argument("--output", "-o", default="audit.csv", help="the CSV to write (default audit.csv)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report = audit(resolve(args.source), progress=lambda classes: tqdm(classes, unit="class"))
    summary_file = write_report(report, args.output)
    totals = Counter()
    for counts in report.summary:
        totals.update({name: value for name, value in counts.items() if name != "wnid"})
    transforms = Counter(row["transform"] for row in report.rows if row["kind"] == "augmented")
    augmented_classes = sum(1 for counts in report.summary if counts["augmented"])
    print(
        f"{totals['total']:,} images in {len(report.summary)} classes: {totals['originals']:,} originals, "
        f"{totals['augmented']:,} augmented ({', '.join(f'{n:,} {t}' for t, n in sorted(transforms.items()))}) "
        f"in {augmented_classes} classes\n"
        f"{totals['black']:,} black, {totals['blank']:,} blank, {totals['unreadable']:,} unreadable, "
        f"{totals['cross_class_duplicates']:,} cross-class duplicates\n"
        f"wrote {args.output} and {summary_file}"
    )
    return 0
