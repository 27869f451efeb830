"""`imagenet-sketch report`: one self-contained HTML page of an eval output folder."""

from __future__ import annotations

import argparse

from imagenet_sketch_tools.cli.options import add_source_arguments
from imagenet_sketch_tools.common.errors import UserError


def add_to(commands) -> None:
    parser = commands.add_parser("report", help="an eval folder as one offline HTML page, among timm's results")
    parser.add_argument("eval_dir", metavar="EVAL_DIR", help="the --output folder of `imagenet-sketch eval`")
    parser.add_argument("--output", "-o", help="where to write the page (default: EVAL_DIR/report.html)")
    # the images shown as thumbnails: the source evaluated (with none, the prepared copy in --cache-dir, if any)
    add_source_arguments(parser, builds=False)
    parser.add_argument(
        "--imagenet-top1",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a model's ImageNet-1k top-1 (%%) when timm's table has none at its size, e.g. my_net=76.1",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from imagenet_sketch_tools.report import images
    from imagenet_sketch_tools.report.page import write_report

    given = parse_imagenet_top1(args.imagenet_top1)
    if args.sample:
        from imagenet_sketch_tools.dataset.sample import sample_archive

        source = images.from_archive(sample_archive())
    elif args.source:
        source = images.from_archive(args.source)
    else:
        source = images.from_prepared(args.cache_dir)
    note = "no --source or --sample was given and the cache holds no prepared copy"
    written = write_report(args.eval_dir, source, args.output, given, images_note=note)
    print(written.summary())
    return 0


def parse_imagenet_top1(values: list[str]) -> dict[str, float]:
    given = {}
    for value in values:
        name, equals, number = value.rpartition("=")
        try:
            top1 = float(number)
        except ValueError:
            top1 = -1.0
        if not equals or not name or not 0 <= top1 <= 100:
            raise UserError(f"--imagenet-top1 '{value}' is not NAME=VALUE with VALUE a percentage, e.g. my_net=76.1")
        given[name] = top1
    return given
