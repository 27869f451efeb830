"""The hub package's dataset card (README.md) and dataset_infos.json.

The YAML `dataset_info` and `configs` are made by the same datasets calls `push_to_hub` makes
(`DatasetInfosDict.to_dataset_card_data`, `MetadataConfigs.to_dataset_card_data`), with the same values, so
a later push_to_hub of the same data rewrites the card's YAML to exactly what is already there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from datasets.utils.py_utils import asdict
from huggingface_hub import DatasetCard, DatasetCardData

from imagenet_sketch_tools.dataset.release import CARD_METADATA, CITATION, HOMEPAGE, PAPER_TITLE, PAPER_URL, SPLIT

CONFIG_NAME = "default"
DATA_FILES = "data/train-*"
AUDIT_FILE = "audit.csv"
REPOCARD_FILE = "README.md"
INFOS_FILE = "dataset_infos.json"


def card_data(features: datasets.Features, num_examples: int, dataset_size: int, download_size: int) -> DatasetCardData:
    """The card's YAML: descriptive metadata, then dataset_info and configs as push_to_hub writes them."""
    data = DatasetCardData(**CARD_METADATA, size_categories=[size_category(num_examples)])
    splits = datasets.SplitDict()
    splits.add(datasets.SplitInfo(name=SPLIT, num_bytes=dataset_size, num_examples=num_examples))
    info = datasets.DatasetInfo(
        config_name=CONFIG_NAME,
        features=features,
        splits=splits,
        download_size=download_size,
        dataset_size=dataset_size,
        size_in_bytes=download_size + dataset_size,
    )
    DatasetInfosDict({CONFIG_NAME: info}).to_dataset_card_data(data)
    MetadataConfigs({CONFIG_NAME: {"data_files": [{"split": SPLIT, "path": DATA_FILES}]}}).to_dataset_card_data(data)
    return data


def size_category(num_examples: int) -> str:
    """The hub's size_categories tag for a row count (n<1K, 1K<n<10K, 10K<n<100K, ...)."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    return next((tag for bound, tag in bounds if num_examples < bound), "n>1M")


def legacy_infos(data: DatasetCardData, size_in_bytes: int) -> str:
    """dataset_infos.json read back from the card's YAML, serialised as push_to_hub serialises it."""
    info = DatasetInfosDict.from_dataset_card_data(data)[CONFIG_NAME]
    info.size_in_bytes = size_in_bytes
    return json.dumps({CONFIG_NAME: asdict(info)})


def write_package_metadata(
    directory: str | os.PathLike,
    *,
    features: datasets.Features,
    num_examples: int,
    dataset_size: int,
    download_size: int,
) -> None:
    """Write README.md and dataset_infos.json into `directory` (which holds data/ and maybe audit.csv)."""
    directory = Path(directory)
    data = card_data(features, num_examples, dataset_size, download_size)
    body = card_body(num_examples, has_audit=(directory / AUDIT_FILE).is_file())
    card = DatasetCard(f"---\n{data}\n---\n{body}")
    (directory / REPOCARD_FILE).write_text(str(card), encoding="utf-8")
    (directory / INFOS_FILE).write_text(legacy_infos(data, download_size + dataset_size), encoding="utf-8")


def card_body(num_examples: int, has_audit: bool) -> str:
    audit = (
        f"\nThe per-image audit (black images, flips/rotations/copies, duplicates) is in "
        f"[`{AUDIT_FILE}`]({AUDIT_FILE}).\n"
        if has_audit
        else ""
    )
    return f"""
# ImageNet-Sketch

## Dataset description

- **Homepage / repository:** {HOMEPAGE}
- **Paper:** [{PAPER_TITLE}]({PAPER_URL})
  (Wang, Ge, Lipton, Xing; NeurIPS 2019)

ImageNet-Sketch is a set of black-and-white sketches of the 1000 ImageNet-1k classes, made to evaluate how well
ImageNet models generalise out of domain: the objects are the ImageNet classes, but the colour and texture cues
that models trained on photographs lean on are gone. This package holds **{num_examples:,} images**, about 50
per class. (The authors' description says 50,000 images, 50 per class; the released archive holds 50,889.)

| column | type | |
|---|---|---|
| `image` | `Image` | the JPEG exactly as in the authors' release (bytes untouched) |
| `label` | `ClassLabel` (1000 names) | the ImageNet-1k class index, the index every ImageNet model predicts |
| `wnid` | `string` | the WordNet id of the class, e.g. `n01440764` |

There is a single `train` split; the data is meant for evaluation.

## How it was made

For every ImageNet-1k class the authors queried Google Images for "sketch of <class name>", restricted to
black-and-white results, and kept about 100 images per class. They then cleaned the results by hand, removing
irrelevant images and images of similar but different classes. Classes left with fewer than 50 images were filled
up to 50 with flipped and rotated copies of their images.

## How to load it

```python
from datasets import load_dataset

ds = load_dataset("<this repo id>", split="train")
ds[0]["image"], ds[0]["label"], ds.features["label"].int2str(ds[0]["label"])

# streaming: rows arrive as the parquet shards are read, nothing is downloaded first
it = load_dataset("<this repo id>", split="train", streaming=True)
next(iter(it))
```

The files are plain parquet (`data/train-*.parquet`, image bytes embedded), readable without `datasets`,
e.g. with pyarrow or DuckDB: `SELECT label, wnid FROM 'data/train-*.parquet'`.

## Known quirks

- **Classes with 51 images.** Some classes hold 51 images, not 50: an off-by-one in the authors' augmentation
  loop.
- **Augmented copies.** Images in classes that had fewer than 50 after cleaning include horizontally flipped,
  rotated or plain copies of other images of the same class; they are not independent samples.
- **All-black images.** A few images are entirely black (e.g. `n03085013/sketch_3.JPEG`).
- **Two duplicate class names.** ImageNet-1k names two pairs of classes the same: crane the bird (`n02012849`)
  and crane the machine (`n03126707`), and maillot (`n03710637`, and `n03710721` "maillot, tank suit"). Here
  they are distinct labels, named `crane`/`crane2` and `maillot`/`maillot, tank suit` in the label names; use
  `label` or `wnid`, never the name, to tell them apart.
{audit}
## Leaderboard

The authors keep a leaderboard of top-1/top-5 accuracy on ImageNet-Sketch in their repository's README
({HOMEPAGE}). Its figures are not copied here because they could not be checked against the
source when this card was written; see the repository for current results. The paper's headline finding is that
ImageNet-trained models lose most of their accuracy on these sketches, and that penalising the predictive power of
local (texture-level) features (PAR) recovers part of it.

## Citation

```bibtex
{CITATION.strip()}
```
"""
