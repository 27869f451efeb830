"""The public API: `evaluate(model, source)` scores one model, `evaluate_models(models, source)` several on the
same rows. Batches are computed in order and each finished one is saved in the model's folder, so an
interrupted run continues where it stopped; a finished model is not run again unless `force`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.dataset.classes import label_of_wnid
from imagenet_sketch_tools.evaluation import outputs
from imagenet_sketch_tools.evaluation.data import Meta, Rows, open_rows
from imagenet_sketch_tools.evaluation.metrics import Scores, score
from imagenet_sketch_tools.evaluation.partial import PARTIAL, collect_partial, read_json
from imagenet_sketch_tools.evaluation.spec import Loaded, Spec, Weights, parse_spec
from imagenet_sketch_tools.evaluation.threads import prefer_short_spin

RUN_FILE = "run.json"
LISTED_UNREADABLE = 20
RANDOM_INIT = "-random-init"


@dataclass(frozen=True)
class Settings:
    output: Path = Path("eval")
    batch_size: int = 64
    workers: int | None = None  # None: min(4, CPUs)
    device: str = "auto"
    amp: bool = False
    limit: int | None = None
    classes: tuple[str, ...] | None = None
    skip_unreadable: bool = False
    force: bool = False
    reference: str | None = None
    progress: bool = True
    on_batch: Callable[[int], None] | None = None  # called with each saved batch's index (tests interrupt here)


@dataclass
class Result:
    model: str
    backbone: str
    folder: Path
    scores: Scores
    unreadable: list[tuple[str, str]]  # (path, reason): left out of every denominator
    selection: str  # what was evaluated, e.g. "all 50,889 images" or "--limit 500: ..."
    seconds: float = 0.0
    computed: int = 0  # images run through the model now (not resumed, not already finished)
    reused: bool = False  # already finished: read back, not run
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        s = self.scores
        parts = [
            f"{self.model}: top-1 {s.top1:.3f}%, top-5 {s.top5:.3f}%, mean per-class recall {s.mean_class_recall:.3f}%",
            f"on {s.images:,} images of {len(s.per_class)} classes ({self.selection})",
        ]
        parts.extend(self.notes)
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} unreadable image(s) left out (--skip-unreadable)")
        if self.reused:
            parts.append("already evaluated, read back (--force runs it again)")
        elif self.seconds > 0 and self.computed:
            parts.append(f"{self.computed / self.seconds:,.1f} images/s")
        return "; ".join(parts) + f" -> {self.folder}"


def select(meta: Meta, limit: int | None, classes: Sequence[str] | None) -> tuple[np.ndarray, str]:
    """The row indices to evaluate and how to say which: every row, the rows of `classes`, then `limit` rows
    spread evenly over them (every class keeps a share, unlike the first N rows, which would be a few classes)."""
    rows = np.arange(len(meta.labels), dtype=np.int64)
    said = []
    if classes:
        unknown = [wnid for wnid in classes if wnid not in label_of_wnid()]
        if unknown:
            raise UserError(f"--classes: {', '.join(unknown[:5])} not ImageNet-1k wnids (e.g. n01440764)")
        wanted = {label_of_wnid()[wnid] for wnid in classes}
        rows = rows[np.isin(meta.labels, list(wanted))]
        said.append(f"--classes: {len(wanted)} class(es)")
    if limit is not None:
        if limit < 1:
            raise UserError(f"--limit must be at least 1, not {limit}")
        if limit < len(rows):
            rows = rows[np.linspace(0, len(rows) - 1, limit).round().astype(np.int64)]
            said.append(f"--limit {limit}: evenly spaced rows")
    if len(rows) == 0:
        raise UserError("no images to evaluate: the source has none" + (" of those classes" if classes else ""))
    return rows, "; ".join(said) or f"all {len(meta.labels):,} images"


def evaluate(model, source=None, *, weights: Weights | None = None, **settings) -> Result:
    """Score one model (a spec such as `timm:resnet50.tv_in1k`, a `spec.Loaded`, or a torch module taking
    timm's default 224 input) on `source` (None: the release; a `datasets.Dataset`; a zip, folder, URL; an
    exported package folder or `hf://datasets/NS/NAME`). Keyword settings are those of `Settings`."""
    return evaluate_models([model], source, weights=weights, **settings)[0]


def evaluate_models(
    models: Sequence,
    source=None,
    *,
    weights: Weights | None = None,
    cache_dir: str | None = None,
    engine: Engine | None = None,
    **settings,
) -> list[Result]:
    """Score each model on the same rows. `engine` computes one model's predictions (default: this process,
    see `compute_locally`; `ray_engine` gives one that runs on a Ray cluster); the rest is the same for all."""
    prefer_short_spin()  # before torch loads OpenMP: the forward pass leaves the cores to the decoding workers
    config = Settings(**{**settings, "output": Path(settings.get("output", Settings.output))})
    if config.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, not {config.batch_size}")
    specs = [parse_spec(model) if isinstance(model, str) else model for model in models]  # bad specs fail first
    rows = open_rows(source, cache_dir=cache_dir)
    meta = rows.meta()
    selected, selection = select(meta, config.limit, config.classes)
    config.output.mkdir(parents=True, exist_ok=True)
    reference = outputs.read_reference(config.reference) if config.reference else None
    results = []
    engine = engine or compute_locally
    for spec in specs:
        result = evaluate_one(spec, weights or Weights(), rows, meta, selected, selection, config, engine)
        results.append(result)
        rows_written = outputs.update_results(config.output, [result_row(result)], reference)
        outputs.write_leaderboard(config.output, rows_written, backbones(config.output))
    return results


def result_row(result: Result) -> dict:
    run = json.loads((result.folder / RUN_FILE).read_text())
    return outputs.results_row(
        result.model, result.scores, run["param_count"], run["img_size"], run["crop_pct"], run["interpolation"]
    )


def backbones(output: Path) -> dict[str, str]:
    found = {}
    for run_file in output.glob(f"*/{RUN_FILE}"):
        run = json.loads(run_file.read_text())
        found[run["model"]] = run["backbone"]
    return found


def identity(spec, weights: Weights, rows: Rows, selected: np.ndarray, config: Settings) -> dict:
    """What decides a model's predictions: when any of it changes, earlier batches are not reused."""
    checkpoint = None
    if weights.checkpoint:
        status = os.stat(weights.checkpoint)
        checkpoint = f"{os.path.abspath(weights.checkpoint)}:{status.st_size}:{status.st_mtime_ns}"
    return {
        "spec": spec.text if isinstance(spec, Spec) else f"object:{type(spec).__name__}:{id(spec)}",
        "checkpoint": checkpoint,
        "pretrained": weights.pretrained,
        "source": rows.identity,
        "rows": hashlib.sha256(selected.tobytes()).hexdigest()[:16],
        "amp": config.amp,
    }


