"""Which models of a run share their input: those whose uint8 stage (the image after decode, resize and crop,
`preprocess.TimmPreprocess.stage`) is the same form a group, and each image is decoded once for the whole group.

A model without a uint8 stage (a transformers image processor, open_clip's or torchvision's transform, which give
normalised floats of their own) runs alone: nothing proves another model's pixels would be the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from imagenet_sketch_tools.evaluation.models import load
from imagenet_sketch_tools.evaluation.spec import Loaded, LoadOptions, Model, Weights, require

SHAPED_LIKE_TIMM = ("timm", "python")  # families whose preprocessing is timm's eval transform


def stage_of(model: Model, weights: Weights, options: LoadOptions) -> tuple | None:
    """The model's uint8 stage, from its preprocessing; a spec's is read from its architecture alone, built on
    torch's meta device (no weights read, fetched or initialised, as `models.describe`)."""
    if isinstance(model, Loaded):
        return model.preprocess.stage
    if model.family not in SHAPED_LIKE_TIMM:
        return None
    require("torch")
    import torch  # the eval extra, checked just above

    with torch.device("meta"):
        return load(model, weights, options, architecture_only=True).preprocess.stage


def group_by_stage(stages: Sequence[tuple | None]) -> list[list[int]]:
    """Indices of `stages` grouped by equal stage, groups in the order of their first model; None alone."""
    groups: dict[object, list[int]] = {}
    for index, stage in enumerate(stages):
        groups.setdefault(("alone", index) if stage is None else stage, []).append(index)
    return list(groups.values())


def groups_of(models: Sequence[Model], weights: Weights, options: LoadOptions) -> list[list[int]]:
    """The run's groups (indices into `models`); a single model needs no stage worked out."""
    if len(models) < 2:
        return [[0]] if models else []
    return group_by_stage([stage_of(model, weights, options) for model in models])
