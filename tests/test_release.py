import json
from pathlib import Path

from datasets.info import DatasetInfosDict

from imagenet_sketch_tools.release import release_checksum, write_release_infos

ROOT = Path(__file__).parent.parent


def test_dataset_infos_json_is_what_datasets_reads(tmp_path):
    infos = DatasetInfosDict.from_directory(str(ROOT))
    info = infos["default"]
    assert info.splits["train"].num_examples == 50_889
    assert info.features["label"].num_classes == 1000
    assert release_checksum() == (7_593_573_012, "4d3ce6b82a7c48aabf14aeac105eb533e75707f152cc858f55bfc022031a72ed")


def test_committed_dataset_infos_json_is_up_to_date(tmp_path):
    write_release_infos(str(tmp_path))
    generated = json.loads((tmp_path / "dataset_infos.json").read_text())
    assert generated == json.loads((ROOT / "dataset_infos.json").read_text())


def test_readme_is_a_dataset_card_with_the_fields_the_hub_reads():
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(ROOT / "README.md").data
    assert card.task_categories == ["image-classification"]
    assert card.paperswithcode_id == "imagenet-sketch"
    assert card.pretty_name == "ImageNet-Sketch"
    assert card.size_categories == ["10K<n<100K"]
    assert card.source_datasets == ["original"]
    assert card.license and "wang2019learning" in card.citation
