"""`--input-cache DIR`: the uint8 pixels of a run's batches (after decode, resize and crop), kept across runs so
that a later run, or another model of the same uint8 stage, reads them instead of decoding the images again.

One folder per key: the source's identity (`identity.py`'s rule, as every reuse here), the uint8 stage
(`preprocess.TimmPreprocess.stage`), the versions of the libraries that compute it, the selected rows and the
batch size (a cache holds a run's batches as they are cut). Each batch is one `.npz` file renamed into place
once complete, so a cache filled by an interrupted run holds only whole batches; `manifest.json`, written last,
says the cache is finished and gives each file's size. A batch file that is missing, cut or damaged is decoded
again (and written again), with one line saying so: a cache is never read past what it holds.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import PIL

from imagenet_sketch_tools.common.files import write_atomically
from imagenet_sketch_tools.evaluation.identity import DIGEST_CHARS
from imagenet_sketch_tools.evaluation.outputs import read_json, write_json

FORMAT = 1  # of the batch files: a change here makes every older cache another key
KEY_FILE = "key.json"
MANIFEST = "manifest.json"
DAMAGED = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)  # what a cut or altered .npz raises


def cache_key(source: str, stage: tuple, selected: np.ndarray, batch_size: int) -> dict:
    """Everything the cached pixels depend on; a different value of any is another cache."""
    import timm  # the eval extra: a stage exists only once a timm-shaped model is loaded

    return {
        "format": FORMAT,
        "source": source,
        "stage": list(stage),
        "rows": hashlib.sha256(np.asarray(selected, dtype=np.int64).tobytes()).hexdigest()[:DIGEST_CHARS],
        "batch_size": batch_size,
        "timm": timm.__version__,
        "pillow": PIL.__version__,
    }


class InputCache:
    """The batch files of one key under `root`. Picklable: the loader's worker processes read and write it."""

    def __init__(self, root: Path, key: dict):
        self.key = key
        text = json.dumps(key, sort_keys=True, default=list)
        self.folder = Path(root) / hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]
        self.folder.mkdir(parents=True, exist_ok=True)
        if read_json(self.folder / KEY_FILE) != json.loads(text):
            write_json(self.folder / KEY_FILE, key)  # a new cache (or one whose key file was lost): said here
            (self.folder / MANIFEST).unlink(missing_ok=True)
        manifest = read_json(self.folder / MANIFEST) or {}
        self.sizes: dict[str, int] = manifest.get("sizes", {})  # batch index -> bytes, from a finished cache

    def batch_file(self, index: int) -> Path:
        return self.folder / f"batch-{index:06d}.npz"

    @property
    def finished(self) -> bool:
        return bool(self.sizes)

    def read(self, index: int) -> dict[str, np.ndarray] | None:
        """The batch's arrays (pixels uint8 NCHW, rows, bad_rows, bad_reasons), or None when it must be
        decoded: not there yet, or cut or damaged (said in one line)."""
        path = self.batch_file(index)
        if not path.exists():
            if self.finished:
                print(f"input cache: {path} is missing; decoding its images again", file=sys.stderr)
            return None
        expected = self.sizes.get(str(index))
        try:
            if expected is not None and path.stat().st_size != expected:
                raise ValueError(f"{path.stat().st_size} bytes, not {expected}")
            with np.load(path, allow_pickle=False) as saved:  # reading a stored member checks its CRC
                return {name: saved[name] for name in ("pixels", "rows", "bad_rows", "bad_reasons")}
        except DAMAGED as error:
            print(f"input cache: {path} is cut or damaged ({error}); decoding its images again", file=sys.stderr)
            return None

    def write(self, index: int, pixels: np.ndarray, rows, bad_rows, bad_reasons) -> None:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            pixels=np.ascontiguousarray(pixels, dtype=np.uint8),
            rows=np.asarray(rows, dtype=np.int64),
            bad_rows=np.asarray(bad_rows, dtype=np.int64),
            bad_reasons=np.asarray(bad_reasons, dtype=str),
        )
        write_atomically(self.batch_file(index), buffer.getvalue())

    def finish(self, count: int) -> None:
        """Once every batch is on disk: the manifest, last, naming each file's size."""
        files = [self.batch_file(index) for index in range(count)]
        if all(path.exists() for path in files):
            sizes = {str(index): path.stat().st_size for index, path in enumerate(files)}
            write_json(self.folder / MANIFEST, {"key": self.key, "sizes": sizes})
