"""`imagenet-sketch eval` against timm's own evaluation route, each in its own fresh process, on the same data.

    python benchmarks/make_archive.py /work/bench-data/eval.zip --classes 100 --per-class 10 [--modes L]
    python benchmarks/bench_eval.py /work/bench-data/eval.zip [--workers 2] [--repeat 5] [--parts abcd]

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

(c) many models of one uint8 stage (`STAGE`: timm's test models at 160 px, bicubic, crop 0.95, random init seeded
    as ours seeds it): ours runs all four in one `evaluate_models` (each image decoded once), timm's loader runs once
    per model (in one process); the top-5 of every model must agree. Beside them, in one process: our input
    pipeline alone for the stage, then each model's forward pass (normalisation, model, softmax top-5) timed alone
    on those batches held in memory; and ours with the first model alone, for the marginal cost of one more model;
(d) a warm input cache (filled once, outside the timings): the input pipeline read from it against timm's
    loader for the same config (identical tensors: checked with the rest), and a whole CPU eval of the stage's
    first model from it against timm's route.

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
from typing import Any

ROUTES = ("ours", "timm")
STAGE = ("test_vit", "test_vit2", "test_vit3", "test_convnext")  # one uint8 stage: 160 px, bicubic, crop 0.95


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


def ours_loaded(args, name: str | None = None):
    """`args.model` with its checkpoint, or the stage model `name` with the seeded random init."""
    from imagenet_sketch_tools.evaluation import models, spec

    if name is None:
        return models.load(f"timm:{args.model}", spec.Weights(checkpoint=str(args.checkpoint)))
    return models.load(f"timm:{name}", spec.Weights(pretrained=False))


def ours_batches(args, loaded, cache: bool = False):
    """CPU batches as `imagenet-sketch eval` makes them (read from the warm input cache if `cache`)."""
    import numpy as np

    from imagenet_sketch_tools.evaluation.batches import input_batches
    from imagenet_sketch_tools.evaluation.data import open_source
    from imagenet_sketch_tools.evaluation.input_cache import InputCache, cache_key

    rows = open_source(str(args.package))
    selected = np.arange(len(rows))
    kept = None
    if cache:
        kept = InputCache(
            args.input_cache, cache_key(rows.identity, loaded.preprocess.stage, selected, args.batch_size)
        )
    return input_batches(rows, selected, loaded.preprocess, args.batch_size, args.workers, cache=kept)


def ours_pipeline(args, name: str | None = None, cache: bool = False):
    """Normalised input batches as `imagenet-sketch eval` makes them, in index order of arrival."""
    import torch

    loaded = ours_loaded(args, name)
    for batch in ours_batches(args, loaded, cache):
        yield batch.index, loaded.preprocess.on_device(batch.pixels, torch.device("cpu"))


def timm_model_and_loader(args, name: str | None = None):
    """timm's route as validate.py takes it: the model (`args.model` from its checkpoint, or the stage model `name`
    with ours' seeded random init), its resolved data config, the hfds dataset, the loader."""
    import timm
    import timm.data
    import torch

    from imagenet_sketch_tools.evaluation.preprocess import timm_loader  # timm.data.create_loader, as validate.py

    if name is None:
        model = timm.create_model(args.model, checkpoint_path=str(args.checkpoint)).eval()
    else:
        torch.manual_seed(0)  # as models.load seeds a random init
        model = timm.create_model(name, pretrained=False).eval()
    config = timm.data.resolve_data_config(model=model)
    dataset = timm.data.create_dataset(f"hfds/{args.package}", root=None, split="train")
    return model, timm_loader(dataset, config, args.batch_size, args.workers)


def timm_pipeline(args, name: str | None = None):
    _, loader = timm_model_and_loader(args, name)
    for index, (pixels, _) in enumerate(loader):
        yield index, pixels


def timm_eval(args, name: str | None = None):
    """timm's route, whole: its loader feeding the model, softmax top-5 as validate.py computes accuracy."""
    import torch

    model, loader = timm_model_and_loader(args, name)
    predicted = []
    with torch.inference_mode():
        for pixels, _ in loader:
            predicted.append(model(pixels).softmax(dim=1).topk(5, dim=1).indices.numpy())
    return predicted


def ours_eval(args, names: list[str], **options):
    """`evaluate_models` as the command runs it, every output file written; (images, top-5 per model in row order)."""
    import numpy as np

    from imagenet_sketch_tools.evaluation import evaluate_models, outputs, spec

    results = evaluate_models(
        [f"timm:{name}" for name in names], str(args.package), weights=spec.Weights(pretrained=False),
        output=args.scratch, force=True, batch_size=args.batch_size, workers=args.workers, progress=False, **options,
    )  # fmt: skip
    folders = [result.folder for result in results if result.folder is not None]  # output= names one
    top5 = [outputs.read_predictions(folder).sort_by("row").column("top5").to_pylist() for folder in folders]
    return results[0].scores.images, [np.asarray(t, dtype=np.int64) for t in top5]


