import json
from pathlib import Path

import datasets
from datasets.info import DatasetInfosDict
from datasets.utils.py_utils import asdict

import imagenet_sketch
from imagenet_sketch_tools.dataset import release
from imagenet_sketch_tools.dataset.release import release_checksum

ROOT = Path(__file__).parents[2]


def test_dataset_infos_json_is_what_datasets_reads(tmp_path):
    infos = DatasetInfosDict.from_directory(str(ROOT))
    info = infos["default"]
    assert info.splits is not None and info.features is not None
    assert info.splits["train"].num_examples == 50_889
    assert info.features["label"].num_classes == 1000
    assert release_checksum() == (7_593_573_012, "4d3ce6b82a7c48aabf14aeac105eb533e75707f152cc858f55bfc022031a72ed")


def release_infos(cache_dir: Path) -> dict:
    """dataset_infos.json for the release, as `DatasetInfosDict.write_to_directory` dumps it (without its rewrite
    of README.md's YAML): the builder's info with the release's split and checksum."""
    info = imagenet_sketch.ImagenetSketch(source=release.HUB_ZIP_URL, cache_dir=str(cache_dir)).info
    info.splits = datasets.SplitDict(dataset_name=release.NAME)
    info.splits.add(datasets.SplitInfo(name="train", num_examples=release.RELEASE_ROWS, dataset_name=release.NAME))
    info.download_checksums = {
        release.HUB_ZIP_URL: {"num_bytes": release.ARCHIVE_SIZE, "checksum": release.ARCHIVE_SHA256}
    }
    info.download_size = release.ARCHIVE_SIZE
    return {"default": asdict(info)}


def test_committed_dataset_infos_json_is_generated_from_the_release_facts(tmp_path):
    # To regenerate: json.dump(release_infos(tmp), open("dataset_infos.json", "w"), indent=4) plus a newline.
    assert release_infos(tmp_path) == json.loads((ROOT / "dataset_infos.json").read_text())


def test_readme_is_a_dataset_card_with_the_fields_the_hub_reads():
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(ROOT / "README.md").data
    assert card.get("task_categories") == ["image-classification"]
    assert card.get("paperswithcode_id") == "imagenet-sketch"
    assert card.get("pretty_name") == "ImageNet-Sketch"
    assert card.get("size_categories") == ["10K<n<100K"]
    assert card.get("source_datasets") == ["original"]
    assert card.get("license") and "wang2019learning" in card.get("citation", "")
