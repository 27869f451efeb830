"""`imagenet-sketch eval`: score ImageNet-1k classifiers on ImageNet-Sketch (results.csv, per-class figures,
predictions, leaderboard.md, mistakes.png), each with its own library's eval preprocessing."""

from __future__ import annotations

import argparse
import sys

from imagenet_sketch_tools.cli.main import PROG
from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.evaluation import LocalEngine, RayEngine, RayOptions, evaluate_models
from imagenet_sketch_tools.evaluation.api import run_summary
from imagenet_sketch_tools.evaluation.data import open_source
from imagenet_sketch_tools.evaluation.spec import TEMPLATES, Weights, parse_spec
from imagenet_sketch_tools.evaluation.threads import prefer_short_spin
from imagenet_sketch_tools.report.page import write_report


def add_to(commands) -> None:
    parser = commands.add_parser(
        "eval",
        help="top-1/top-5 of ImageNet classifiers: results.csv, leaderboard.md",
        description="MODEL is timm:NAME (or a bare timm name), torchvision:NAME[:WEIGHTS], hf:REPO, "
        "open_clip:ARCH[:PRETRAINED] or python:MODULE:FUNCTION.",
    )
    parser.add_argument("models", nargs="+", metavar="MODEL", help="e.g. timm:resnet50.tv_in1k")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--source",
        help="ImageNet-Sketch.zip, its folder, a zip URL, an exported package folder (data/*.parquet) "
        "or hf://datasets/NS/NAME (default: the release, as load() finds it)",
    )
    where.add_argument("--sample", action="store_true", help="use the embedded sample archive (a few classes)")
    parser.add_argument("--output", "-o", default="eval", help="folder for the results (default: ./eval)")
    # not an argparse group: excluding each other is checked by Weights, one line as every other error
    parser.add_argument("--checkpoint", help="weights to load: a state dict (.pt/.pth) or .safetensors file")
    parser.add_argument("--no-pretrained", action="store_true", help="random init (no weights fetched)")
    parser.add_argument(
        "--use-train-size",
        action="store_true",
        help="timm models: the train-size data config (default: the test size and crop timm's validate.py uses)",
    )
    parser.add_argument(
        "--templates",
        choices=TEMPLATES,
        default="openai",
        help="open_clip models: CLIP's 80 prompt templates (openai, default) or its 7-template subset (simple)",
    )
    parser.add_argument("--batch-size", "-b", type=int, default=64, help="images per batch (default: 64)")
    parser.add_argument("--workers", "-j", type=int, default=None, help="decoding processes (default: min(4, CPUs))")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"], help="default: auto")
    parser.add_argument("--amp", action="store_true", help="mixed precision (autocast) for the forward pass")
    parser.add_argument("--limit", type=int, help="evaluate N images, evenly spaced over the rows (quick runs)")
    parser.add_argument("--classes", help="comma-separated wnids to evaluate, e.g. n01440764,n02012849")
    parser.add_argument(
        "--skip-unreadable", action="store_true", help="leave undecodable images out of every denominator"
    )
    parser.add_argument("--force", action="store_true", help="run models again even if already evaluated")
    parser.add_argument(
        "--reference",
        help="'timm' (its published results-sketch.csv, bundled) or a results CSV to compare against, row by "
        "model and img_size",
    )
    parser.add_argument("--cache-dir", help="datasets cache folder (default: the HF datasets cache)")
    parser.add_argument(
        "--input-cache",
        metavar="DIR",
        help="keep the decoded, resized and cropped images (uint8) here, and read them back in later runs of "
        "models with the same input size, interpolation and crop instead of decoding (see README)",
    )
    ray = parser.add_argument_group("engine", "where the models run (--engine ray: see README, Many models)")
    ray.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: this process (default); ray: an actor pool per model on a Ray cluster, reading an "
        "exported package's parquet shards",
    )
    ray.add_argument("--address", help="ray: the cluster to join ('auto': the one `ray start` made here); "
                     "without it a local cluster is started for the run")  # fmt: skip
    ray.add_argument("--actors", type=int, default=1, help="ray: actors per model, each loading it once (default: 1)")
    ray.add_argument("--gpus-per-actor", type=float, default=0.0, help="ray: GPUs each actor holds (default: 0)")
    ray.add_argument(
        "--models-per-actor",
        type=int,
        default=0,
        help="ray: at most N models of an input group in one actor, for groups too big for its memory "
        "(each part decodes the images again; default: 0, the whole group)",
    )
    parser.set_defaults(run=run)


