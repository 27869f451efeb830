"""`imagenet-sketch review`: the manual cleaning in a local web page (stage 2 of the pipeline)."""

from __future__ import annotations

import argparse


def add_to(commands) -> None:
    parser = commands.add_parser(
        "review",
        help="clean collected images in a local web page (saved as you click)",
        description="Flags suspicious images (unreadable, black, blank, tiny, duplicates), then serves the review "
        "page on 127.0.0.1. Stop with Ctrl-C; every decision is already saved.",
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="the pipeline folder written by `imagenet-sketch collect`")
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default: 8765; 0: any free one)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from imagenet_sketch_tools.pipeline.review import Review, make_server

    review = Review(args.out_dir)
    flagged = sum(1 for flags in review.flags.values() if flags)
    server = make_server(review, args.port)
    host, port = server.server_address[:2]
    print(f"review: {len(review.images)} images, {flagged} flagged; open http://{host}:{port}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("review: stopped; every decision is saved in the manifest")
    finally:
        server.server_close()
    return 0
