"""`imagenet-sketch eval` against timm's own evaluation route, in one run on the same data and cores.

    python benchmarks/make_archive.py /work/bench-data/eval.zip --classes 100 --per-class 10
    python benchmarks/bench_eval.py /work/bench-data/eval.zip [--workers 2] [--repeat 3]

The archive is built and exported once (outside the timings) to a package at a lower-case path; timm's
`create_dataset("hfds/<package>", split="train")` prepares its own copy, also outside the timings. Then, per
repeat, alternating which goes first:

(a) input pipeline alone: every image read, decoded and transformed to the model's normalised input tensor,
    ours (`loop.input_batches` over the package's parquet + normalisation on the device) against timm's
    `create_loader` (hfds reader, prefetcher, same workers, batch size and transform). Each batch's bytes are
    hashed on both sides: the run stops if any tensor differs.
(b) a whole CPU evaluation of a small model (random init): ours (`evaluate`, every output file included)
    against timm's loader feeding the same model, softmax top-5 as validate.py computes accuracy; the two
    top-1 counts must agree.

Figures are images/s (median of the repeats, with min-max), ours / timm's, and the ratio of CPU seconds (this
process and its loader workers), which other work on the machine skews far less than wall time. Run it on a
quiet machine; the load average at the start of each repeat is printed and saved to ARCHIVE.eval-bench.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import timm
import timm.data
import torch

import imagenet_sketch
from imagenet_sketch_tools.evaluation import evaluate, models, spec
from imagenet_sketch_tools.evaluation.data import open_rows
from imagenet_sketch_tools.evaluation.loop import input_batches
from imagenet_sketch_tools.evaluation.preprocess import timm_loader
from imagenet_sketch_tools.hub import export


def digest_of(pixels: torch.Tensor) -> str:
    return hashlib.sha1(pixels.contiguous().numpy().tobytes()).hexdigest()


def ours_pipeline(package: Path, loaded, batch_size: int, workers: int, limit: int | None = None):
    rows = open_rows(str(package))
    selected = np.arange(len(rows) if limit is None else min(limit, len(rows)))
    cpu = torch.device("cpu")
    for batch in input_batches(rows, selected, loaded.preprocess, batch_size, workers):
        yield batch.index, loaded.preprocess.on_device(batch.pixels, cpu)


def cpu_seconds() -> float:
    """User + system time of this process and its reaped children (the loader's workers, joined when done):
    far less skewed than wall time when other work shares the cores."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


CPU = {}


def timed(function) -> tuple[float, object]:
    """Wall seconds and the value; the CPU seconds go to CPU[function's name]."""
    cpu, started = cpu_seconds(), time.perf_counter()
    value = function()
    CPU[function.__name__] = cpu_seconds() - cpu
    return time.perf_counter() - started, value


def in_turn(ours, theirs, repeat: int):
    """Both timed, ours first on even repeats and timm's first on odd ones (the machine drifts)."""
    if repeat % 2:
        their_seconds, their_value = timed(theirs)
        our_seconds, our_value = timed(ours)
    else:
        our_seconds, our_value = timed(ours)
        their_seconds, their_value = timed(theirs)
    return our_seconds, our_value, their_seconds, their_value


def pipeline_a(package, dataset, loaded, args) -> dict:
    config = loaded.preprocess.config
    pipeline = ours_pipeline(package, loaded, args.batch_size, args.workers)
    # batches arrive interleaved across workers; each is hashed as it comes, compared in index order

    def ours_a():
        return [digest for _, digest in sorted((i, digest_of(p)) for i, p in pipeline)]

    def timm_a():
        loader = timm_loader(dataset, config, args.batch_size, args.workers)
        return [digest_of(pixels) for pixels, _ in loader]

    ours_seconds, ours, timm_seconds, theirs = in_turn(ours_a, timm_a, args.repeat_index)
    if ours != theirs:
        raise SystemExit("(a) tensors differ from timm's: the comparison is void")
    return {"images": len(dataset), "ours_s": ours_seconds, "timm_s": timm_seconds,
            "ours_cpu": CPU["ours_a"], "timm_cpu": CPU["timm_a"]}  # fmt: skip


def whole_b(package, dataset, loaded, args, work: Path) -> dict:
    def ours():
        output = work / "eval-out"
        shutil.rmtree(output, ignore_errors=True)
        return evaluate(
            loaded, str(package), output=output, batch_size=args.batch_size, workers=args.workers, progress=False
        )

    def theirs():
        module = loaded.module.eval()
        hits = 0
        with torch.inference_mode():
            for pixels, target in timm_loader(dataset, loaded.preprocess.config, args.batch_size, args.workers):
                top5 = module(pixels).softmax(dim=1).topk(5, dim=1).indices
                hits += int((top5[:, 0] == target).sum())
        return hits

    ours_seconds, result, timm_seconds, hits = in_turn(ours, theirs, args.repeat_index)
    if result.scores.top1_correct != hits:
        raise SystemExit("(b) top-1 differs from timm's route: the comparison is void")
    return {"images": len(dataset), "ours_s": ours_seconds, "timm_s": timm_seconds,
            "ours_cpu": CPU["ours"], "timm_cpu": CPU["theirs"]}  # fmt: skip


def prepare(archive: Path, work: Path) -> Path:
    package = work / "package"
    if not (package / "data").is_dir():
        built = imagenet_sketch.load(str(archive), cache_dir=str(work / "cache"), num_proc=2)
        export.export(built, package, max_shard_size="100MB", progress=False)
    return package


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path)
    parser.add_argument("--work-dir", type=Path, help="package and caches (default: ARCHIVE_STEM-eval-bench beside it)")
    parser.add_argument(
        "--model", default="mobilenetv3_small_100", help="timm model, random init (default: %(default)s)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = (args.work_dir or args.archive.parent / f"{args.archive.stem}-eval-bench").resolve()
    work = Path(str(work).lower())  # timm lower-cases hfds/ names: the package must live at a lower-case path
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_DATASETS_CACHE", str(work / "hf-datasets"))
    package = prepare(args.archive, work)
    dataset = timm.data.create_dataset(f"hfds/{package}", root=None, split="train")
    loaded = models.load(f"timm:{args.model}", spec.Weights(pretrained=False))
    print(f"{len(dataset)} images, model {args.model}, config {loaded.preprocess.config}, workers {args.workers}")

    runs = []
    with tempfile.TemporaryDirectory(dir=work) as scratch:
        for repeat in range(args.repeat):
            args.repeat_index = repeat
            load = os.getloadavg()[0]
            a = pipeline_a(package, dataset, loaded, args)
            b = whole_b(package, dataset, loaded, args, Path(scratch))
            runs.append({"load": load, "a": a, "b": b})
            rates = [run["images"] / run[side] for run in (a, b) for side in ("ours_s", "timm_s")]
            print("repeat {}: load {:.2f}; (a) ours {:.1f} img/s, timm {:.1f}; (b) ours {:.1f}, timm {:.1f}".format(
                repeat + 1, load, *rates))  # fmt: skip
    report(runs)
    args.archive.with_suffix(".eval-bench.json").write_text(
        json.dumps(
            {"args": vars(args) | {"archive": str(args.archive), "work_dir": str(work)}, "runs": runs},
            indent=2,
            default=str,
        )
    )


def report(runs: list[dict]) -> None:
    print("\n| comparison | ours img/s (min-max) | timm img/s (min-max) | ours / timm (min-max) | timm CPU-s / ours |")
    print("|---|---|---|---|---|")
    for key, label in (("a", "(a) input pipeline"), ("b", "(b) whole CPU eval")):
        ours = [run[key]["images"] / run[key]["ours_s"] for run in runs]
        theirs = [run[key]["images"] / run[key]["timm_s"] for run in runs]
        ratios = [o / t for o, t in zip(ours, theirs)]
        cpu = [run[key]["timm_cpu"] / run[key]["ours_cpu"] for run in runs]
        print(
            f"| {label} | {statistics.median(ours):.1f} ({min(ours):.1f}-{max(ours):.1f}) "
            f"| {statistics.median(theirs):.1f} ({min(theirs):.1f}-{max(theirs):.1f}) "
            f"| **{statistics.median(ratios):.2f}x** ({min(ratios):.2f}-{max(ratios):.2f}) "
            f"| {statistics.median(cpu):.2f}x ({min(cpu):.2f}-{max(cpu):.2f}) |"
        )


if __name__ == "__main__":
    main()
