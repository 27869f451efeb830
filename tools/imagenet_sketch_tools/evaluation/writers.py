"""One writer per output: a model's folder is written by one eval at a time, and so are the output folder's
results.csv and leaderboard.md. Another eval waits for the holder, saying so in one line that names it, then
carries on (a model's folder it waited for is finished by then: it is read back, not run again). The locks are
`common.locks`' (released by the kernel however their holder ends, kept in the package's cache folder, so
nothing is added to the user's output).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from imagenet_sketch_tools.common.locks import exclusive, lock_of


def one_writer(folder: Path, kind: str, writing: str) -> AbstractContextManager[None]:
    """Hold the `kind` lock of `folder`; while another eval holds it, say so (naming `writing`) and wait."""
    busy = f"{writing} is being written by {{}}; waiting for it"
    return exclusive(lock_of(folder, f"eval-{kind}"), busy=busy.format, wait=True)


def model_writer(folder: Path, model: str) -> AbstractContextManager[None]:
    """The lock of a model's folder (`model`, as results.csv names it, for the waiting line)."""
    return one_writer(folder, "model", f"{model}: {folder}")


def results_writer(output: Path) -> AbstractContextManager[None]:
    """The lock of the output folder's results.csv and leaderboard.md."""
    return one_writer(output, "results", f"{output / 'results.csv'}")
