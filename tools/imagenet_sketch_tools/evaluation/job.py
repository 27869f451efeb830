"""The engine seam: what one evaluation job is (a model, the selected rows of a source, the settings), what an
engine gives back for it, and the `Engine` protocol that the local engine (this process and its loader workers)
and the Ray engine (an actor pool on a cluster) implement. The driver (`api`) does everything else the same
for both: selection, resume rules, metrics and outputs.

Options are checked here, once, for the command line and the Python API alike.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import numpy as np

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.evaluation.data import Meta, RowSource
from imagenet_sketch_tools.evaluation.identity import identity
from imagenet_sketch_tools.evaluation.spec import TEMPLATES, Described, LoadOptions, Model, Weights

DEVICES = ("auto", "cpu", "cuda", "mps")
R = TypeVar("R", bound=RowSource)  # the rows an engine reads: any source locally, a package's shards on Ray


@dataclass(frozen=True)
class Settings:
    """How models are run and what is kept; the same for every engine."""

    output: Path | None = None  # None: nothing written, results returned in memory
    batch_size: int = 64
    workers: int | None = None  # local engine's decoding processes; None: min(4, CPUs)
    device: str = "auto"
    amp: bool = False
    limit: int | None = None
    classes: tuple[str, ...] | None = None
    skip_unreadable: bool = False
    force: bool = False
    reference: str | None = None
    progress: bool = False
    cache_dir: str | None = None  # the datasets cache, where an archive source is prepared
    input_cache: Path | None = None  # where groups' uint8 batches are kept across runs (input_cache.py)
    use_train_size: bool = False  # timm models: the train-size data config, not validate.py's test-size default
    templates: str = "openai"  # open_clip models: CLIP's 80 prompt templates, or "simple" (7)

    @property
    def load_options(self) -> LoadOptions:
        return LoadOptions(self.use_train_size, self.templates, self.progress)

    def validate(self) -> None:
        """One-line UserErrors for values no engine can run with."""
        if self.batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, not {self.batch_size}")
        if self.workers is not None and self.workers < 0:
            raise UserError(f"--workers must be 0 or more, not {self.workers}")
        if self.limit is not None and self.limit < 1:
            raise UserError(f"--limit must be at least 1, not {self.limit}")
        if self.device not in DEVICES:
            raise UserError(f"--device {self.device!r} is not one of {', '.join(DEVICES)}")
        if self.templates not in TEMPLATES:
            raise UserError(f"--templates {self.templates!r} is not one of {', '.join(TEMPLATES)}")
        if self.input_cache is not None and self.input_cache.exists() and not self.input_cache.is_dir():
            raise UserError(f"--input-cache '{self.input_cache}' is a file; give a folder (created if missing)")


@dataclass(frozen=True)
class Job(Generic[R]):
    """One model to run over the selected rows. `folder` is where the engine may keep its saved batches
    (`partial.PARTIAL` inside it), so an interrupted job resumes. An engine runs a group of jobs at once: the
    models of one uint8 stage (`groups`), with the same rows, selection and settings."""

    model: Model
    weights: Weights
    rows: R
    meta: Meta
    selected: np.ndarray  # row indices, in dataset order
    settings: Settings
    folder: Path

    def identity(self) -> dict:
        """What decides the model's predictions: when any of it changes, earlier work is not reused."""
        return {
            "model": identity(self.model),
            "checkpoint": identity(self.weights.checkpoint) if self.weights.checkpoint else None,
            "pretrained": self.weights.pretrained,
            "source": self.rows.identity,
            "rows": hashlib.sha256(self.selected.tobytes()).hexdigest()[:16],
            "amp": self.settings.amp,
            "use_train_size": self.settings.use_train_size,
            "templates": self.settings.templates,
        }


@dataclass
class Computed:
    """What an engine gives back for a job: the model as results name it, predictions of the rows that decoded
    (in row order), the rows that did not (row, reason), how many images it ran now, the bytes of rows it
    kept for mistakes.png, and how many images its group decoded and read from the input cache now."""

    model: Described
    rows: np.ndarray
    top5: np.ndarray
    prob: np.ndarray
    unreadable: list[tuple[int, str]]
    computed: int
    contents: dict[int, bytes] = field(default_factory=dict)
    decoded: int = 0
    cached: int = 0


class Engine(Protocol[R]):
    """Where predictions are computed. The driver calls, in order: `validate` (before anything is read),
    `open_rows`, then within `session()` `run` for each group of the models whose finished results cannot be
    reused (`groups`: the models of one uint8 stage, or a model alone)."""

    def validate(self, settings: Settings, models: Sequence[Model], source: object) -> None:
        """One-line UserErrors for what this engine cannot run (the settings' own checks are done already)."""
        ...

    def open_rows(self, source: object, settings: Settings) -> R:
        """The rows of `source` in the form this engine reads."""
        ...

    def session(self) -> AbstractContextManager[object]:
        """Held around all the jobs of a call (a cluster connection, say)."""
        ...

    def run(self, jobs: Sequence[Job[R]]) -> list[Computed]:
        """One Computed per job, in order; the images decoded once for the group."""
        ...


def validate(settings: Settings, weights: Weights, engine: Engine, models: Sequence[Model], source: object) -> None:
    """Every option check, for the command line and the API alike: the settings', the weights', the engine's."""
    settings.validate()
    if weights.checkpoint and not os.path.isfile(weights.checkpoint):
        raise UserError(f"--checkpoint '{weights.checkpoint}' is not a file")
    engine.validate(settings, models, source)
