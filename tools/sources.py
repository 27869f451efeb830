"""Where the builder reads from: the user's source, or the release from its mirrors, and its cache key."""

from __future__ import annotations

import glob
import hashlib
import os

from .archive import is_remote

HUB_ZIP_URL = "https://huggingface.co/datasets/imagenet_sketch/resolve/main/data/ImageNet-Sketch.zip"
DEFAULT_SOURCE = HUB_ZIP_URL
DATASET_NAME = "imagenet_sketch"


def resolve(source: str) -> str:
    """The location the archive is read from (a path or URL) for a builder `source`."""
    if source == DEFAULT_SOURCE and os.environ.get("HF_ENDPOINT"):
        return source.replace("https://huggingface.co", os.environ["HF_ENDPOINT"].rstrip("/"), 1)
    return source


def fingerprint(source: str) -> str:
    """The cache hash of a source: a rebuilt or replaced local archive gets a fresh prepared copy."""
    if is_remote(source) or not os.path.exists(source):
        identity = source
    else:
        status = os.stat(source)
        identity = f"{os.path.abspath(source)}:{status.st_size}:{status.st_mtime_ns}"
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def prepared_hash(cache_dir: str | None) -> str | None:
    """The hash of the most recently prepared copy in the datasets cache, if any (as load_dataset finds it)."""
    import datasets

    root = os.path.expanduser(str(cache_dir or datasets.config.HF_DATASETS_CACHE))
    infos = glob.glob(os.path.join(root, DATASET_NAME, "default", "*", "*", "dataset_info.json"))
    complete = [info for info in infos if not os.path.dirname(info).endswith(".incomplete")]
    if not complete:
        return None
    return os.path.basename(os.path.dirname(max(complete, key=os.path.getmtime)))