def stage_parts(args) -> dict:
    """Our input pipeline alone for the stage, then each stage model's forward pass alone on its batches."""
    import torch

    from imagenet_sketch_tools.evaluation.batches import forward

    loaded = [ours_loaded(args, name) for name in STAGE]
    cpu, started = cpu_seconds(), time.perf_counter()
    kept = [batch.pixels for batch in ours_batches(args, loaded[0])]
    pipeline, pipeline_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    device, seconds, cpus = torch.device("cpu"), [], []
    for model in loaded:
        module = model.module.eval()
        cpu, started = cpu_seconds(), time.perf_counter()
        for pixels in kept:
            forward(module, model.preprocess.on_device(pixels, device), device, amp=False)
        seconds.append(time.perf_counter() - started)
        cpus.append(cpu_seconds() - cpu)
    return {"pipeline": pipeline, "forward": seconds, "pipeline_cpu": pipeline_cpu, "forward_cpu": cpus}


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
    agree = None
    if args.part == "c-parts":
        return stage_parts(args)
    if args.part in ("check", "a", "check-d", "d-pipeline"):
        name = STAGE[0] if args.part in ("check-d", "d-pipeline") else None
        cache = args.route == "ours" and name is not None  # (d): ours from the warm input cache
        pipeline = ours_pipeline(args, name, cache) if args.route == "ours" else timm_pipeline(args, name)
        if args.part.startswith("check"):  # untimed: every batch's bytes, in index order
            digests = sorted((i, hashlib.sha1(p.contiguous().numpy().tobytes()).hexdigest()) for i, p in pipeline)
            return {"digests": [digest for _, digest in digests]}
        images = sum(len(pixels) for _, pixels in pipeline)
    elif args.part in ("c", "c1", "d-eval"):
        names = {"c": list(STAGE), "c1": list(STAGE[:1]), "d-eval": list(STAGE[:1])}[args.part]
        if args.route == "ours":
            cache = {"input_cache": args.input_cache} if args.part == "d-eval" else {}
            images, top5 = ours_eval(args, names, **cache)
        else:
            top5 = [np.concatenate(timm_eval(args, name)).astype(np.int64) for name in names]
            images = len(top5[0])
        agree = digest_of_predictions(np.concatenate(top5))
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
        predicted = timm_eval(args)
        images = sum(map(len, predicted))
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
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
    """Package, timm's prepared copy, the checkpoint and the warm input cache, once: none of it is timed."""
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
    if "d" in args.parts:
        from imagenet_sketch_tools.evaluation import evaluate, spec

        weights = spec.Weights(pretrained=False)
        options = {"batch_size": args.batch_size, "workers": args.workers, "input_cache": args.input_cache}
        evaluate(f"timm:{STAGE[0]}", str(args.package), weights=weights, **options)  # fills it (or finds it full)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path)
    parser.add_argument("--work-dir", type=Path, help="package and caches (default: ARCHIVE_STEM-eval-bench beside it)")
    parser.add_argument("--model", default="mobilenetv3_small_100", help="timm model (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--parts", default="abcd", help="which of (a)-(d) to run (default: %(default)s)")
    parser.add_argument("--child", nargs=2, metavar=("ROUTE", "PART"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = (args.work_dir or args.archive.parent / f"{args.archive.stem}-eval-bench").resolve()
    args.work = Path(str(work).lower())  # timm lower-cases hfds/ names: the package must live at a lower-case path
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_DATASETS_CACHE", str(args.work / "hf-datasets"))
    args.package, args.checkpoint = args.work / "package", args.work / f"{args.model}.pt"
    args.input_cache = args.work / "input-cache"
    if args.child:
        args.route, args.part = args.child
        args.scratch = args.work / "eval-out"
        print(json.dumps(measure(args)))
        return

    prepare(args)
    for check, part in (("check", "ab"), ("check-d", "d")):
        if set(part) & set(args.parts):
            checks = {route: in_child(args, route, check)["digests"] for route in ROUTES}
            if checks["ours"] != checks["timm"]:
                raise SystemExit(f"({part}) tensors differ from timm's: the comparison is void")
            print(f"({part}) {len(checks['ours'])} batches identical on both routes; workers {args.workers}")
    runs = []
    for repeat in range(args.repeat):
        run: dict[str, Any] = {"load": os.getloadavg()[0]}
        order = ROUTES if repeat % 2 == 0 else ROUTES[::-1]  # the machine drifts: alternate who goes first
        for part in [p for p in ("a", "b", "c", "d-pipeline", "d-eval") if p[0] in args.parts]:
            run[part] = {route: in_child(args, route, part) for route in order}
            if part in ("b", "c", "d-eval") and run[part]["ours"]["agree"] != run[part]["timm"]["agree"]:
                raise SystemExit(f"({part}) predictions differ from timm's route: the comparison is void")
        if "c" in args.parts:
            run["c1"], run["c-parts"] = in_child(args, "ours", "c1"), in_child(args, "ours", "c-parts")
        runs.append(run)
        rates = {part: "/".join(f"{run[part][r]['images'] / run[part][r]['seconds']:.0f}" for r in ROUTES)
                 for part in run if part in ("a", "b", "c", "d-pipeline", "d-eval")}  # fmt: skip
        print(f"repeat {repeat + 1}: load {run['load']:.2f}; img/s ours/timm {rates}", flush=True)
    report(runs)
    report_groups(runs)
    saved = {key: str(value) for key, value in vars(args).items()}
    args.archive.with_suffix(".eval-bench.json").write_text(json.dumps({"args": saved, "runs": runs}, indent=2))


def spread(values: list[float], unit: str = "", digits: int = 2) -> str:
    """The median, and (min-max) of the repeats."""
    return f"{statistics.median(values):.{digits}f}{unit} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def report_groups(runs: list[dict]) -> None:
    """(c) and (d): many models of one stage, and the warm input cache."""
    if "c" in runs[0]:
        ours = [run["c"]["ours"]["seconds"] for run in runs]
        timm = [run["c"]["timm"]["seconds"] for run in runs]
        bound = [run["c-parts"]["pipeline"] + sum(run["c-parts"]["forward"]) for run in runs]
        first = [run["c1"]["seconds"] for run in runs]
        marginal = [(total - one) / (len(STAGE) - 1) / one for total, one in zip(ours, first)]
        print(f"\n(c) {len(STAGE)} models of one stage ({', '.join(STAGE)}), seconds, median (min-max):")
        print(f"- ours, one run: {spread(ours, ' s')}; timm's loader once per model: {spread(timm, ' s')}")
        print(f"- timm / ours: **{spread([t / o for t, o in zip(timm, ours)], 'x')}**")
        print(f"- one input pipeline + the {len(STAGE)} forward passes, each alone: {spread(bound, ' s')}; "
              f"ours / that: **{spread([o / b for o, b in zip(ours, bound)])}** (goal: at most 1.15)")  # fmt: skip
        ours_cpu = [run["c"]["ours"]["cpu"] for run in runs]
        bound_cpu = [run["c-parts"]["pipeline_cpu"] + sum(run["c-parts"]["forward_cpu"]) for run in runs]
        timm_cpu = [run["c"]["timm"]["cpu"] for run in runs]
        print(f"- in CPU seconds: ours {spread(ours_cpu)}, the parts alone {spread(bound_cpu)}, ours / parts "
              f"**{spread([o / b for o, b in zip(ours_cpu, bound_cpu)])}**, timm / ours "
              f"**{spread([t / o for t, o in zip(timm_cpu, ours_cpu)], 'x')}**")  # fmt: skip
        pipeline = [run["c-parts"]["pipeline"] for run in runs]
        forwards = [[run["c-parts"]["forward"][k] for run in runs] for k in range(len(STAGE))]
        print(f"- the pipeline alone {spread(pipeline, ' s')}; forward passes " + ", ".join(
            f"{name} {spread(seconds, ' s')}" for name, seconds in zip(STAGE, forwards)))  # fmt: skip
        print(f"- the first model alone (ours): {spread(first, ' s')}; one more model of the stage costs "
              f"**{spread([100 * m for m in marginal], '%', 0)}** of it")  # fmt: skip
    if "d-pipeline" in runs[0]:
        for part, label, goal in (("d-pipeline", "input pipeline", 10), ("d-eval", f"whole CPU eval of {STAGE[0]}", 3)):
            rate = {r: [run[part][r]["images"] / run[part][r]["seconds"] for run in runs] for r in ROUTES}
            ratio = [o / t for o, t in zip(rate["ours"], rate["timm"])]
            print(f"(d) {label} from the warm input cache: {spread(rate['ours'], ' img/s', 0)}, timm's loader "
                  f"{spread(rate['timm'], ' img/s', 0)}: **{spread(ratio, 'x', 1)}** (goal: {goal}x)")  # fmt: skip


def report(runs: list[dict]) -> None:
    if "a" not in runs[0]:
        return
    print("\n| comparison | ours img/s (min-max) | timm img/s (min-max) | ours / timm (min-max) | timm CPU-s / ours |")
    print("|---|---|---|---|---|")
    for part, label in (("a", "(a) input pipeline"), ("b", "(b) whole CPU eval")):
        if part not in runs[0]:
            continue
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