def folder_for(spec, weights: Weights, output: Path) -> Path:
    """The model's folder, named from what the user asked for (the resolved name needs the model loaded)."""
    name = spec.text if isinstance(spec, Spec) else getattr(spec, "name", type(spec).__name__)
    if isinstance(spec, Spec) and spec.family == "timm":
        name = spec.name
    return output / outputs.folder_name(name + random_init_suffix(spec, weights))


def random_init_suffix(spec, weights: Weights) -> str:
    """A random init is named as such, so its row never passes for the pretrained model's."""
    random = isinstance(spec, Spec) and spec.family in ("timm", "torchvision", "hf", "open_clip")
    return RANDOM_INIT if random and not weights.pretrained and not weights.checkpoint else ""


@dataclass
class Computed:
    """What an engine gives back for one model: predictions of the rows that decoded, in row order, the rows
    that did not (row, reason), how many images it ran now, and the bytes of rows it kept for mistakes.png."""

    rows: np.ndarray
    top5: np.ndarray
    prob: np.ndarray
    unreadable: list[tuple[int, str]]
    computed: int
    contents: dict[int, bytes] = field(default_factory=dict)


# An engine: (spec, weights, loaded, rows, meta, selected, config, folder) -> Computed
Engine = Callable[..., Computed]


def compute_locally(spec, weights, loaded, rows, meta, selected, config: Settings, folder: Path) -> Computed:
    """This process and its loader workers, each finished batch saved under `.partial/` so a rerun resumes."""
    partial = folder / PARTIAL
    batch_identity = {**identity(spec, weights, rows, selected, config), "batch_size": config.batch_size}
    if config.force or read_json(partial / RUN_FILE) != batch_identity:
        shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(exist_ok=True)
    outputs.write_json(partial / RUN_FILE, batch_identity)

    from imagenet_sketch_tools.evaluation.loop import Mistakes, run_batches

    seen_mistakes = Mistakes(outputs.MISTAKES_SHOWN)
    computed = run_batches(loaded, rows, meta, selected, partial, config, seen_mistakes)
    done_rows, top5, prob, unreadable = collect_partial(partial, len(selected), config.batch_size)
    return Computed(done_rows, top5, prob, unreadable, computed, seen_mistakes.contents)


