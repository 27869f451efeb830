"""The prepared copies in the datasets cache: which one a lookup finds, and cleaning up after a failed build."""

from __future__ import annotations

import glob
import os
import shutil

from imagenet_sketch_tools.dataset.archive import is_remote
from imagenet_sketch_tools.dataset.release import NAME


def prepared_hash(cache_dir: str | None) -> str | None:
    """The hash of the most recently prepared copy in the datasets cache, if any (as load_dataset finds it)."""
    import datasets

    root = os.path.expanduser(str(cache_dir or datasets.config.HF_DATASETS_CACHE))
    infos = glob.glob(os.path.join(root, NAME, "default", "*", "*", "dataset_info.json"))
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


class RemovesUnfinishedBuilds:
    """A builder mixin: whatever stops a build (Ctrl-C included) leaves nothing a cache lookup could mistake
    for a dataset."""

    def download_and_prepare(self, *args, **kwargs) -> None:
        try:
            super().download_and_prepare(*args, **kwargs)
        except BaseException:
            remove_unfinished(self._output_dir)
            raise
