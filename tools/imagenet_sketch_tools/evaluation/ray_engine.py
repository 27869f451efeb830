"""`eval --engine ray`: an exported hub package's parquet shards read by Ray Data and streamed to a pool of
actors, each holding the models of one input group (loaded once, in its constructor) on its own CPUs or GPU:
each block is decoded once and run through every model the actor holds (`RayOptions.models_per_actor` splits a
group too big for one actor's memory into several pipelines, each decoding the images again).

Only how predictions are computed differs from the local engine: the rows, their selection, model loading
(seeded, so a random init is the same in every actor), decoding and transforms (`batches.decode_batch`), the
forward pass (`batches.predict`), metrics, outputs and the run.json rule that skips finished models are shared.
The driver learns a model's name and size from its architecture alone (`models.describe`): only the actors
load weights. Ray, and torch in the actors, are imported lazily: they are optional extras.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.streams import dropping_lines
from imagenet_sketch_tools.evaluation.data import PackageSource, is_package, paths_of
from imagenet_sketch_tools.evaluation.job import Computed, Job, Settings
from imagenet_sketch_tools.evaluation.metrics import RunningTop1
from imagenet_sketch_tools.evaluation.models import describe, load
from imagenet_sketch_tools.evaluation.outputs import MISTAKES_SHOWN
from imagenet_sketch_tools.evaluation.spec import TOP, LoadOptions, Model, Spec, Weights

INSTALL = "pip install 'imagenet-sketch[ray]'"
# Ray's own lines that tell a user of this command nothing, silenced for the session (their warnings and errors
# otherwise shown; a failed run is still our one-line error): the notice that a cluster started here uses token
# authentication, and Ray Data's "Progress bars disabled" (ours shows images/s and the running top-1)
QUIET_LOGGERS = ("ray._private.authentication.authentication_token_setup", "ray.data._internal.progress")
# The driver's C++ core worker writes an error line to stderr for every actor pool, since Ray Data puts the
# actors' constructor arguments in the object store and restarts actors (ray-project/ray#53727): that line only
RESTART_NOTICE = ("core_worker.cc", "has constructor arguments in the object store and max_restarts")


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start a local cluster for the run; "auto": the one `ray start` made
    actors: int = 1  # actors per group of models: each loads the group's models once
    models_per_actor: int = 0  # at most this many models in one actor (a group is split); 0: the whole group
    gpus_per_actor: float = 0.0
    cpus_per_actor: float = 1.0
    init: dict = field(default_factory=dict)  # more ray.init arguments for a cluster started here (tests)


def require_ray():
    """Ray and Ray Data, or a one-line UserError naming the extra."""
    try:
        import ray  # the ray extra: its absence is the one-line error below
        import ray.data  # noqa: F401  (Data is in ray[data], not in a bare ray install)
    except ImportError as error:
        raise UserError(f"--engine ray needs Ray Data, which is not installed; run {INSTALL}") from error
    return ray


@contextmanager
def connected(options: RayOptions) -> Iterator[float]:
    """Connect to the cluster at `options.address`, or start one here and shut it down after; yields the
    seconds that took. A process already connected (a notebook, a test) keeps its connection."""
    ray = require_ray()
    if ray.is_initialized():
        yield 0.0
        return
    started = time.perf_counter()
    arguments: dict[str, Any]
    if options.address:
        arguments = {"address": options.address}
    else:
        arguments = {"include_dashboard": False, **options.init}
    with quiet_ray():
        try:
            ray.init(logging_level=logging.WARNING, configure_logging=True, **arguments)
        except ConnectionError as error:
            raise UserError(f"cannot join the Ray cluster at {options.address}: {error}") from error
        try:
            yield time.perf_counter() - started
        finally:
            ray.shutdown()


@contextmanager
def quiet_ray() -> Iterator[None]:
    """Ray's noise silenced (QUIET_LOGGERS, RESTART_NOTICE) for the session, restored after."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with dropping_lines(RESTART_NOTICE):
            yield
    finally:
        for logger, saved in zip(loggers, levels):
            logger.setLevel(saved)


