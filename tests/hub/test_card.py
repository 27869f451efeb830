"""The dataset card and dataset_infos.json (tools/card.py): YAML as push_to_hub writes it, and a truthful body."""

import json
from pathlib import Path

import datasets
import pytest
from datasets.arrow_dataset import _get_updated_dataset_card
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem
from huggingface_hub import DatasetCard

import imagenet_sketch
from imagenet_sketch_tools.dataset import release
from imagenet_sketch_tools.dataset.release import RELEASE_ROWS
from imagenet_sketch_tools.hub import card

ROOT = Path(__file__).parents[2]
FEATURES = imagenet_sketch.ImagenetSketch(source="unused.zip").info.features
SIZES = {"num_examples": RELEASE_ROWS, "dataset_size": 7_600_000_000, "download_size": 7_590_000_000}


@pytest.fixture
def package(tmp_path):
    (tmp_path / "data").mkdir()
    for index in range(2):
        (tmp_path / "data" / f"train-{index:05d}-of-00002.parquet").write_bytes(b"x" * (3 + index))
    card.write_package_metadata(tmp_path, features=FEATURES, **SIZES)
    return tmp_path


def test_yaml_carries_features_split_sizes_and_configs(package):
    data = DatasetCard.load(package / "README.md").data
    (info,) = DatasetInfosDict.from_dataset_card_data(data).values()
    assert info.features == FEATURES and info.features["label"].names[134] == "crane"
    assert len(info.features["label"].names) == 1000
    assert info.splits["train"].num_examples == RELEASE_ROWS
    assert info.splits["train"].num_bytes == SIZES["dataset_size"]
    assert (info.download_size, info.dataset_size) == (SIZES["download_size"], SIZES["dataset_size"])
    assert MetadataConfigs.from_dataset_card_data(data) == {
        "default": {"data_files": [{"split": "train", "path": "data/train-*"}]}
    }
    assert data.license == "unknown" and data.task_categories == ["image-classification"]
    assert data.paperswithcode_id == "imagenet-sketch" and data.pretty_name == "ImageNet-Sketch"
    assert data.size_categories == ["10K<n<100K"] and data.source_datasets == ["original"]


def test_dataset_infos_json_agrees_with_the_yaml(package):
    from_json = DatasetInfosDict(
        {
            name: datasets.DatasetInfo.from_dict(info)
            for name, info in json.loads((package / "dataset_infos.json").read_text()).items()
        }
    )
    from_yaml = DatasetInfosDict.from_dataset_card_data(DatasetCard.load(package / "README.md").data)
    assert from_json.keys() == from_yaml.keys() == {"default"}
    for field in ("features", "splits", "download_size", "dataset_size", "config_name"):
        assert getattr(from_json["default"], field) == getattr(from_yaml["default"], field), field
    assert from_json["default"].size_in_bytes == SIZES["download_size"] + SIZES["dataset_size"]


def test_push_to_hubs_card_update_leaves_both_files_unchanged(package):
    """What push_to_hub writes when it re-pushes the same split over this package: the same two files."""
    shard_bytes = sum(path.stat().st_size for path in (package / "data").iterdir())
    sizes = dict(SIZES, download_size=shard_bytes)
    card.write_package_metadata(package, features=FEATURES, **sizes)
    new_card, new_infos = _get_updated_dataset_card(
        fs=DirFileSystem(path=str(package), fs=LocalFileSystem()),
        config_name="default",
        splits_info=[datasets.SplitInfo("train", num_bytes=sizes["dataset_size"], num_examples=RELEASE_ROWS)],
        features=FEATURES,
        data_dir="data",
        set_default=None,
        uploaded_sizes=[shard_bytes],
        deleted_sizes=[shard_bytes],
        remove_other_splits=False,
    )
    assert str(new_card) == (package / "README.md").read_text()
    assert json.dumps(new_infos) == (package / "dataset_infos.json").read_text()


def test_body_tells_the_count_the_making_the_quirks_and_how_to_load(package):
    body = DatasetCard.load(package / "README.md").text
    assert "50,889 images" in body and "50,000" in body
    assert '"sketch of <class name>"' in body and "flipped and rotated" in body
    for quirk in ("51 images", "n03085013/sketch_3.JPEG", "n02012849", "n03126707", "n03710637", "n03710721"):
        assert quirk in body, quirk
    assert "streaming=True" in body and "@inproceedings{wang2019learning" in body
    assert "## Leaderboard" in body and "audit.csv" not in body


def test_audit_csv_is_linked_only_when_shipped(tmp_path):
    (tmp_path / "audit.csv").write_text("path\n")
    card.write_package_metadata(tmp_path, features=FEATURES, **SIZES)
    assert "[`audit.csv`](audit.csv)" in (tmp_path / "README.md").read_text()


@pytest.mark.parametrize("rows, tag", [(31, "n<1K"), (5_000, "1K<n<10K"), (RELEASE_ROWS, "10K<n<100K")])
def test_size_category_follows_the_row_count(rows, tag):
    assert card.size_category(rows) == tag


def test_readme_front_matter_and_the_exported_card_agree_on_every_field_they_share(package):
    readme = DatasetCard.load(ROOT / "README.md").data.to_dict()
    exported = DatasetCard.load(package / "README.md").data.to_dict()
    shared = (set(readme) & set(exported)) - {"size_categories"}  # the card sizes itself by its own row count
    assert shared >= set(release.CARD_METADATA)
    assert {key: readme[key] for key in shared} == {key: exported[key] for key in shared}
    assert readme["citation"].strip() == release.CITATION.strip()
