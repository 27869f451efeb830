"""`imagenet-sketch eval` against timm's own evaluation route, each in its own fresh process, on the same data.

    python benchmarks/make_archive.py /work/bench-data/eval.zip --classes 100 --per-class 10 [--modes L]
    python benchmarks/bench_eval.py /work/bench-data/eval.zip [--workers 2] [--repeat 5]

Set-up, outside every timing: the archive is built and exported to a package at a lower-case path (timm
lower-cases `hfds/` names), timm's `create_dataset("hfds/<package>", split="train")` prepares its own copy, and
one random-init checkpoint of the model is saved, so both routes load the same weights as a user would.

Then one untimed check: every input batch of both routes is hashed, and the run stops if any tensor differs.

Then, per repeat, alternating which goes first, each measurement in a new Python process that imports only
what its route needs (timm's route takes only `timm_loader`, timm's `create_loader` with the config, and never
sets libgomp's spin; ours runs as the CLI does):

(a) input pipeline alone: every image read, decoded and transformed to the model's normalised input tensor,
    ours (`batches.input_batches` over the package's parquet, normalised as `on_device` does) against timm's
    `create_loader` (hfds reader, prefetcher, same workers, batch size and transform);
(b) a whole CPU evaluation: ours (`evaluate`, every output file written) against timm's loader feeding the same
    checkpoint, softmax top-5 as validate.py computes accuracy; every image's top-5 must be the same on both.

Each process times only its loop (model and loader creation included, Python imports not). Figures are images/s
(median of the repeats, with min-max), ours / timm's, and the ratio of CPU seconds (the process and its loader
workers, live or ended; needs psutil, the `bench` extra), which other work on the machine skews far less than
wall time. Results go to ARCHIVE.eval-bench.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROUTES = ("ours", "timm")


def cpu_seconds() -> float:
    """User + system time of this process, its reaped children, and its live ones: timm's loader keeps its
    workers alive after the loop (persistent_workers), so they are not reaped when the clock stops."""
    import psutil

    own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    live = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
            live += times.user + times.system
        except psutil.NoSuchProcess:  # ended between the listing and the reading
            pass
    return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime + live


def ours_pipeline(args):
    """Normalised input batches as `imagenet-sketch eval` makes them, in index order of arrival."""
    import numpy as np
    import torch

    from imagenet_sketch_tools.evaluation import models, spec
    from imagenet_sketch_tools.evaluation.batches import input_batches
    from imagenet_sketch_tools.evaluation.data import open_source

    loaded = models.load(f"timm:{args.model}", spec.Weights(checkpoint=str(args.checkpoint)))
    rows = open_source(str(args.package))
    for batch in input_batches(rows, np.arange(len(rows)), loaded.preprocess, args.batch_size, args.workers):
        yield batch.index, loaded.preprocess.on_device(batch.pixels, torch.device("cpu"))


def timm_model_and_loader(args):
    """timm's route as validate.py takes it: the model, its resolved data config, the hfds dataset, the loader."""
    import timm
    import timm.data

    from imagenet_sketch_tools.evaluation.preprocess import timm_loader  # timm.data.create_loader, as validate.py

    model = timm.create_model(args.model, checkpoint_path=str(args.checkpoint)).eval()
    config = timm.data.resolve_data_config(model=model)
    dataset = timm.data.create_dataset(f"hfds/{args.package}", root=None, split="train")
    return model, timm_loader(dataset, config, args.batch_size, args.workers)


def timm_pipeline(args):
    _, loader = timm_model_and_loader(args)
    for index, (pixels, _) in enumerate(loader):
        yield index, pixels


def import_route(route: str) -> None:
    """Every module the route uses, imported before the clock starts: imports are not what is compared."""
    import pyarrow.parquet  # noqa: F401
    import timm.data  # noqa: F401
    import torch  # noqa: F401

    if route == "ours":
        import imagenet_sketch_tools.evaluation.batches  # noqa: F401
        import imagenet_sketch_tools.evaluation.models  # noqa: F401
        import imagenet_sketch_tools.evaluation.outputs  # noqa: F401
    else:
        import datasets  # noqa: F401


def digest_of_predictions(top5) -> str:
    """Every row's top-5, best first, in row order: the two routes must predict the same for every image."""
    return hashlib.sha1(top5.tobytes()).hexdigest()


