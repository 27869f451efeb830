"""The prepared copies in the datasets cache: which one a lookup finds, and cleaning up after a failed build."""

from __future__ import annotations

import glob
import json
import os
import shutil
from pathlib import Path

from imagenet_sketch_tools.dataset.archive import is_remote
from imagenet_sketch_tools.dataset.release import NAME

# 1980-01-01, the zip epoch: a sample copy's folder is dated here so that datasets' lookup without a config
# name (the most recently modified copy of any config) prefers every copy of the release to it.
SAMPLE_FOLDER_TIME = 315_532_800


def prepared_copy(cache_dir: str | None, config: str = "default") -> tuple[str, str] | None:
    """(version, hash) of the copy of `config` that `load_dataset(NAME, config)` reads from the cache, if any.

    The rule of datasets' own lookup (`packaged_modules/cache/cache.py` `_find_hash_in_cache`): among the
    `<cache>/<name>/<config>/<version>/<hash>` folders whose `dataset_info.json` names the config, the one whose
    folder was modified last, whatever its version. Unfinished folders are skipped (datasets would fail on them).
    """
    import datasets

    root = os.path.expanduser(str(cache_dir or datasets.config.HF_DATASETS_CACHE))
    folders = [path for path in glob.glob(os.path.join(root, NAME, config, "*", "*")) if _names_config(path, config)]
    if not folders:
        return None
    # sorted(...)[-1] as datasets does: of two folders modified at the same instant, the later in glob order.
    chosen = Path(sorted(folders, key=lambda path: Path(path).stat().st_mtime)[-1])
    return chosen.parts[-2], chosen.parts[-1]


def prepared_hash(cache_dir: str | None, config: str = "default") -> str | None:
    """The hash of the copy `prepared_copy` picks, if any."""
    found = prepared_copy(cache_dir, config)
    return found[1] if found else None


def _names_config(folder: str, config: str) -> bool:
    try:
        return json.loads(Path(folder, "dataset_info.json").read_text(encoding="utf-8"))["config_name"] == config
    except (OSError, ValueError, KeyError, TypeError):
        return False


def date_as_sample(output_dir: str) -> None:
    """Date a sample copy's folder before any copy of the release (see SAMPLE_FOLDER_TIME)."""
    if not is_remote(output_dir) and os.path.isdir(output_dir):
        os.utime(output_dir, (SAMPLE_FOLDER_TIME, SAMPLE_FOLDER_TIME))


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
