"""The local engine: this process runs the model, loader worker processes read and decode the rows, and each
finished batch is saved under the job's `.partial/` so that a rerun computes only what is missing."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from imagenet_sketch_tools.evaluation.data import RowSource, open_source
from imagenet_sketch_tools.evaluation.job import Computed, Job, Settings
from imagenet_sketch_tools.evaluation.metrics import RunningTop1
from imagenet_sketch_tools.evaluation.models import load
from imagenet_sketch_tools.evaluation.outputs import MISTAKES_SHOWN, read_json, write_json
from imagenet_sketch_tools.evaluation.partial import PARTIAL, checked_batches, collect_partial, save_batch
from imagenet_sketch_tools.evaluation.spec import Loaded, Model

BATCHES_FILE = "run.json"  # in .partial/: the identity its batches were computed under


class LocalEngine:
    """Any source; `Settings.workers` decoding processes (None: min(4, CPUs); 0: this process)."""

    def validate(self, settings: Settings, models: Sequence[Model], source: object) -> None:
        pass  # every setting applies here, and every model and source kind is read

    def open_rows(self, source: object, settings: Settings) -> RowSource:
        return open_source(source, cache_dir=settings.cache_dir)

    def session(self) -> AbstractContextManager[object]:
        return nullcontext()

    def run(self, job: Job[RowSource]) -> Computed:
        partial = job.folder / PARTIAL
        batches_identity = {**job.identity(), "batch_size": job.settings.batch_size}
        if job.settings.force or read_json(partial / BATCHES_FILE) != batches_identity:
            shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True, exist_ok=True)
        write_json(partial / BATCHES_FILE, batches_identity)
        loaded = job.model if isinstance(job.model, Loaded) else load(job.model, job.weights, job.settings.load_options)
        mistakes, computed = self.run_batches(loaded, job, partial)
        done_rows, top5, prob, unreadable = collect_partial(partial, len(job.selected), job.settings.batch_size)
        return Computed(loaded.description(), done_rows, top5, prob, unreadable, computed, mistakes.contents)

    def run_batches(self, loaded: Loaded, job: Job[RowSource], partial: Path):
        """Run the batches not yet saved in `partial`, saving each; (the mistakes seen with their bytes, when the
        batches carry them, and how many images were computed)."""
        # batches imports torch at its top: the eval extra, which a loaded model has shown to be installed
        from imagenet_sketch_tools.evaluation import batches as pipeline

        settings, labels = job.settings, job.meta.labels
        batches = pipeline.split_batches(job.selected, settings.batch_size)
        done = checked_batches(partial, batches, loaded.name)  # before any batch runs: a damaged one runs again
        todo = [index for index in range(len(batches)) if index not in done]
        device = pipeline.pick_device(settings.device)
        module = pipeline.prepare(loaded.module, device)
        resumed = sum(len(batches[index]) for index in done)
        mistakes, computed = pipeline.Mistakes(MISTAKES_SHOWN), 0
        bar = RunningTop1(loaded.name, len(job.selected), resumed, settings.progress)
        try:
            for batch in pipeline.input_batches(
                job.rows, job.selected, loaded.preprocess, settings.batch_size, settings.workers, todo
            ):
                top5, prob = pipeline.predict(module, loaded.preprocess, batch, device, settings.amp)
                save_batch(partial, batch.index, batch.rows, top5, prob, batch.bad_rows, batch.bad_reasons)
                if batch.contents is not None:
                    mistakes.offer(batch.rows, labels[batch.rows], top5, prob, batch.contents)
                computed += len(batch.rows)
                bar.add(labels[batch.rows], top5[:, 0], len(batch.bad_rows))
                self._saved_batch(batch.index)
        finally:
            bar.close()
        return mistakes, computed

    def _saved_batch(self, index: int) -> None:
        """Called after each batch is saved: the seam the tests interrupt a run at."""
