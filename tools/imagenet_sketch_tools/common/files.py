"""File-system rules every stage follows: where the package keeps its files, writing so that nothing is ever
half-written at a final path, and hashing a file."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from tqdm.auto import tqdm

CHUNK = 1 << 20


def cache_folder() -> Path:
    """`$XDG_CACHE_HOME/imagenet_sketch` (an empty XDG_CACHE_HOME counts as unset, as the spec says)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "imagenet_sketch"


def write_atomically(path: str | os.PathLike, content: bytes | str) -> None:
    """Put `content` at `path` through a hidden temporary name beside it, renamed once complete and on disk.

    The temporary name starts with a dot, so a reader listing the folder (augment, the builder) never takes it
    for an image, and is unique to this call, so two processes writing the same path never write into one
    file (the last rename wins, whole); it is removed if the write fails.
    """
    path = Path(path)
    partial = unique_sibling(path, "partial")
    try:
        with open(partial, "xb") as file:
            file.write(content.encode("utf-8") if isinstance(content, str) else content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def unique_sibling(path: Path, kind: str) -> Path:
    """A hidden name beside `path` that no other process or call uses: `.<name>.<pid>-<random>.<kind>`."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.{kind}")


def file_sha256(path: str | os.PathLike, progress: bool = False) -> str:
    """The file's sha256, read in 1 MiB chunks (with a progress bar when asked: 7.6 GB takes a while)."""
    digest = hashlib.sha256()
    with (
        open(path, "rb") as file,
        tqdm(total=os.path.getsize(path), unit="B", unit_scale=True, desc="sha256", disable=not progress) as bar,
    ):
        while chunk := file.read(CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()