def evaluate_one(spec, weights, rows, meta, selected, selection, config: Settings, engine: Engine = compute_locally):
    folder = folder_for(spec, weights, config.output)
    wanted = {**identity(spec, weights, rows, selected, config), "skip_unreadable": config.skip_unreadable}
    finished = read_run(folder)
    if finished and not config.force and finished.get("identity") == wanted:
        return reread(folder, finished, selection)
    loaded = load_model(spec, weights)
    loaded.name += random_init_suffix(spec, weights)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RUN_FILE).unlink(missing_ok=True)  # from here until the end the folder holds no finished run
    started = time.perf_counter()
    done = engine(spec, weights, loaded, rows, meta, selected, config, folder)
    seconds = time.perf_counter() - started
    done_rows, top5, prob, unreadable, computed = done.rows, done.top5, done.prob, done.unreadable, done.computed
    bad = [(meta.paths[row], reason) for row, reason in unreadable]
    if bad and not config.skip_unreadable:
        refuse_unreadable(bad)
    table = outputs.predictions_table(
        done_rows, [meta.paths[row] for row in done_rows], meta.labels[done_rows], top5, prob
    )
    scores = score(meta.labels[done_rows], top5)
    outputs.write_predictions(folder, table)
    outputs.write_per_class(folder, scores)
    write_mistakes(folder, loaded.name, rows, table, done.contents)
    run = {
        "model": loaded.name,
        "backbone": loaded.backbone,
        "param_count": loaded.param_count,
        "img_size": loaded.img_size,
        "crop_pct": loaded.crop_pct,
        "interpolation": loaded.interpolation,
        "selection": selection,
        "unreadable": bad,
        "images": scores.images,
        "top1": scores.top1,
        "top5": scores.top5,
        "mean_class_recall": scores.mean_class_recall,
        "identity": wanted,
    }
    outputs.write_json(folder / RUN_FILE, run)  # last: its presence says the folder is complete
    shutil.rmtree(folder / PARTIAL, ignore_errors=True)
    return Result(loaded.name, loaded.backbone, folder, scores, bad, selection, seconds, computed, notes=loaded.notes)


def refuse_unreadable(bad: list[tuple[str, str]]) -> None:
    """List the images that cannot be decoded and stop: a score over other images would not be this one.
    The run's batches stay saved, so `--skip-unreadable` afterwards computes nothing again."""
    for path, reason in bad[:LISTED_UNREADABLE]:
        print(f"unreadable: {path}: {reason}", file=sys.stderr)
    more = f" (first {LISTED_UNREADABLE} listed)" if len(bad) > LISTED_UNREADABLE else ""
    raise UserError(
        f"{len(bad)} image(s) cannot be decoded{more}; none was replaced by another image. "
        "Fix the source, or pass --skip-unreadable to leave them out of every denominator"
    )


def reread(folder: Path, run: dict, selection: str) -> Result:
    """A finished model: its scores recomputed from predictions.parquet, nothing run."""
    table = outputs.read_predictions(folder)
    top5 = np.asarray(table.column("top5").to_pylist(), dtype=np.int64).reshape(-1, 5)
    scores = score(table.column("label").to_numpy(), top5)
    unreadable = [tuple(item) for item in run.get("unreadable", [])]
    return Result(run["model"], run["backbone"], folder, scores, unreadable, selection, reused=True)


def load_model(spec, weights: Weights) -> Loaded:
    if isinstance(spec, Loaded):
        return spec
    if isinstance(spec, Spec):
        from imagenet_sketch_tools.evaluation.models import load

        return load(spec, weights)
    from imagenet_sketch_tools.evaluation.models import timm_loaded
    from imagenet_sketch_tools.evaluation.spec import DEFAULT_DATA_CONFIG, require

    require("timm")
    import timm.data

    # a torch module given directly: timm's defaults for a 224 model, as for a python: spec without a config
    config = timm.data.resolve_data_config(pretrained_cfg=dict(DEFAULT_DATA_CONFIG))
    name = type(spec).__name__
    return timm_loaded(spec, config, name, name)


def read_run(folder: Path) -> dict | None:
    run = read_json(folder / RUN_FILE)
    return run if run and (folder / "predictions.parquet").exists() else None


def write_mistakes(folder: Path, model: str, rows: Rows, table, known: dict[int, bytes]) -> None:
    """mistakes.png; images not seen in this run (resumed batches, or a cheap source) are read back."""
    mistakes = outputs.most_confident_mistakes(table)
    missing = np.asarray(sorted({m["row"] for m in mistakes} - set(known)), dtype=np.int64)
    known = {**known, **dict(zip(missing.tolist(), rows.images_of(missing)))}
    images = [known[mistake["row"]] for mistake in mistakes]
    predicted = np.asarray([five[0] for five in table.column("top5").to_pylist()])
    wrong = int(np.sum(predicted != table.column("label").to_numpy()))
    outputs.write_mistakes(folder, model, mistakes, images, wrong)
