"""Export the prepared dataset as the hub package: parquet shards under `data/`, a dataset card, dataset_infos.json.

The shards are written by the same steps `Dataset.push_to_hub` (datasets 5.x) takes for each shard: contiguous
`shard(num_shards, index)`, `embed_table_storage`, then `to_parquet` with push_to_hub's writer batch size (row
groups) and datasets' default content-defined chunking. Same data in, same bytes out, so a later push_to_hub of
the builder's dataset (with its default num_proc) finds every shard already on the hub and uploads nothing.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import datasets
import datasets.config
from datasets.arrow_writer import get_writer_batch_size_from_data_size, get_writer_batch_size_from_features
from datasets.table import embed_table_storage
from datasets.utils.py_utils import convert_file_size_to_int
from tqdm.auto import tqdm

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.files import unique_sibling
from imagenet_sketch_tools.common.locks import exclusive, lock_of
from imagenet_sketch_tools.dataset.release import SPLIT
from imagenet_sketch_tools.hub import card
from imagenet_sketch_tools.hub.workers import start_worker

DATA_DIR = "data"


@dataclass(frozen=True)
class ExportSummary:
    directory: Path
    shards: int
    rows: int
    download_size: int  # bytes of parquet, what the hub stores
    dataset_size: int  # bytes of the Arrow data, as push_to_hub reports it
    seconds: float


@dataclass(frozen=True)
class ShardPlan:
    num_shards: int
    writer_batch_size: int
    dataset_nbytes: int


def shard_name(index: int, num_shards: int) -> str:
    """push_to_hub's name for a shard, relative to the repository root."""
    return f"{DATA_DIR}/{SPLIT}-{index:05d}-of-{num_shards:05d}.parquet"


def plan_shards(dataset: datasets.Dataset, max_shard_size: str | int | None = None) -> ShardPlan:
    """Number of shards and row-group size exactly as `Dataset._push_parquet_shards_to_hub` computes them."""
    dataset_nbytes = dataset._estimate_nbytes()
    writer_batch_size = get_writer_batch_size_from_features(dataset.features) or get_writer_batch_size_from_data_size(
        len(dataset), dataset_nbytes
    )
    return ShardPlan(int(dataset_nbytes / shard_size_bytes(max_shard_size)) + 1, writer_batch_size, dataset_nbytes)


def shard_size_bytes(max_shard_size: str | int | None) -> int:
    """`--max-shard-size` in bytes, read as push_to_hub reads it (default: datasets' MAX_SHARD_SIZE, 500MB)."""
    try:
        max_bytes = convert_file_size_to_int(max_shard_size or datasets.config.MAX_SHARD_SIZE)
    except ValueError as error:
        raise UserError(f"--max-shard-size {max_shard_size!r} is not a size; give e.g. 500MB or 2GB") from error
    if max_bytes <= 0:
        raise UserError(f"--max-shard-size must be positive, got {max_shard_size!r}")
    return max_bytes


def write_shard(dataset: datasets.Dataset, index: int, plan: ShardPlan, directory: str) -> tuple[int, int]:
    """Write shard `index` into `directory` (temp name, then renamed); return (rows, parquet bytes)."""
    shown = not datasets.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # the export shows one bar for all shards, not one per step of each
    try:
        shard = dataset.shard(num_shards=plan.num_shards, index=index, contiguous=True)
        target = os.path.join(directory, shard_name(index, plan.num_shards))
        partial, embedded = target + ".partial", target + ".embedded.arrow"
        # push_to_hub embeds in memory (keep_in_memory=True); the same table mapped from a file gives the same
        # parquet bytes without holding a whole shard (~500 MB, several copies) in each process's memory.
        shard = shard.with_format("arrow").map(
            embed_table_storage, batched=True, batch_size=plan.writer_batch_size, cache_file_name=embedded
        )
        shard.to_parquet(partial, batch_size=plan.writer_batch_size)
    finally:
        if shown:
            datasets.enable_progress_bars()
    os.replace(partial, target)
    os.remove(embedded)
    return len(shard), os.path.getsize(target)


