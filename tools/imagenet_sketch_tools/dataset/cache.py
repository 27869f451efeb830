"""The prepared copies in the datasets cache: which one a lookup finds, and building one out of sight of it."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from imagenet_sketch_tools.dataset import staging
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
    root = cache_root(cache_dir)
    folders = [path for path in glob.glob(os.path.join(root, NAME, config, "*", "*")) if _names_config(path, config)]
    if not folders:
        return None
    # sorted(...)[-1] as datasets does: of two folders modified at the same instant, the later in glob order.
    chosen = Path(sorted(folders, key=lambda path: Path(path).stat().st_mtime)[-1])
    return chosen.parts[-2], chosen.parts[-1]


def cache_root(cache_dir: str | None) -> str:
    """The datasets cache folder: `cache_dir`, else datasets' default (HF_DATASETS_CACHE)."""
    import datasets.config  # the builder's dependency; loaded only when the cache is looked at

    return os.path.expanduser(str(cache_dir or datasets.config.HF_DATASETS_CACHE))


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


def remove_stale_builds(cache_dir: str | None, config: str) -> None:
    """Remove what killed builds of `config` left in the cache (datasets' lookup would trip on an `.incomplete`)."""
    root = cache_root(cache_dir)
    if not is_remote(root):
        staging.remove_stale(glob.glob(os.path.join(glob.escape(root), NAME, config, "*")))


if TYPE_CHECKING:  # the mixin is only ever mixed into a datasets builder: typed as one, without importing it
    from datasets import DatasetBuilder as _Builder
else:
    _Builder = object


class BuildsOutOfSight(_Builder):
    """A builder mixin: the copy is built where no cache lookup sees it and appears complete or not at all,
    whatever stops the build (staging.build_out_of_sight)."""

    def download_and_prepare(self, output_dir: str | None = None, *args, **kwargs) -> None:
        from datasets import DownloadMode

        final = output_dir if output_dir is not None else self._cache_dir
        if is_remote(final):
            super().download_and_prepare(final, *args, **kwargs)
            return
        reuse = DownloadMode(kwargs.get("download_mode") or DownloadMode.REUSE_DATASET_IF_EXISTS)
        try:
            staging.build_out_of_sight(
                lambda into: super(BuildsOutOfSight, self).download_and_prepare(into, *args, **kwargs),
                final,
                reuse=reuse == DownloadMode.REUSE_DATASET_IF_EXISTS,
            )
        finally:
            self._output_dir = final  # datasets pointed it at the staging folder it was given