def check_source(source: object) -> str:
    """Ray reads parquet shards: the source must be an exported package (a folder with data/*.parquet, or
    hf://datasets/NS/NAME)."""
    if not isinstance(source, (str, os.PathLike)) or not is_package(str(source)):
        raise UserError(
            f"--engine ray reads an exported hub package, and {source or 'the release'} is not one; run "
            "imagenet-sketch export SOURCE DIR first, then eval --engine ray --source DIR"
        )
    return str(source)


def check_room(options: RayOptions, cpus: float) -> None:
    """Refuse an actor pool that takes every CPU of the cluster: Ray Data's read tasks would then wait for a CPU
    forever and the run would hang without a word (seen with 2 actors on 2 CPUs). One CPU stays for reading."""
    if options.actors * options.cpus_per_actor <= cpus - 1:
        return
    most = int((cpus - 1) // options.cpus_per_actor)
    fits = f"use --actors {most} or fewer" if most >= 1 else "no actor fits beside the reading"
    raise UserError(
        f"--actors {options.actors} with {options.cpus_per_actor:g} CPU each leaves no CPU for reading the shards "
        f"on a cluster of {cpus:g} CPUs; {fits}, or use a bigger cluster"
    )


def known_cpus(options: RayOptions) -> float | None:
    """The cluster's CPUs when known before connecting: the one this process is connected to already, or the one
    `ray.init` would start here (its num_cpus argument, else this machine's); None for a cluster to join."""
    import ray  # require_ray() has found it

    if ray.is_initialized():
        return float(ray.cluster_resources().get("CPU", 0))
    if options.address is None:
        return float(options.init.get("num_cpus") or os.cpu_count() or 1)
    return None


def worker_paths() -> list[str]:
    """Where a `python:` model's module is found here (working directory, PYTHONPATH), for the actors to search
    too: on this machine the same folders, on a cluster the same paths if the workers have them."""
    paths = [os.getcwd(), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return [path for path in paths if path]


class Predictor:
    """A Ray Data actor: the models of a group, loaded once, and their predictions for each batch of rows it is
    given, decoded once for all of them."""

    def __init__(
        self, specs: list[Spec], weights: Weights, options: LoadOptions, device: str, amp: bool, paths: list[str]
    ):
        for path in reversed(paths):
            if path not in sys.path:
                sys.path.insert(0, path)
        import ray  # in an actor: Ray is there
        import torch  # in an actor: the eval extra, which the ray extra includes

        from imagenet_sketch_tools.evaluation import batches  # imports torch, as above

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        torch.set_num_threads(max(1, int(cpus)))  # the CPUs Ray gave this actor, not the whole machine's
        loaded = [load(spec, weights, options) for spec in specs]
        self.device, self.amp = batches.pick_device(device), amp
        self.modules = [batches.prepare(model.module, self.device) for model in loaded]
        self.preprocesses = [model.preprocess for model in loaded]

    def __call__(self, table: pa.Table) -> dict[str, np.ndarray]:
        from imagenet_sketch_tools.evaluation import batches  # imported by the constructor already

        paths, contents, labels = batch_columns(table)
        batch = batches.decode_batch(0, np.arange(len(paths)), contents, self.preprocesses[0], keep_contents=True)
        predicted = batches.predict_group(self.modules, self.preprocesses, batch, self.device, self.amp)
        bad = np.asarray(batch.bad_rows, dtype=np.int64)
        order = np.concatenate([batch.rows, bad])
        columns = {
            "path": np.asarray([paths[i] for i in order], dtype=object),
            "reason": np.asarray([""] * len(batch.rows) + batch.bad_reasons, dtype=object),
        }
        for k, (top5, prob) in enumerate(predicted):
            # the batch's own most confident mistakes keep their bytes: the run's are among them (mistakes.png)
            mistakes = batches.Mistakes(MISTAKES_SHOWN)
            mistakes.offer(batch.rows, labels[batch.rows], top5, prob, batch.contents)
            columns[f"top5_{k}"] = np.concatenate([top5, np.full((len(bad), TOP), -1)]).astype(np.int32)
            columns[f"prob_{k}"] = np.concatenate([prob, np.zeros((len(bad), TOP))]).astype(np.float32)
            columns[f"content_{k}"] = np.asarray([mistakes.contents.get(int(i), b"") for i in order], dtype=object)
        return columns


def batch_columns(table: pa.Table) -> tuple[list[str], list[bytes | None], np.ndarray]:
    """(`<wnid>/<file>` paths, image bytes, labels) of an Arrow batch of the package."""
    image = table.column("image").combine_chunks()
    labels = np.asarray(table.column("label").to_numpy(), dtype=np.int64)
    return paths_of(table), image.field("bytes").to_pylist(), labels


class RayEngine:
    """An engine that runs each job as one Ray Data pipeline over a package's shards, its outputs gathered here."""

    def __init__(self, options: RayOptions | None = None):
        self.options = options or RayOptions()

    def validate(self, settings: Settings, models: Sequence[Model], source: object) -> None:
        options = self.options
        if options.actors < 1:
            raise UserError(f"--actors must be at least 1, not {options.actors}")
        if options.models_per_actor < 0:
            raise UserError(f"--models-per-actor must be 0 (a whole group) or more, not {options.models_per_actor}")
        if settings.input_cache is not None:
            raise UserError("--input-cache is for --engine local; Ray's actors decode the blocks they are given")
        if options.gpus_per_actor < 0:
            raise UserError(f"--gpus-per-actor must be 0 or more, not {options.gpus_per_actor}")
        if settings.workers is not None:
            raise UserError("--workers is for --engine local; with --engine ray, Ray Data's tasks read the shards")
        if not all(isinstance(model, Spec) for model in models):
            raise UserError("--engine ray takes model specs (e.g. timm:resnet50), not model objects")
        check_source(source)
        require_ray()
        cpus = known_cpus(options)
        if cpus is not None:  # checked before any cluster starts; a cluster joined by --address, once joined
            check_room(options, cpus)

    def open_rows(self, source: object, settings: Settings) -> PackageSource:
        return PackageSource(check_source(source))

    @contextmanager
    def session(self) -> Iterator[float]:
        with connected(self.options) as seconds:
            import ray  # connected() has required it

            check_room(self.options, ray.cluster_resources().get("CPU", 0))
            yield seconds

    def run(self, jobs: Sequence[Job[PackageSource]]) -> list[Computed]:
        """A group's jobs, at most `models_per_actor` of them in one pipeline (each pipeline decodes once)."""
        size = self.options.models_per_actor or len(jobs)
        parts = [self.run_together(jobs[start : start + size]) for start in range(0, len(jobs), size)]
        decoded = sum(part[0].decoded for part in parts)  # the group's, as every engine counts it
        return [replace(done, decoded=decoded) for part in parts for done in part]

    def run_together(self, jobs: Sequence[Job[PackageSource]]) -> list[Computed]:
        """One pipeline whose actors hold every model of `jobs` (one uint8 stage, the same rows and settings)."""
        specs = [job.model for job in jobs]
        if not all(isinstance(spec, Spec) for spec in specs):  # validate() refused it; a check for the checker
            raise UserError("--engine ray takes model specs (e.g. timm:resnet50), not model objects")
        job = jobs[0]
        described = [describe(spec, job.weights, job.settings.load_options) for spec in specs if isinstance(spec, Spec)]
        paths = job.meta.paths
        row_of = rows_by_path(paths)
        wanted = None if len(job.selected) == len(paths) else {paths[row] for row in job.selected}
        bars = [RunningTop1(model.name, len(job.selected), shown=job.settings.progress) for model in described]
        try:
            with in_order():  # around building the dataset too: a Dataset keeps the DataContext it was made in
                dataset = self.dataset(job, specs, wanted)
                got, reasons, answers = gather(dataset, row_of, job.meta.labels, bars)
        finally:
            for bar in bars:
                bar.close()
        if len(got) != len(job.selected) or not np.array_equal(np.sort(got), job.selected):
            raise RuntimeError(f"Ray gave {len(got)} rows for {len(job.selected)} selected")  # a bug, not a user's
        order = np.argsort(got, kind="stable")  # dataset order, should Ray ever hand them back in another
        got, reasons = got[order], reasons[order]
        ok = reasons == ""
        unreadable = [(int(row), str(reason)) for row, reason in zip(got[~ok], reasons[~ok])]
        return [
            Computed(model, got[ok], top5[order][ok].astype(np.int64), prob[order][ok], unreadable, int(ok.sum()),
                     contents, decoded=len(got))
            for model, (top5, prob, contents) in zip(described, answers)
        ]  # fmt: skip

    def dataset(self, job: Job[PackageSource], specs: list, wanted: set[str] | None):
        """The package's rows (the selected ones), in dataset order, in blocks of exactly the local engine's
        batches, each run through a Predictor actor. Same batches, not only the same rows: a CPU forward pass
        can differ in the last bit of a probability when the batch around an image differs."""
        import ray.data  # require_ray() found it in validate()

        rows, settings = job.rows, job.settings
        filesystem = None
        if rows.filesystem is not None:
            filesystem = pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(rows.filesystem))
        dataset = ray.data.read_parquet(rows.files, filesystem=filesystem).select_columns(["image", "wnid", "label"])
        if wanted is not None:
            dataset = dataset.map_batches(
                lambda table: keep_rows(table, wanted), batch_format="pyarrow", batch_size=None
            )
        dataset = dataset.repartition(target_num_rows_per_block=settings.batch_size, strict=True)
        options = self.options
        options_of_actor = replace(settings.load_options, progress=False)  # an actor's bars go to its log
        return dataset.map_batches(
            Predictor,
            fn_constructor_args=(specs, job.weights, options_of_actor, settings.device, settings.amp, worker_paths()),
            batch_size=settings.batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=options.actors),
            num_cpus=options.cpus_per_actor,
            num_gpus=options.gpus_per_actor,
        )


