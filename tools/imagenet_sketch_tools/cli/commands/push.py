"""`imagenet-sketch push`: upload an exported package to a Hugging Face dataset repository."""

from __future__ import annotations

import argparse


def add_to(commands) -> None:
    parser = commands.add_parser("push", help="upload an exported package to a Hub dataset repo (resumable)")
    parser.add_argument("directory", help="the folder written by `imagenet-sketch export`")
    parser.add_argument("--repo-id", required=True, help="NAMESPACE/NAME of the dataset repository")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--revision", help="branch to push to (created if missing; default: main)")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of pushing to main")
    parser.add_argument(
        "--delete-stale",
        action="store_true",
        help="delete remote files that would break loading (old shards, a loading script) in the same commit",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from imagenet_sketch_tools.hub.push import push

    summary = push(
        args.directory,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        create_pr=args.create_pr,
        delete_stale=args.delete_stale,
    )
    deleted = f", deleted {len(summary.deleted)} stale file(s)" if summary.deleted else ""
    print(f"pushed {summary.files} files ({summary.bytes / 1e6:,.1f} MB) to {summary.repo_id}{deleted}")
    print(f"pull request: {summary.pr_url}" if summary.pr_url else f"commit: {summary.commit_url}")
    return 0
