"""Where the builder reads from: the user's source, or the release from its mirrors, and its cache key."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil

from .archive import is_remote

HUB_ZIP_URL = "https://huggingface.co/datasets/imagenet_sketch/resolve/main/data/ImageNet-Sketch.zip"
DEFAULT_SOURCE = HUB_ZIP_URL
DATASET_NAME = "imagenet_sketch"


def hub_url() -> str:
    """The hub's copy of the zip, under HF_ENDPOINT when set (read now: huggingface_hub reads it at import)."""
    from huggingface_hub import constants

    endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    return HUB_ZIP_URL.replace("https://huggingface.co", endpoint.rstrip("/"), 1)


def resolve(source: str, streaming: bool = True) -> str:
    """The location the archive is read from (a path or URL) for a builder `source`.

    The default source is read remotely from the hub when streaming (nothing downloaded first); a build
    downloads it through the mirror chain, verified, and reads the local copy.
    """
    if source != DEFAULT_SOURCE:
        return source
    if streaming:
        return hub_url()
    from .mirrors import download

    return str(download())


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


def remove_unfinished(output_dir: str) -> None:
    """Remove a build's `<output>.incomplete` folder after it failed.

    datasets makes that folder just before the `try` that removes it on failure, so a Ctrl-C landing in between
    leaves it, and load_dataset's cache lookup then trips on it. Removed under the builder's lock (datasets' own
    FileLock, same file), and only if no other build of the same copy holds that lock.
    """
    from datasets.utils._filelock import FileLock
    from filelock import Timeout

    unfinished = output_dir + ".incomplete"
    if is_remote(output_dir) or not os.path.isdir(unfinished):
        return
    try:
        with FileLock(output_dir + "_builder.lock", timeout=0):
            shutil.rmtree(unfinished, ignore_errors=True)
    except Timeout:
        pass
