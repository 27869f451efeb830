"""`imagenet-sketch collect`: search and download candidate sketches per class (stage 1 of the pipeline)."""

from __future__ import annotations

import argparse
import sys

from imagenet_sketch_tools.pipeline.search import BACKENDS


def add_to(commands) -> None:
    parser = commands.add_parser(
        "collect",
        help="search the web for 'sketch of <class>' into OUT_DIR/raw/<wnid>/",
        description="Stage 1 of the pipeline. Resumable: run it again to finish; done classes are skipped.",
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="the pipeline folder (raw/, manifest.jsonl)")
    parser.add_argument("--classes", help="comma-separated wnids (default: all 1000)")
    parser.add_argument("--limit", type=int, default=100, help="results to try per class (default: 100)")
    parser.add_argument(
        "--backend",
        action="append",
        choices=BACKENDS,
        help="where candidates come from, repeatable, asked in order until --limit "
        "(default: urls if --urls, folder if --folder, else bing)",
    )
    parser.add_argument("--urls", metavar="FILE", help="for the urls backend: lines of wnid<TAB>url")
    parser.add_argument("--folder", metavar="DIR", help="for the folder backend: images in DIR/<wnid>/")
    parser.add_argument("--rate", type=float, default=2.0, help="requests per second to any one host (default: 2)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds allowed per image (default: 20)")
    parser.add_argument("--max-bytes", type=int, default=20_000_000, help="size cap per image (default: 20 MB)")
    parser.add_argument("--retries", type=int, default=3, help="retries on 429/5xx/timeouts (default: 3)")
    parser.add_argument("--workers", type=int, default=4, help="downloads at once, across hosts (default: 4)")
    parser.add_argument("--backoff", type=float, default=1.0, help="first retry delay in seconds, doubled each time")
    parser.set_defaults(run=run)


def default_backends(args: argparse.Namespace) -> list[str]:
    if args.backend:
        return args.backend
    return [name for name, given in (("urls", args.urls), ("folder", args.folder)) if given] or ["bing"]


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from imagenet_sketch_tools.common.errors import UserError
    from imagenet_sketch_tools.pipeline.collect import Fetcher, Sources, chosen_wnids, collect

    if args.limit < 1:
        raise UserError("--limit must be at least 1")
    wnids = chosen_wnids([wnid.strip() for wnid in args.classes.split(",") if wnid.strip()] if args.classes else None)
    sources = Sources(default_backends(args), urls_file=args.urls, folder=args.folder)
    fetcher = Fetcher(
        rate=args.rate, timeout=args.timeout, max_bytes=args.max_bytes, retries=args.retries, backoff=args.backoff
    )
    with tqdm(unit="img", desc="collect", file=sys.stderr, leave=False, disable=None) as progress:

        def show(row: dict) -> None:
            progress.set_postfix_str(row["wnid"], refresh=False)
            progress.update()

        summary = collect(
            args.out_dir, wnids, sources, limit=args.limit, fetcher=fetcher, workers=args.workers, on_image=show
        )
    print(summary.line())
    return 0
