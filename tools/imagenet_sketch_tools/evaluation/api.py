"""The public API: `evaluate(model, source)` scores one model, `evaluate_models(models, source)` several on the
same rows, through an engine (`LocalEngine` by default, `RayEngine` for a cluster).

With an `output` folder, each model gets its folder there, results.csv and leaderboard.md are kept up to date,
and work is reused: a finished model is read back unless `force`, and an interrupted one continues from its saved
batches. Without one, nothing is written where a user would see it and results come back in memory.

The models left to run are grouped by their uint8 stage (`groups`): the engine decodes each image once per group
and runs every model of the group on it; everything else (reuse, outputs, summaries) stays per model.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.evaluation import outputs, readback, writers
from imagenet_sketch_tools.evaluation.data import RowSource, select
from imagenet_sketch_tools.evaluation.groups import groups_of
from imagenet_sketch_tools.evaluation.job import Computed, Engine, Job, Settings, validate
from imagenet_sketch_tools.evaluation.local_engine import LocalEngine
from imagenet_sketch_tools.evaluation.metrics import Scores, score
from imagenet_sketch_tools.evaluation.models import from_module, result_name
from imagenet_sketch_tools.evaluation.outputs import RUN_FILE
from imagenet_sketch_tools.evaluation.partial import PARTIAL
from imagenet_sketch_tools.evaluation.spec import (
    Described,
    Loaded,
    Model,
    Spec,
    Weights,
    parse_spec,
)

LISTED_UNREADABLE = 20


@dataclass
class Result:
    described: Described  # the model as results.csv names it, its size and input geometry
    folder: Path | None  # None: the run wrote nothing
    scores: Scores
    unreadable: list[tuple[str, str]]  # (path, reason): left out of every denominator
    selection: str  # what was evaluated, e.g. "all 50,889 images" or "--limit 500: ..."
    predictions: pa.Table  # as predictions.parquet: row, path, label, top5, top5_prob
    seconds: float = 0.0
    computed: int = 0  # images run through the model now (not resumed, not already finished)
    reused: bool = False  # already finished: read back, not run
    reference: str = ""  # the --reference row it was compared with (or why none), as the summary line says
    group: int | None = None  # the input group it ran in (models of one uint8 stage); None: not run
    decoded: int = 0  # images its group decoded now
    cached: int = 0  # images its group read from the input cache now

    @property
    def model(self) -> str:
        return self.described.name

    @property
    def backbone(self) -> str:
        return self.described.backbone

    @property
    def notes(self) -> tuple[str, ...]:
        return self.described.notes

    def summary(self) -> str:
        s = self.scores
        parts = [
            f"{self.model}: top-1 {s.top1:.3f}%, top-5 {s.top5:.3f}%, mean per-class recall {s.mean_class_recall:.3f}%",
            f"on {s.images:,} images of {len(s.per_class)} classes ({self.selection})",
        ]
        parts.extend(self.notes)
        if self.reference:
            parts.append(self.reference)
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} unreadable image(s) left out (--skip-unreadable)")
        if self.reused:
            parts.append("already evaluated, read back (--force runs it again)")
        elif self.seconds > 0 and self.computed:
            parts.append(f"{self.computed / self.seconds:,.1f} images/s")
        return "; ".join(parts) + (f" -> {self.folder}" if self.folder else "")


def evaluate(
    model: Any,
    source: Any = None,
    *,
    name: str | None = None,
    data_config: dict | None = None,
    weights: Weights | None = None,
    output: str | Path | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    device: str = "auto",
    amp: bool = False,
    limit: int | None = None,
    classes: Sequence[str] | None = None,
    skip_unreadable: bool = False,
    force: bool = False,
    reference: str | None = None,
    progress: bool = False,
    cache_dir: str | None = None,
    use_train_size: bool = False,
    templates: str = "openai",
    input_cache: str | Path | None = None,
    engine: Engine | None = None,
) -> Result:
    """Score one model: a spec such as `timm:resnet50.tv_in1k`, a `spec.Loaded`, or a torch module giving 1000
    ImageNet-1k logits (named `name`, else after its class and weights; preprocessed as timm does with the keys
    of `data_config`, else timm's 224 defaults). `source`: None (the release), a `datasets.Dataset`, a zip, folder
    or URL, an exported package folder or `hf://datasets/NS/NAME`. The other parameters are `job.Settings`'."""
    return evaluate_models(
        [as_model(model, name, data_config)], source, weights=weights, output=output, batch_size=batch_size,
        workers=workers, device=device, amp=amp, limit=limit, classes=classes, skip_unreadable=skip_unreadable,
        force=force, reference=reference, progress=progress, cache_dir=cache_dir, use_train_size=use_train_size,
        templates=templates, input_cache=input_cache, engine=engine,
    )[0]  # fmt: skip


def evaluate_models(
    models: Sequence[Any],
    source: Any = None,
    *,
    weights: Weights | None = None,
    output: str | Path | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    device: str = "auto",
    amp: bool = False,
    limit: int | None = None,
    classes: Sequence[str] | None = None,
    skip_unreadable: bool = False,
    force: bool = False,
    reference: str | None = None,
    progress: bool = False,
    cache_dir: str | None = None,
    use_train_size: bool = False,
    templates: str = "openai",
    input_cache: str | Path | None = None,
    engine: Engine | None = None,
) -> list[Result]:
    """Score each model (as `evaluate` takes them) on the same rows; one Result per model, in order. Models of
    one uint8 stage run together, each image decoded once for them (`input_cache`: kept there across runs)."""
    settings = Settings(
        output=None if output is None else Path(output), batch_size=batch_size, workers=workers, device=device,
        amp=amp, limit=limit, classes=None if classes is None else tuple(classes), skip_unreadable=skip_unreadable,
        force=force, reference=reference, progress=progress, cache_dir=cache_dir, use_train_size=use_train_size,
        templates=templates, input_cache=None if input_cache is None else Path(input_cache),
    )  # fmt: skip
    engine, weights = engine or LocalEngine(), weights or Weights()
    chosen = [as_model(model) for model in models]  # a bad spec fails before anything is read
    validate(settings, weights, engine, chosen, source)
    known = outputs.read_reference(settings.reference) if settings.reference else None
    rows = engine.open_rows(source, settings)
    meta = rows.meta()
    selected, selection = select(meta, settings.limit, settings.classes)
    jobs = [
        Job(model, weights, rows, meta, selected, settings, folder_for(model, weights, settings)) for model in chosen
    ]
    results: list[Result | None] = [None] * len(jobs)

    def read_back(indices: list[int]) -> list[int]:
        """Read the finished models among `indices` back into `results`; the indices still to run."""
        for index in indices:
            with writing(jobs[index]):  # one eval at a time in a folder: another waits, then reads it back
                reread_result = results[index] = reusable(jobs[index], selection)
            if reread_result is not None:
                record(settings, reread_result, known)
        return [index for index in indices if results[index] is None]

    # finished models are read back first: no engine (not even a cluster) is started when every one is
    pending, number = read_back(list(range(len(jobs)))), 0
    with engine.session() if pending else nullcontext():
        while pending:
            to_run = pending if settings.output is None else first_per_folder(jobs, pending)
            for group in groups_of([jobs[i].model for i in to_run], weights, settings.load_options):
                indices = [to_run[k] for k in group]
                with writing_all([jobs[i] for i in indices]):
                    ran = run_group([jobs[i] for i in indices], selection, engine)
                for index, result in zip(indices, ran):
                    results[index] = replace(result, group=number)
                    record(settings, result, known)
                number += 1
            # a model given twice (one folder) ran once: its second is read back now
            pending = read_back([index for index in pending if results[index] is None])
    finished = [result for result in results if result is not None]
    if known is not None and settings.reference is not None:
        for result in finished:
            row = outputs.results_row(result.described, result.scores)
            result.reference = outputs.reference_summary(row, known, settings.reference)
    return finished


def first_per_folder(jobs: list[Job], indices: list[int]) -> list[int]:
    """The first of `indices` for each folder: two jobs writing one folder at once would mix their batches."""
    first: dict[Path, int] = {}
    for index in indices:
        first.setdefault(jobs[index].folder, index)
    return list(first.values())


def record(settings: Settings, result: Result, known: dict | None) -> None:
    """The model's row in results.csv, and leaderboard.md, when the run keeps its outputs."""
    if settings.output is not None:
        row = outputs.results_row(result.described, result.scores)
        with writers.results_writer(settings.output):  # read, merged and rewritten by one eval at a time
            rows_written = outputs.update_results(settings.output, [row], known)
            outputs.write_leaderboard(settings.output, rows_written, backbones(settings.output))


def run_summary(results: Sequence[Result]) -> str:
    """One line for the whole run: how many input groups ran and how many images they decoded (once per image
    per group) or read from the input cache."""
    ran = [result for result in results if result.group is not None]
    reused = len(results) - len(ran)
    done = f"; {reused} already evaluated" if reused else ""
    if not ran:
        return f"nothing to run: {reused} model(s) already evaluated"
    first_of_group = {result.group: result for result in reversed(ran)}.values()
    decoded = sum(result.decoded for result in first_of_group)
    cached = sum(result.cached for result in first_of_group)
    return (
        f"{len(ran)} model(s) run in {len(first_of_group)} input group(s): {decoded:,} image(s) decoded, "
        f"{cached:,} read from the input cache{done}"
    )


def as_model(model: Any, name: str | None = None, data_config: dict | None = None) -> Model:
    """A spec string parsed, a Spec or Loaded as given (a Loaded renamed by `name`), a torch module loaded."""
    if isinstance(model, (str, Spec)):
        if name is not None or data_config is not None:
            raise UserError("name= and data_config= are for a torch module; a spec names its model and config")
        return parse_spec(model) if isinstance(model, str) else model
    if isinstance(model, Loaded):
        if data_config is not None:
            raise UserError("data_config= is for a torch module; a Loaded model has its preprocessing")
        return model if name is None else replace(model, name=name)
    return from_module(model, name, data_config)


def folder_for(model: Model, weights: Weights, settings: Settings) -> Path:
    """The model's folder in the output: its results.csv name (`models.result_name`, known before it is loaded)
    made a folder name; an empty path without an output (`evaluate_one` runs it in a scratch folder)."""
    if settings.output is None:
        return Path()
    return settings.output / outputs.folder_name(model_name(model, weights))


def model_name(model: Model, weights: Weights) -> str:
    return model.name if isinstance(model, Loaded) else result_name(model, weights)


def writing(job: Job) -> AbstractContextManager[object]:
    """The lock of the job's folder, held while it is read back or evaluated (none without an output)."""
    return nullcontext() if job.settings.output is None else writers.model_writer(job.folder, job_name(job))


def writing_all(jobs: list[Job]) -> ExitStack:
    """The locks of a group's folders, taken in folder order so that two runs of overlapping groups never hold
    one each while waiting for the other's."""
    stack = ExitStack()
    for job in sorted(jobs, key=lambda job: job.folder):
        stack.enter_context(writing(job))
    return stack


def job_name(job: Job) -> str:
    return model_name(job.model, job.weights)


def wanted_identity(job: Job) -> dict:
    """What a finished run.json must have been made under to be read back."""
    return {**job.identity(), "skip_unreadable": job.settings.skip_unreadable}


def checked_run(job: Job) -> readback.Finished | None:
    if job.settings.output is None or job.settings.force:
        return None
    return readback.finished(job.folder, wanted_identity(job), job.meta, job.selected)


def reusable(job: Job, selection: str) -> Result | None:
    """The job's finished result, read back, or None when it must run; a damaged one is said in one line."""
    try:
        finished = checked_run(job)
    except readback.Damaged as damage:
        print(f"{job_name(job)}: {damage}; evaluating again", file=sys.stderr, flush=True)
        return None
    return None if finished is None else reread(job.folder, finished, selection)


def run_group(jobs: list[Job], selection: str, engine: Engine) -> list[Result]:
    """The results of a group of models run together by `engine` (their images decoded once), each written to
    its folder (with an output folder) as a lone model's would be."""
    if jobs[0].settings.output is None:
        with tempfile.TemporaryDirectory(prefix="imagenet-sketch-eval-") as scratch:  # the engine's saved batches
            jobs = [replace(job, folder=Path(scratch) / str(k)) for k, job in enumerate(jobs)]
            return computed_results(jobs, selection, engine, keep=False)
    for job in jobs:
        job.folder.mkdir(parents=True, exist_ok=True)
        (job.folder / RUN_FILE).unlink(missing_ok=True)  # from here until the end the folder holds no finished run
    results = computed_results(jobs, selection, engine, keep=True)
    for job, result in zip(jobs, results):
        outputs.write_per_class(job.folder, result.scores)
        outputs.write_predictions(job.folder, result.predictions)
        write_run(job.folder, result, wanted_identity(job))  # last: its presence says the folder is complete
        shutil.rmtree(job.folder / PARTIAL, ignore_errors=True)
    return results


def computed_results(jobs: list[Job], selection: str, engine: Engine, keep: bool) -> list[Result]:
    started = time.perf_counter()
    computed = engine.run(jobs)
    seconds = time.perf_counter() - started
    return [result_of(job, done, selection, seconds, keep) for job, done in zip(jobs, computed)]


def result_of(job: Job, done: Computed, selection: str, seconds: float, keep: bool) -> Result:
    """The engine's predictions for `job`, checked for unreadable images and scored; mistakes.png if `keep`."""
    meta = job.meta
    bad = [(meta.paths[row], reason) for row, reason in done.unreadable]
    if bad and not job.settings.skip_unreadable:
        refuse_unreadable(bad)
    paths = [meta.paths[row] for row in done.rows]
    table = outputs.predictions_table(done.rows, paths, meta.labels[done.rows], done.top5, done.prob)
    if keep:
        write_mistakes(job.folder, done, job.rows, table)
    scores = score(meta.labels[done.rows], done.top5)
    folder = job.folder if keep else None
    return Result(
        done.model, folder, scores, bad, selection, table, seconds, done.computed,
        decoded=done.decoded, cached=done.cached,
    )  # fmt: skip


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


def write_run(folder: Path, result: Result, identity: dict) -> None:
    described, scores = result.described, result.scores
    run = {
        "model": described.name,
        "backbone": described.backbone,
        "param_count": described.param_count,
        "img_size": described.img_size,
        "crop_pct": described.crop_pct,
        "interpolation": described.interpolation,
        "notes": list(described.notes),
        "selection": result.selection,
        "unreadable": result.unreadable,
        "images": scores.images,
        "top1": scores.top1,
        "top5": scores.top5,
        "mean_class_recall": scores.mean_class_recall,
        "identity": identity,
    }
    outputs.write_json(folder / RUN_FILE, run)


def reread(folder: Path, finished: readback.Finished, selection: str) -> Result:
    """A finished model: its scores recomputed from predictions.parquet (checked), nothing run."""
    run, table = finished.run, finished.predictions
    scores = score(table.column("label").to_numpy(), outputs.top5_of(table))
    unreadable = [(str(path), str(reason)) for path, reason in run.get("unreadable", [])]
    described = Described(
        run["model"], run["backbone"], run["param_count"], run["img_size"], run["crop_pct"], run["interpolation"],
        tuple(run.get("notes", ())),
    )  # fmt: skip
    return Result(described, folder, scores, unreadable, selection, table, reused=True)


def backbones(output: Path) -> dict[str, str]:
    found = {}
    for run_file in output.glob(f"*/{RUN_FILE}"):
        run = outputs.read_json(run_file) or {}
        if "model" in run:
            found[run["model"]] = run["backbone"]
    return found


def write_mistakes(folder: Path, done: Computed, rows: RowSource, table: pa.Table) -> None:
    """mistakes.png; images the engine did not keep (resumed batches, or a cheap source) are read back."""
    mistakes = outputs.most_confident_mistakes(table)
    missing = np.asarray(sorted({m["row"] for m in mistakes} - set(done.contents)), dtype=np.int64)
    known = {**done.contents, **dict(zip(missing.tolist(), rows.images_of(missing)))}
    images = [known[mistake["row"]] for mistake in mistakes]
    wrong = int(np.sum(outputs.top5_of(table)[:, 0] != table.column("label").to_numpy()))
    outputs.write_mistakes(folder, done.model.name, mistakes, images, wrong)
