"""The local engine: this process runs the models of a group, loader worker processes read and decode the rows
once for all of them, and each model's finished batches are saved under its job's `.partial/` so that a rerun
computes only what is missing."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from imagenet_sketch_tools.evaluation.data import RowSource, open_source
from imagenet_sketch_tools.evaluation.input_cache import InputCache, cache_key
from imagenet_sketch_tools.evaluation.job import Computed, Job, Settings
from imagenet_sketch_tools.evaluation.metrics import RunningTop1
from imagenet_sketch_tools.evaluation.models import load
from imagenet_sketch_tools.evaluation.outputs import MISTAKES_SHOWN, read_json, write_json
from imagenet_sketch_tools.evaluation.partial import (
    PARTIAL,
    checked_batches,
    collect_partial,
    save_batch,
    split_batches,
)
from imagenet_sketch_tools.evaluation.spec import Loaded, Model

BATCHES_FILE = "run.json"  # in .partial/: the identity its batches were computed under


@dataclass
class Member:
    """One model of a group as it runs: its job, the model loaded, its saved batches' folder and which of the
    group's batches it still needs."""

    job: Job[RowSource]
    loaded: Loaded
    partial: Path
    todo: set[int]


@dataclass
class Tally:
    """What running a group's batches did: images computed per member, the mistakes each kept with their bytes
    (when the batches carry them), and the group's images decoded and read from the input cache."""

    computed: list[int]
    kept: list[dict[int, bytes]]
    decoded: int = 0
    cached: int = 0


class LocalEngine:
    """Any source; `Settings.workers` decoding processes (None: min(4, CPUs); 0: this process)."""

    def validate(self, settings: Settings, models: Sequence[Model], source: object) -> None:
        pass  # every setting applies here, and every model and source kind is read

    def open_rows(self, source: object, settings: Settings) -> RowSource:
        return open_source(source, cache_dir=settings.cache_dir)

    def session(self) -> AbstractContextManager[object]:
        return nullcontext()

    def run(self, jobs: Sequence[Job[RowSource]]) -> list[Computed]:
        """The jobs of one group (one uint8 stage, the same rows and settings), their images decoded once.
        A batch is decoded when any model lacks it, and run only through the models that lack it: a model
        resumed from its saved batches computes only its missing ones, whatever the others need."""
        members = [self.member(job) for job in jobs]
        first = jobs[0]
        key = None if len(first.selected) == 0 else members[0].loaded.preprocess.stage
        cache = None
        if first.settings.input_cache is not None and key is not None:
            key = cache_key(first.rows.identity, key, first.selected, first.settings.batch_size)
            cache = InputCache(first.settings.input_cache, key)
        tally = self.run_batches(members, cache)
        out, size = [], first.settings.batch_size
        for k, member in enumerate(members):
            rows, top5, prob, unreadable = collect_partial(member.partial, len(first.selected), size)
            model, computed, kept = member.loaded.description(), tally.computed[k], tally.kept[k]
            out.append(Computed(model, rows, top5, prob, unreadable, computed, kept, tally.decoded, tally.cached))
        return out

    def member(self, job: Job[RowSource]) -> Member:
        """The job's saved batches (cleared if made under another identity or forced), and its model loaded."""
        partial = job.folder / PARTIAL
        batches_identity = {**job.identity(), "batch_size": job.settings.batch_size}
        if job.settings.force or read_json(partial / BATCHES_FILE) != batches_identity:
            shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True, exist_ok=True)
        write_json(partial / BATCHES_FILE, batches_identity)
        loaded = job.model if isinstance(job.model, Loaded) else load(job.model, job.weights, job.settings.load_options)
        batches = split_batches(job.selected, job.settings.batch_size)
        done = checked_batches(partial, batches, loaded.name)  # before any batch runs: a damaged one runs again
        return Member(job, loaded, partial, set(range(len(batches))) - done)

    def run_batches(self, members: list[Member], cache: InputCache | None) -> Tally:
        """Run the batches some member lacks through the members lacking them, saving each."""
        # batches imports torch at its top: the eval extra, which a loaded model has shown to be installed
        from imagenet_sketch_tools.evaluation import batches as pipeline

        first = members[0].job
        settings, labels, total = first.settings, first.meta.labels, len(first.selected)
        count = -(-total // settings.batch_size)
        todo = sorted(set().union(*(member.todo for member in members)))
        device = pipeline.pick_device(settings.device)
        modules = [pipeline.prepare(member.loaded.module, device) for member in members]
        mistakes = [pipeline.Mistakes(MISTAKES_SHOWN) for _ in members]
        tally = Tally([0] * len(members), [])
        sizes = [len(rows) for rows in split_batches(first.selected, settings.batch_size)]
        bars = [
            RunningTop1(member.loaded.name, total, sum(sizes[i] for i in range(count) if i not in member.todo),
                        settings.progress)
            for member in members
        ]  # fmt: skip
        try:
            stream = pipeline.input_batches(
                first.rows, first.selected, members[0].loaded.preprocess, settings.batch_size, settings.workers,
                todo, cache, pin=device.type == "cuda",
            )  # fmt: skip
            for batch in stream:
                tally.decoded, tally.cached = tally.decoded + batch.decoded, tally.cached + batch.cached
                needing = [k for k, member in enumerate(members) if batch.index in member.todo]
                predicted = pipeline.predict_group(
                    [modules[k] for k in needing], [members[k].loaded.preprocess for k in needing], batch, device,
                    settings.amp,
                )  # fmt: skip
                for k, (top5, prob) in zip(needing, predicted):
                    bad = (batch.bad_rows, batch.bad_reasons)
                    save_batch(members[k].partial, batch.index, batch.rows, top5, prob, *bad)
                    if batch.contents is not None:
                        mistakes[k].offer(batch.rows, labels[batch.rows], top5, prob, batch.contents)
                    tally.computed[k] += len(batch.rows)
                    bars[k].add(labels[batch.rows], top5[:, 0], len(batch.bad_rows))
                self._saved_batch(batch.index)
        finally:
            for bar in bars:
                bar.close()
        if cache is not None:
            cache.finish(count)
        tally.kept = [found.contents for found in mistakes]
        return tally

    def _saved_batch(self, index: int) -> None:
        """Called after each batch is saved for every model needing it: the seam the tests interrupt a run at."""