def _write_shard_job(job: tuple) -> tuple[int, int, int]:
    dataset, index, plan, directory = job
    return (index, *write_shard(dataset, index, plan, directory))


def export(
    dataset: datasets.Dataset,
    output: str | os.PathLike,
    *,
    max_shard_size: str | int | None = None,
    num_proc: int | None = None,
    audit: str | os.PathLike | None = None,
    progress: bool = True,
) -> ExportSummary:
    """Write the hub package for `dataset` (the builder's train split) into the new folder `output`.

    `audit`, the audit stage's CSV, is shipped as audit.csv and linked from the card. One export at a time writes
    `output` (common.locks; a second one stops with a line naming the first). Everything is
    written into a hidden `.<name>.<pid>-<random>.partial` sibling and moved into place at the end, so an
    interrupted export leaves no folder that looks complete; what a killed one left is removed by the next.
    """
    started = time.perf_counter()
    output = Path(output)
    if len(dataset) == 0:
        raise UserError("the dataset has no rows; nothing to export")
    plan = plan_shards(dataset, max_shard_size)
    with exclusive(lock_of(output), busy=lambda holder: _busy(output, holder), wait=False):
        if output.exists() and (not output.is_dir() or any(output.iterdir())):
            raise UserError(
                f"'{output}' already exists and is not an empty folder; remove it or choose another --output"
            )
        _remove_leftovers(output)
        sizes = _write_package(dataset, plan, output, num_proc=num_proc, audit=audit, progress=progress)
    return ExportSummary(
        output, plan.num_shards, len(dataset), sum(sizes), plan.dataset_nbytes, time.perf_counter() - started
    )


def _busy(output: Path, holder: str) -> str:
    return f"'{output}' is being written by another export, {holder}; wait for it to finish or choose another --output"


def _remove_leftovers(output: Path) -> None:
    """Staging folders of exports to `output` that were killed (only called under the lock: none is running)."""
    for leftover in [*output.parent.glob(f".{output.name}.*.partial"), output.parent / f".{output.name}.partial"]:
        shutil.rmtree(leftover, ignore_errors=True)


def _write_package(
    dataset: datasets.Dataset,
    plan: ShardPlan,
    output: Path,
    *,
    num_proc: int | None,
    audit: str | os.PathLike | None,
    progress: bool,
) -> list[int]:
    """Write the package into a staging folder of this process's own, then move it to `output` in one rename."""
    staging = unique_sibling(output, "partial")
    (staging / DATA_DIR).mkdir(parents=True)
    try:
        sizes = _write_shards(dataset, plan, str(staging), num_proc, progress)
        if audit is not None:
            shutil.copyfile(audit, staging / card.AUDIT_FILE)
        card.write_package_metadata(
            staging,
            features=dataset.features,
            num_examples=len(dataset),
            dataset_size=plan.dataset_nbytes,
            download_size=sum(sizes),
        )
        if output.exists():
            output.rmdir()
        os.replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sizes


def _write_shards(
    dataset: datasets.Dataset, plan: ShardPlan, directory: str, num_proc: int | None, progress: bool
) -> list[int]:
    """Write every shard, in `num_proc` processes when asked; return the parquet size of each shard."""
    jobs = [(dataset, index, plan, directory) for index in range(plan.num_shards)]
    sizes = [0] * plan.num_shards
    workers = max(1, min(num_proc or 1, plan.num_shards))
    with tqdm(total=len(dataset), unit=" rows", desc="Exporting parquet shards", disable=not progress) as bar:
        if workers == 1:
            results = map(_write_shard_job, jobs)
            pool = None
        else:
            # An executor, not a Pool: a Pool's task thread writes every job into the workers' pipe at once, and
            # when Ctrl-C stops the workers with that pipe full, Pool.terminate waits on the thread forever (seen
            # 1 run in 4). The executor keeps only a job or two per worker in flight.
            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(workers, mp_context=context, initializer=start_worker)
            results = (future.result() for future in as_completed([pool.submit(_write_shard_job, job) for job in jobs]))
        try:
            for index, rows, size in results:
                sizes[index] = size
                bar.update(rows)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
    return sizes
