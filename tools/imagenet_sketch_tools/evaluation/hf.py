"""transformers image classifiers (`hf:REPO`, a hub repo or a local folder saved with `save_pretrained`): their
image processor, and their `id2label` checked against ImageNet-1k so logit i is label i.

A 1000-class model must name the classes in ImageNet-1k order; a 1001-class model whose first class is a
background class (as TF-slim's and some Google checkpoints) has that column dropped. Anything else is refused:
scoring a model whose outputs are other classes would give a number that means nothing.
"""

from __future__ import annotations

import os
import re

from PIL import Image

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.dataset.classes import class_table
from imagenet_sketch_tools.evaluation.fetching import fetched
from imagenet_sketch_tools.evaluation.preprocess import TensorPreprocess
from imagenet_sketch_tools.evaluation.spec import (
    NUM_CLASSES,
    Loaded,
    Spec,
    Weights,
    load_state,
    param_count,
    require,
    short,
)

CONVNEXT_NO_CROP = 384  # ConvNext's processors warp to this size and above instead of cropping
BACKGROUND = {"background", "none", "unknown", "other", "0", "label_0"}


def first_name(name: str) -> str:
    """`crane2` and `Crane` both read `crane`; `tench, Tinca tinca` reads `tench`."""
    return re.sub(r"\d+$", "", name.split(",")[0].strip().lower())


def label_offset(id2label: dict) -> int:
    """0 when the model's classes are ImageNet-1k's in order, 1 with a leading background class; else refused."""
    labels = [str(id2label.get(i, id2label.get(str(i), ""))) for i in range(len(id2label))]
    ours = [first_name(name) for name in class_table()[1]]
    if len(labels) == NUM_CLASSES + 1 and labels[0].strip().lower() in BACKGROUND:
        labels, offset = labels[1:], 1
    elif len(labels) == NUM_CLASSES:
        offset = 0
    else:
        raise UserError(
            f"the model has {len(labels)} classes; only ImageNet-1k classifiers (1000, or 1001 with background) "
            "can be scored on ImageNet-Sketch"
        )
    mismatched = [i for i, (theirs, mine) in enumerate(zip(labels, ours)) if first_name(theirs) != mine]
    if mismatched:
        i = mismatched[0]
        raise UserError(
            f"the model's class {i + offset} is '{labels[i]}', not ImageNet-1k's '{class_table()[1][i]}' "
            f"({len(mismatched)} of {NUM_CLASSES} differ); its id2label is not the ImageNet-1k classes in order"
        )
    return offset


def classifier_module(model, offset: int):
    import torch  # the eval extra: transformers is loaded, and needs it

    class Logits(torch.nn.Module):
        """pixel_values -> the 1000 ImageNet-1k logits (a background column dropped)."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, pixels):
            return self.model(pixel_values=pixels).logits[:, offset : offset + NUM_CLASSES]

    return Logits()


def processor_transform(processor):
    """One RGB image -> its pixel_values (C, H, W), by the model's own image processor."""

    def transform(image):
        return processor(images=image, return_tensors="pt")["pixel_values"][0]

    return transform


def load_hf(spec: Spec, weights: Weights, architecture_only: bool = False) -> Loaded:
    transformers = require("transformers")

    def from_repo():
        processor = transformers.AutoImageProcessor.from_pretrained(spec.name)
        if weights.from_library and not architecture_only:
            return processor, transformers.AutoModelForImageClassification.from_pretrained(spec.name)
        config = transformers.AutoConfig.from_pretrained(spec.name)
        return processor, transformers.AutoModelForImageClassification.from_config(config)

    # a hub repo's processor and config are fetched even for a random init; a local folder is read as it is
    if not os.path.isdir(spec.name):
        processor, model = fetched(spec, from_repo)
    else:
        try:
            processor, model = from_repo()
        except (OSError, ValueError) as error:
            raise UserError(f"{spec.name} is not a folder saved by save_pretrained ({short(str(error))})") from error
    if weights.checkpoint and not architecture_only:
        load_state(model, weights.checkpoint, spec)
    offset = label_offset(model.config.id2label)
    size, crop_pct = processor_geometry(processor)
    return Loaded(
        name=spec.text,  # load() names it by models.result_name
        backbone=getattr(model.config, "model_type", "transformers"),
        module=classifier_module(model, offset),
        preprocess=TensorPreprocess(processor_transform(processor)),
        param_count=param_count(model),
        img_size=size,
        crop_pct=crop_pct,
        interpolation=interpolation_name(getattr(processor, "resample", None)),
        notes=["background class dropped"] if offset else [],
    )


def processor_geometry(processor) -> tuple[int, float]:
    """(input side, crop_pct) as timm's results name them, from what the processor does: a center crop of
    `crop_size` after resizing to `size`; ConvNext's processors (a `crop_pct`, `size` a shortest edge under 384, no
    `do_center_crop`) resize the short side to shortest_edge / crop_pct and crop shortest_edge; else a plain
    resize to `size`, no crop."""
    size = getattr(processor, "size", None)
    shortest = _field(size, "shortest_edge")
    if getattr(processor, "do_center_crop", False):
        crop = getattr(processor, "crop_size", None)
        side = _field(crop, "height") or shortest or _field(size, "height") or 224
        resized = shortest or _field(size, "height") or side
        return int(side), round(side / resized, 3)
    crop_pct = getattr(processor, "crop_pct", None)
    if crop_pct and shortest and shortest < CONVNEXT_NO_CROP:
        return int(shortest), round(float(crop_pct), 3)
    return int(shortest or _field(size, "height") or 224), 1.0


def _field(size, key: str):
    """A dimension of a processor size: a dict in older transformers, a SizeDict in newer ones."""
    if size is None:
        return None
    return size.get(key) if isinstance(size, dict) else getattr(size, key, None)


def interpolation_name(resample) -> str:
    """`bilinear` for PIL's 2, an enum's name lower-cased otherwise (processors store either)."""
    if resample is None:
        return ""
    if isinstance(resample, int):
        return Image.Resampling(resample).name.lower()
    return getattr(resample, "name", str(resample)).lower()
