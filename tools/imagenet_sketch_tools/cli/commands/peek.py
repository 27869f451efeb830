"""`imagenet-sketch peek`: a contact sheet of a class's first images, fetched without preparing anything."""

from __future__ import annotations

import argparse

from imagenet_sketch_tools.cli.options import add_source_arguments, source_of
from imagenet_sketch_tools.common.errors import UserError


def add_to(commands) -> None:
    parser = commands.add_parser("peek", help="contact sheet PNG of a class's images, read from the archive")
    # With no source, the prepared copy in --cache-dir is read, if there is one (nothing is built).
    add_source_arguments(parser, builds=False)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--wnid", help="the class's WordNet id, e.g. n01440764 (default: the first class)")
    which.add_argument("--name", help="a word of the class name, e.g. tench; must match exactly one class")
    parser.add_argument("-n", type=int, default=16, help="how many images (default: 16)")
    parser.add_argument("--output", "-o", required=True, help="where to write the PNG, e.g. grid.png")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from imagenet_sketch_tools.dataset import cache, sources
    from imagenet_sketch_tools.fetch import locate
    from imagenet_sketch_tools.inspection.peek import choose_wnid, contact_sheet, from_archive, from_dataset, write_png

    if args.n < 1:
        raise UserError(f"-n must be at least 1, not {args.n}")
    wnid = choose_wnid(args.wnid, args.name)
    source = source_of(args)
    if source is None and cache.prepared_hash(args.cache_dir):
        # As imagenet_sketch.load(): with no source, the prepared copy in the cache is what the user has.
        import imagenet_sketch

        peeked = from_dataset(imagenet_sketch.load(cache_dir=args.cache_dir), wnid, args.n)
        origin = "the prepared dataset"
    else:
        origin = locate.resolve(source or sources.DEFAULT_SOURCE)
        peeked = from_archive(origin, wnid, args.n)
    write_png(contact_sheet(peeked), args.output)
    print(f"wrote {args.output}: {len(peeked.images)} of {peeked.class_size} images of {peeked.wnid}, from {origin}")
    return 0