def engine_of(args: argparse.Namespace) -> LocalEngine | RayEngine:
    """The engine --engine names; Ray's flags are refused without it (the rest is checked by the engine)."""
    given = [flag for flag, value in (("--address", args.address), ("--actors", args.actors != 1),
                                      ("--gpus-per-actor", args.gpus_per_actor),
                                      ("--models-per-actor", args.models_per_actor)) if value]  # fmt: skip
    if args.engine == "local":
        if given:
            raise UserError(f"{', '.join(given)} need(s) --engine ray")
        return LocalEngine()
    options = RayOptions(
        address=args.address, actors=args.actors, gpus_per_actor=args.gpus_per_actor,
        models_per_actor=args.models_per_actor,
    )  # fmt: skip
    return RayEngine(options)


def run(args: argparse.Namespace) -> int:
    # Before anything loads torch: on the CPU the forward pass then leaves the cores to the decoding workers
    # (threads.py). The command's own choice; the Python API leaves the environment alone.
    prefer_short_spin()
    specs = [parse_spec(text) for text in args.models]  # a typo fails before anything is read
    weights = Weights(checkpoint=args.checkpoint, pretrained=not args.no_pretrained)
    engine = engine_of(args)
    source = args.source
    if args.sample and args.engine == "ray":
        raise UserError(
            "--engine ray reads an exported package: run imagenet-sketch export --sample --output DIR first, "
            "then eval --engine ray --source DIR"
        )
    if args.sample:
        import imagenet_sketch  # the builder: a command may run it, and only --sample needs it here

        source = imagenet_sketch.load(name="sample", cache_dir=args.cache_dir)
    classes = tuple(wnid.strip() for wnid in args.classes.split(",") if wnid.strip()) if args.classes else None
    try:
        results = evaluate_models(
            specs,
            source,
            weights=weights,
            output=args.output,
            batch_size=args.batch_size,
            workers=args.workers,
            device=args.device,
            amp=args.amp,
            limit=args.limit,
            classes=classes,
            skip_unreadable=args.skip_unreadable,
            force=args.force,
            reference=args.reference,
            progress=True,
            cache_dir=args.cache_dir,
            use_train_size=args.use_train_size,
            templates=args.templates,
            input_cache=args.input_cache,
            engine=engine,
        )
    except KeyboardInterrupt:
        # unlike the other commands, eval keeps what it finished: say so instead of cli's generic message
        kept = "finished models" if args.engine == "ray" else "finished batches"  # ray resumes per model
        print(
            f"{PROG}: interrupted; {kept} are kept in {args.output}, run the same command to continue",
            file=sys.stderr,
        )
        return 130
    for result in results:
        print(result.summary())
    print(run_summary(results))
    print(f"results.csv and leaderboard.md in {args.output}")
    print(report_of(args.output, source, args.cache_dir))
    return 0


def report_of(output: str, source: object, cache_dir: str | None) -> str:
    """report.html of everything in the output folder, its thumbnails read from the rows just evaluated; what
    it wrote, or why not (the scores are written already: a report that fails does not undo them)."""
    try:
        rows = open_source(source, cache_dir=cache_dir)  # opened already by the run: its copy is prepared
        return write_report(output, source=rows.images_by_path).summary()
    except UserError as error:
        return f"report.html not written: {error}"
