"""The release's published figures (archive name, size, sha256, row count), kept in dataset_infos.json."""

from __future__ import annotations

import functools
import json
import os
from importlib import resources

INFOS_FILE = "dataset_infos.json"
ARCHIVE_NAME = "ImageNet-Sketch.zip"
RELEASE_ROWS = 50_889


@functools.cache
def release_infos() -> dict:
    """dataset_infos.json as datasets writes it: {"default": DatasetInfo as a dict}."""
    return json.loads(resources.files(__package__).joinpath(INFOS_FILE).read_text(encoding="utf-8"))


def release_checksum() -> tuple[int, str]:
    """(size in bytes, sha256) of ImageNet-Sketch.zip."""
    (record,) = release_infos()["default"]["download_checksums"].values()
    return record["num_bytes"], record["checksum"]


def write_release_infos(directory: str) -> None:
    """Write dataset_infos.json for the release into `directory`, in the format `datasets` itself writes."""
    import tempfile

    import datasets
    from datasets.utils.py_utils import asdict

    import imagenet_sketch

    from .sources import HUB_ZIP_URL

    with tempfile.TemporaryDirectory() as cache_dir:
        info = imagenet_sketch.ImagenetSketch(source=HUB_ZIP_URL, cache_dir=cache_dir).info
    info.splits = datasets.SplitDict(dataset_name="imagenet_sketch")
    info.splits.add(datasets.SplitInfo(name="train", num_examples=RELEASE_ROWS, dataset_name="imagenet_sketch"))
    size, sha256 = 7_593_573_012, "4d3ce6b82a7c48aabf14aeac105eb533e75707f152cc858f55bfc022031a72ed"
    info.download_checksums = {HUB_ZIP_URL: {"num_bytes": size, "checksum": sha256}}
    info.download_size = size
    # The same dump as DatasetInfosDict.write_to_directory, without its rewrite of README.md's YAML.
    with open(os.path.join(directory, INFOS_FILE), "w", encoding="utf-8") as file:
        json.dump({"default": asdict(info)}, file, indent=4)
        file.write("\n")