def keep_rows(table: pa.Table, wanted: set[str]) -> pa.Table:
    """The rows of an Arrow batch whose `<wnid>/<file>` path is in `wanted` (--limit, --classes)."""
    return table.filter(pa.array([path in wanted for path in paths_of(table)]))


@contextmanager
def in_order() -> Iterator[None]:
    """Ray Data set to keep blocks in dataset order (the local engine's batches are runs of rows in order), and
    to show no bars of its own (ours says images/s and the running top-1); its settings are restored after."""
    import ray.data  # require_ray() found it in validate()

    context = ray.data.DataContext.get_current()
    saved = (context.execution_options.preserve_order, context.enable_progress_bars, context.print_on_execution_start)
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logger = logging.getLogger("ray.data")
    level = logger.level
    logger.setLevel(logging.WARNING)  # without its bars, Ray Data logs its progress at INFO every few seconds
    try:
        yield
    finally:
        context.execution_options.preserve_order, context.enable_progress_bars = saved[:2]
        context.print_on_execution_start = saved[2]
        logger.setLevel(level)


def gather(dataset, row_of: dict[str, int], labels: np.ndarray, bars: list[RunningTop1]):
    """The actors' answers as they come: rows, unreadable reasons ("" for none), and per model its top-5,
    probabilities and the bytes of candidate mistakes; each model's bar shows images/s and its running top-1."""
    rows, reasons = [], []
    top5: list[list[np.ndarray]] = [[] for _ in bars]
    prob: list[list[np.ndarray]] = [[] for _ in bars]
    contents: list[dict[int, bytes]] = [{} for _ in bars]
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        got = np.asarray([row_of[path] for path in batch["path"]], dtype=np.int64)
        ok = np.asarray([not reason for reason in batch["reason"]], dtype=bool)
        rows.append(got)
        reasons.extend(batch["reason"])
        for k, bar in enumerate(bars):
            top5[k].append(batch[f"top5_{k}"])
            prob[k].append(batch[f"prob_{k}"])
            contents[k].update({int(row): content for row, content in zip(got, batch[f"content_{k}"]) if content})
            bar.add(labels[got[ok]], batch[f"top5_{k}"][ok, 0], int((~ok).sum()))
    if not rows:
        nothing = np.zeros((0, TOP))
        empty = [(nothing.astype(np.int32), nothing.astype(np.float32), {}) for _ in bars]
        return np.zeros(0, np.int64), np.zeros(0, object), empty
    answers = [(np.concatenate(top5[k]), np.concatenate(prob[k]), contents[k]) for k in range(len(bars))]
    return np.concatenate(rows), np.asarray(reasons, object), answers


def rows_by_path(paths: list[str]) -> dict[str, int]:
    """Row index of each `<wnid>/<file>`: how the actors' answers are put back in dataset order."""
    row_of = {path: row for row, path in enumerate(paths)}
    if len(row_of) != len(paths):
        raise UserError("two rows of the package share a <wnid>/<file> path; --engine ray tells rows apart by it")
    return row_of