def measure(args) -> dict:
    """One route, one part, in this (fresh) process: seconds, CPU seconds, images, and what must agree (worked
    out after the clock stops)."""
    if args.route == "ours":
        # as `imagenet-sketch eval` runs: the command does this before torch loads (the API leaves it to the caller)
        from imagenet_sketch_tools.evaluation.threads import prefer_short_spin

        prefer_short_spin()
    import_route(args.route)
    import numpy as np

    cpu, started = cpu_seconds(), time.perf_counter()
    if args.part in ("check", "a"):
        pipeline = ours_pipeline(args) if args.route == "ours" else timm_pipeline(args)
        if args.part == "check":  # untimed: every batch's bytes, in index order
            digests = sorted((i, hashlib.sha1(p.contiguous().numpy().tobytes()).hexdigest()) for i, p in pipeline)
            return {"digests": [digest for _, digest in digests]}
        images = sum(len(pixels) for _, pixels in pipeline)
    elif args.route == "ours":
        from imagenet_sketch_tools.evaluation import evaluate, spec

        result = evaluate(
            f"timm:{args.model}",
            str(args.package),
            weights=spec.Weights(checkpoint=str(args.checkpoint)),
            output=args.scratch,
            force=True,
            batch_size=args.batch_size,
            workers=args.workers,
            progress=False,
        )
        images = result.scores.images
    else:
        import torch

        model, loader = timm_model_and_loader(args)
        predicted = []
        with torch.inference_mode():
            for pixels, _ in loader:
                predicted.append(model(pixels).softmax(dim=1).topk(5, dim=1).indices.numpy())
        images = sum(map(len, predicted))
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    agree = None
    if args.part == "b" and args.route == "ours":
        from imagenet_sketch_tools.evaluation import outputs

        top5 = outputs.read_predictions(result.folder).sort_by("row").column("top5").to_pylist()
        agree = digest_of_predictions(np.asarray(top5, dtype=np.int64))
    elif args.part == "b":
        agree = digest_of_predictions(np.concatenate(predicted).astype(np.int64))
    return {"seconds": seconds, "cpu": cpu, "images": images, "agree": agree}


def in_child(args, route: str, part: str) -> dict:
    command = [sys.executable, __file__, "--child", route, part, str(args.archive), "--work-dir", str(args.work)]
    command += ["--model", args.model, "--workers", str(args.workers), "--batch-size", str(args.batch_size)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def prepare(args) -> None:
    """Package, timm's prepared copy and the checkpoint, once: none of it is timed."""
    import timm
    import timm.data
    import torch

    import imagenet_sketch
    from imagenet_sketch_tools.hub import export

    if not (args.package / "data").is_dir():
        built = imagenet_sketch.load(str(args.archive), cache_dir=str(args.work / "cache"), num_proc=2)
        export.export(built, args.package, max_shard_size="100MB", progress=False)
    timm.data.create_dataset(f"hfds/{args.package}", root=None, split="train")
    if not args.checkpoint.exists():
        torch.manual_seed(0)
        torch.save(timm.create_model(args.model).state_dict(), args.checkpoint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path)
    parser.add_argument("--work-dir", type=Path, help="package and caches (default: ARCHIVE_STEM-eval-bench beside it)")
    parser.add_argument("--model", default="mobilenetv3_small_100", help="timm model (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", nargs=2, metavar=("ROUTE", "PART"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = (args.work_dir or args.archive.parent / f"{args.archive.stem}-eval-bench").resolve()
    args.work = Path(str(work).lower())  # timm lower-cases hfds/ names: the package must live at a lower-case path
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_DATASETS_CACHE", str(args.work / "hf-datasets"))
    args.package, args.checkpoint = args.work / "package", args.work / f"{args.model}.pt"
    if args.child:
        args.route, args.part = args.child
        args.scratch = args.work / "eval-out"
        print(json.dumps(measure(args)))
        return

    prepare(args)
    checks = {route: in_child(args, route, "check")["digests"] for route in ROUTES}
    if checks["ours"] != checks["timm"]:
        raise SystemExit("(a) tensors differ from timm's: the comparison is void")
    print(f"{len(checks['ours'])} batches identical on both routes; model {args.model}, workers {args.workers}")
    runs = []
    for repeat in range(args.repeat):
        run = {"load": os.getloadavg()[0]}
        for part in ("a", "b"):
            order = ROUTES if repeat % 2 == 0 else ROUTES[::-1]  # the machine drifts: alternate who goes first
            run[part] = {route: in_child(args, route, part) for route in order}
            if part == "b" and run[part]["ours"]["agree"] != run[part]["timm"]["agree"]:
                raise SystemExit("(b) predictions differ from timm's route: the comparison is void")
        runs.append(run)
        rates = [run[part][route]["images"] / run[part][route]["seconds"] for part in "ab" for route in ROUTES]
        print("repeat {}: load {:.2f}; (a) ours {:.1f} img/s, timm {:.1f}; (b) ours {:.1f}, timm {:.1f}".format(
            repeat + 1, run["load"], *rates))  # fmt: skip
    report(runs)
    saved = {key: str(value) for key, value in vars(args).items()}
    args.archive.with_suffix(".eval-bench.json").write_text(json.dumps({"args": saved, "runs": runs}, indent=2))


def report(runs: list[dict]) -> None:
    print("\n| comparison | ours img/s (min-max) | timm img/s (min-max) | ours / timm (min-max) | timm CPU-s / ours |")
    print("|---|---|---|---|---|")
    for part, label in (("a", "(a) input pipeline"), ("b", "(b) whole CPU eval")):
        rate = {route: [run[part][route]["images"] / run[part][route]["seconds"] for run in runs] for route in ROUTES}
        ratios = [ours / theirs for ours, theirs in zip(rate["ours"], rate["timm"])]
        cpu = [run[part]["timm"]["cpu"] / run[part]["ours"]["cpu"] for run in runs]
        cells = [f"{statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})" for v in (rate["ours"], rate["timm"])]
        print(
            f"| {label} | {cells[0]} | {cells[1]} "
            f"| **{statistics.median(ratios):.2f}x** ({min(ratios):.2f}-{max(ratios):.2f}) "
            f"| {statistics.median(cpu):.2f}x ({min(cpu):.2f}-{max(cpu):.2f}) |"
        )


if __name__ == "__main__":
    main()
