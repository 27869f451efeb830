"""The input pipeline and the forward pass, the same in every engine: batches of rows read, decoded and
transformed (in the local engine's worker processes, each a contiguous span of batches read as one stream of
Arrow data; in a Ray actor, the block it is given), or read from an input cache, then run through each model of
a group (models sharing the uint8 stage: one decode, one transfer to the device, normalised per model there).

Imported only once a model is loaded: torch is there by then (spec.require said which extra if not).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.images import decode
from imagenet_sketch_tools.evaluation.data import RowSource
from imagenet_sketch_tools.evaluation.input_cache import InputCache
from imagenet_sketch_tools.evaluation.partial import split_batches
from imagenet_sketch_tools.evaluation.spec import NUM_CLASSES, TOP


@dataclass
class Batch:
    index: int
    rows: np.ndarray  # the rows whose images decoded, in order
    pixels: object  # their model input (uint8 for timm preprocessing, float otherwise), on the CPU
    bad_rows: list[int]
    bad_reasons: list[str]
    contents: list[bytes] | None = None  # the kept rows' bytes, when the source reads scattered rows slowly
    decoded: int = 0  # images decoded for this batch (0 when read from the input cache)
    cached: int = 0  # images read from the input cache instead

    def pin_memory(self) -> Batch:
        """The pixels in page-locked memory (the DataLoader's pin thread calls this for a CUDA device): the copy
        to the GPU then runs asynchronously, without a staging copy."""
        self.pixels = self.pixels.pin_memory()  # pyright: ignore[reportAttributeAccessIssue]  (a tensor)
        return self


class Mistakes:
    """The most confident wrong top-1 predictions seen so far, with their image bytes, so mistakes.png needs
    no second pass over a source that has no cheap random access. Ordered as `most_confident_mistakes`
    orders them (probability, then row), so the final choice among all rows is always among those kept."""

    def __init__(self, count: int):
        self.count = count
        self.kept: list[tuple[float, int]] = []  # (-probability, row), best first
        self.contents: dict[int, bytes] = {}

    def offer(self, rows: np.ndarray, labels: np.ndarray, top5: np.ndarray, prob: np.ndarray, contents) -> None:
        for i in np.flatnonzero(top5[:, 0] != labels):
            key = (-float(prob[i, 0]), int(rows[i]))
            if len(self.kept) < self.count or key < self.kept[-1]:
                self.kept = sorted([*self.kept, key])
                self.contents[key[1]] = contents[i]
                for _, dropped in self.kept[self.count :]:
                    self.contents.pop(dropped, None)
                self.kept = self.kept[: self.count]


class BatchStream(IterableDataset):
    """An iterable dataset of whole batches: a worker reads a batch's rows as one run, decodes and transforms
    them, and sends the collated tensor. Each worker takes a contiguous span of the batches, so its reads follow
    on from one another in the source; batches arrive interleaved across workers and are saved by index, so
    their order does not matter."""

    def __init__(self, rows: RowSource, batches: list[np.ndarray], todo: list[int], preprocess, cache=None):
        self.rows, self.batches, self.todo, self.preprocess = rows, batches, todo, preprocess
        self.send_contents = not rows.cheap_random_access
        self.cache: InputCache | None = cache

    def __iter__(self) -> Iterator[Batch]:
        worker = get_worker_info()
        todo = self.todo
        if worker is not None:
            todo = todo[worker.id * len(todo) // worker.num_workers : (worker.id + 1) * len(todo) // worker.num_workers]
        for index in todo:
            yield self.batch(index)

    def batch(self, index: int) -> Batch:
        """The batch from the input cache if it holds it whole, else decoded (and then kept there)."""
        cached = self.cache.read(index) if self.cache is not None else None
        if cached is not None:
            reasons = [str(reason) for reason in cached["bad_reasons"]]
            pixels = torch.from_numpy(cached["pixels"])
            rows, bad_rows = cached["rows"], cached["bad_rows"].tolist()
            return Batch(index, rows, pixels, bad_rows, reasons, cached=len(rows) + len(bad_rows))
        wanted = self.batches[index]
        batch = decode_batch(index, wanted, self.rows.images_of(wanted), self.preprocess, self.send_contents)
        if self.cache is not None:
            self.cache.write(index, batch.pixels.numpy(), batch.rows, batch.bad_rows, batch.bad_reasons)  # pyright: ignore[reportAttributeAccessIssue]
        return batch


def decode_batch(index: int, wanted, contents, preprocess, keep_contents: bool) -> Batch:
    """Rows' stored bytes to the model's CPU input: every engine decodes and transforms with this, so their
    tensors are the same. An image that cannot be decoded is listed with its reason, never replaced."""
    kept, pixels, bad_rows, bad_reasons, kept_contents = [], [], [], [], []
    for row, content in zip(wanted, contents):
        image, unreadable = decode(content)  # never replaced by another image: listed, and the run says so
        if image is None:
            bad_rows.append(int(row))
            bad_reasons.append(unreadable)
            continue
        pixels.append(preprocess(image))
        kept.append(int(row))
        kept_contents.append(content)
    rows = np.asarray(kept, dtype=np.int64)
    sent = kept_contents if keep_contents else None
    return Batch(index, rows, preprocess.collate(pixels), bad_rows, bad_reasons, sent, decoded=len(wanted))


def as_is(batch: Any) -> Any:
    return batch  # a module-level function: under spawn (macOS, Windows) workers must unpickle it


def default_workers() -> int:
    return min(4, os.cpu_count() or 1)


def input_batches(
    rows: RowSource,
    selected: np.ndarray,
    preprocess,
    batch_size: int,
    workers: int | None = None,
    todo=None,
    cache: InputCache | None = None,
    pin: bool = False,
) -> Iterator[Batch]:
    """Batches of `selected` rows (or only the batch indices in `todo`) as CPU tensors, read from `cache` where
    it holds them; with workers, batches come interleaved across them (each carries its index); `pin` for a
    CUDA device."""
    batches = split_batches(selected, batch_size)
    todo = list(range(len(batches))) if todo is None else list(todo)
    workers = default_workers() if workers is None else min(workers, len(todo))
    if cache is not None and cache.finished and all(str(index) in cache.sizes for index in todo):
        workers = 0  # reading a finished cache here beats shipping its tensors from worker processes
    if not todo:
        return iter(())
    loader = DataLoader(
        BatchStream(rows, batches, todo, preprocess, cache),
        batch_size=None,  # items are whole batches already
        num_workers=workers,
        collate_fn=as_is,
        pin_memory=pin,  # calls Batch.pin_memory in the loader's pin thread
        prefetch_factor=2 if workers else None,
    )
    return iter(loader)


def pick_device(name: str):
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
    }
    if name not in available:
        raise UserError(f"--device {name!r} is not one of auto, cpu, cuda, mps")
    if not available[name]:
        raise UserError(f"--device {name}: torch finds no {name} device here; use --device cpu or auto")
    return torch.device(name)


def prepare(module, device):
    module = module.eval().to(device)
    if device.type == "cuda":
        module = module.to(memory_format=torch.channels_last)  # faster convolutions on CUDA, same results
    return module


def forward(module, pixels, device, amp: bool):
    """Softmax top-5 (indices, probabilities) of a batch, computed in float32 from the logits."""
    with torch.inference_mode():
        if device.type == "cuda":
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, enabled=amp):
            logits = module(pixels)
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        if logits.ndim != 2 or logits.shape[1] != NUM_CLASSES:
            raise UserError(f"the model gave outputs of shape {tuple(logits.shape)}, not (batch, {NUM_CLASSES}) logits")
        prob, top5 = logits.float().softmax(dim=1).topk(TOP, dim=1)
    return top5.cpu().numpy(), prob.cpu().numpy()


def predict(module, preprocess, batch: Batch, device, amp: bool) -> tuple[np.ndarray, np.ndarray]:
    """Top-5 (indices, probabilities) of a decoded batch: normalised on the device, then the forward pass."""
    return predict_group([module], [preprocess], batch, device, amp)[0]


def predict_group(modules, preprocesses, batch: Batch, device, amp: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each model's top-5 of one batch: the batch crosses to the device once (uint8 for timm preprocessing), and
    each model normalises its own copy there with its mean and std. The preprocesses share one uint8 stage."""
    if not len(batch.rows):
        return [(np.zeros((0, TOP), np.int64), np.zeros((0, TOP), np.float32)) for _ in modules]
    moved = preprocesses[0].to_device(batch.pixels, device)
    return [forward(module, pre.normalise(moved), device, amp) for module, pre in zip(modules, preprocesses)]
