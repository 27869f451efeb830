"""The release's facts, each said once: what the archive is, where its mirrors are, and how to cite it.

The builder, the hub card, `download` and the README checks read them from here; `dataset_infos.json` at the
repository root is generated from them and the builder (a test regenerates it and compares).
"""

from __future__ import annotations

import os

NAME = "imagenet_sketch"
PRETTY_NAME = "ImageNet-Sketch"
ARCHIVE_NAME = "ImageNet-Sketch.zip"
ARCHIVE_SIZE = 7_593_573_012
ARCHIVE_SHA256 = "4d3ce6b82a7c48aabf14aeac105eb533e75707f152cc858f55bfc022031a72ed"
RELEASE_ROWS = 50_889
SPLIT = "train"

HOMEPAGE = "https://github.com/HaohanWang/ImageNet-Sketch"
PAPER_URL = "https://arxiv.org/abs/1905.13549"
PAPER_TITLE = "Learning Robust Global Representations by Penalizing Local Predictive Power"
LICENSE = "unknown"
CITATION = """\
@inproceedings{wang2019learning,
  title={Learning Robust Global Representations by Penalizing Local Predictive Power},
  author={Wang, Haohan and Ge, Songwei and Lipton, Zachary and Xing, Eric P},
  booktitle={Advances in Neural Information Processing Systems},
  pages={10506--10518},
  year={2019}
}
"""
DESCRIPTION = """\
ImageNet-Sketch consists of 50,889 black-and-white sketches, about 50 for each of the 1000 ImageNet-1k
classes, found by searching Google Images for "sketch of <class name>" and cleaned by hand. It evaluates
how well ImageNet models generalise to a shift in domain. `label` is the ImageNet-1k class index.
"""
# The dataset card's descriptive YAML, shared by README.md's front matter and the exported card.
CARD_METADATA = {
    "pretty_name": PRETTY_NAME,
    "license": LICENSE,
    "language": ["en"],
    "task_categories": ["image-classification"],
    "task_ids": ["multi-class-image-classification"],
    "paperswithcode_id": "imagenet-sketch",
    "source_datasets": ["original"],
    "tags": ["robustness", "domain-shift", "sketch"],
}

# Mirrors, in the order the download chain tries them. The hub repo's current id: the old unprefixed one only
# answers through a rename redirect, which an HF_ENDPOINT mirror need not follow.
HUB_REPO_ID = "songweig/imagenet_sketch"
HUB_ZIP_URL = f"https://huggingface.co/datasets/{HUB_REPO_ID}/resolve/main/data/{ARCHIVE_NAME}"
GDRIVE_FILE_ID = "1Mj0i5HBthqH1p_yeXzsg22gZduvgoNeA"
KAGGLE_DATASET = "wanghaohan/imagenetsketch"


def release_checksum() -> tuple[int, str]:
    """(size in bytes, sha256) of ImageNet-Sketch.zip."""
    return ARCHIVE_SIZE, ARCHIVE_SHA256


def hub_url() -> str:
    """The hub's copy of the zip, under HF_ENDPOINT when set (read now: huggingface_hub reads it at import)."""
    from huggingface_hub import constants

    endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    return HUB_ZIP_URL.replace("https://huggingface.co", endpoint.rstrip("/"), 1)
