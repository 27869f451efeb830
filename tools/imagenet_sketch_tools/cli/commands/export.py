"""`imagenet-sketch export`: write the hub package (parquet shards, dataset card, dataset_infos.json)."""

from __future__ import annotations

import argparse
from pathlib import Path

from imagenet_sketch_tools.cli.options import add_source_arguments, prepared
from imagenet_sketch_tools.common.errors import UserError


def add_to(commands) -> None:
    parser = commands.add_parser("export", help="write the hub package: data/*.parquet, README.md, dataset_infos")
    parser.add_argument("--output", required=True, help="new folder to write the package into")
    add_source_arguments(parser)
    parser.add_argument("--max-shard-size", default="500MB", help="largest shard, as push_to_hub (default: 500MB)")
    parser.add_argument("--audit", help="the audit CSV to ship as audit.csv and link from the card")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from imagenet_sketch_tools.hub.export import export, shard_size_bytes

    shard_size_bytes(args.max_shard_size)  # a bad size fails now, not after the build
    if args.audit and not Path(args.audit).is_file():
        raise UserError(f"--audit '{args.audit}' is not a file; give the CSV written by `imagenet-sketch audit`")
    dataset = prepared(args)
    summary = export(dataset, args.output, max_shard_size=args.max_shard_size, num_proc=args.num_proc, audit=args.audit)
    print(
        f"exported {summary.rows:,} rows in {summary.shards} shard(s), "
        f"{summary.download_size / 1e6:,.1f} MB of parquet ({summary.dataset_size / 1e6:,.1f} MB as Arrow) "
        f"in {summary.seconds:.1f} s\nat {summary.directory}"
    )
    return 0
