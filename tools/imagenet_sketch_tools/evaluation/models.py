"""Model specs loaded as one shape: a torch module giving 1000 ImageNet-1k logits, and the eval
preprocessing of the library the model comes from (so a score here is the one that library reports).

torch and the model libraries are imported only when a model is loaded: the base install has none of them.
"""

from __future__ import annotations

import importlib
import os
import sys

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.evaluation.clip import load_open_clip
from imagenet_sketch_tools.evaluation.hf import load_hf
from imagenet_sketch_tools.evaluation.spec import (
    DEFAULT_DATA_CONFIG,
    NUM_CLASSES,
    Loaded,
    Spec,
    Weights,
    load_state,
    param_count,
    parse_spec,
    require,
    unreachable,
)


def load(spec: Spec | str, weights: Weights | None = None) -> Loaded:
    """The model and its eval preprocessing for `spec`."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    weights = weights or Weights()
    require("torch")
    if weights.checkpoint and not os.path.isfile(weights.checkpoint):
        raise UserError(f"--checkpoint '{weights.checkpoint}' is not a file")
    import torch

    # A random init is seeded, so `--no-pretrained` gives the same model (and scores) every run; the caller's
    # random state is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if spec.family == "timm":
            return load_timm(spec, weights)
        if spec.family == "torchvision":
            return load_torchvision(spec, weights)
        if spec.family == "python":
            return load_python(spec, weights)
        if spec.family == "hf":
            return load_hf(spec, weights)
        return load_open_clip(spec, weights)


def created(spec: Spec, weights: Weights, create):
    """`create(pretrained)`'s module with the user's weights: the library's pretrained ones (an unreachable hub is a
    one-line error saying what to do instead), a `--checkpoint`, or a random init."""
    try:
        module = create(weights.from_library)
    except Exception as error:
        if weights.from_library:
            raise unreachable(spec, error) from error
        raise
    if weights.checkpoint:
        load_state(module, weights.checkpoint, spec)
    return module


def load_timm(spec: Spec, weights: Weights) -> Loaded:
    timm = require("timm")
    if not timm.is_model(spec.name):
        raise UserError(f"timm has no model '{spec.name}'; see timm.list_models('{spec.name.split('.')[0]}*')")
    module = created(spec, weights, lambda pretrained: timm.create_model(spec.name, pretrained=pretrained))
    if getattr(module, "num_classes", NUM_CLASSES) != NUM_CLASSES:
        raise UserError(f"{spec.text} has {module.num_classes} classes, not the 1000 of ImageNet-1k")
    config = timm.data.resolve_data_config(model=module)
    cfg = module.pretrained_cfg or {}
    architecture = cfg.get("architecture") or spec.name.split(".")[0]
    # timm's results name a model architecture.tag; with its pretrained weights that is what ran
    name = f"{architecture}.{cfg['tag']}" if weights.from_library and cfg.get("tag") else spec.name
    return timm_loaded(module, config, name, architecture)


def timm_loaded(module, config: dict, name: str, backbone: str) -> Loaded:
    from imagenet_sketch_tools.evaluation.preprocess import TimmPreprocess

    return Loaded(
        name=name,
        backbone=backbone,
        module=module,
        preprocess=TimmPreprocess(config),
        param_count=param_count(module),
        img_size=int(config["input_size"][-1]),
        crop_pct=float(config["crop_pct"]),
        interpolation=str(config["interpolation"]),
    )


def load_python(spec: Spec, weights: Weights) -> Loaded:
    """`python:MODULE:FUNCTION`: FUNCTION() gives a module, or (module, data config in timm's form)."""
    timm = require("timm")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: a module beside the user is importable
    try:
        module_of_user = importlib.import_module(spec.name)
    except ImportError as error:
        raise UserError(f"cannot import '{spec.name}' for {spec.text}: {error}") from error
    function = getattr(module_of_user, spec.extra, None)
    if not callable(function):
        raise UserError(f"'{spec.name}' has no function '{spec.extra}'")
    made = function()
    module, given = made if isinstance(made, tuple) else (made, {})
    if not hasattr(module, "parameters") or not callable(module):
        raise UserError(f"{spec.text} returned a {type(module).__name__}, not a torch module")
    if weights.checkpoint:
        load_state(module, weights.checkpoint, spec)
    unknown = set(given) - set(DEFAULT_DATA_CONFIG)
    if unknown:
        raise UserError(f"{spec.text}: unknown data config keys {sorted(unknown)}; use {sorted(DEFAULT_DATA_CONFIG)}")
    config = timm.data.resolve_data_config(pretrained_cfg={**DEFAULT_DATA_CONFIG, **given})
    return timm_loaded(module, config, spec.text, spec.extra)


def load_torchvision(spec: Spec, weights: Weights) -> Loaded:
    """torchvision's model, with the eval transform of its weights (the named ones, else DEFAULT)."""
    require("torchvision")
    from torchvision import models

    from imagenet_sketch_tools.evaluation.preprocess import TensorPreprocess

    try:
        enum = models.get_model_weights(spec.name)
    except (ValueError, KeyError) as error:
        raise UserError(f"torchvision has no classification model '{spec.name}'") from error
    try:
        chosen = enum[spec.extra] if spec.extra else enum.DEFAULT
    except KeyError as error:
        known = ", ".join(member.name for member in enum)
        raise UserError(f"{spec.name} has no weights '{spec.extra}'; it has {known}") from error
    module = created(
        spec, weights, lambda pretrained: models.get_model(spec.name, weights=chosen if pretrained else None)
    )
    transform = chosen.transforms()
    crop = int(transform.crop_size[0])
    resize = int(transform.resize_size[0])
    return Loaded(
        name=f"torchvision:{spec.name}:{chosen.name}" if weights.from_library else spec.text,
        backbone=spec.name,
        module=module,
        preprocess=TensorPreprocess(transform),
        param_count=param_count(module),
        img_size=crop,
        crop_pct=round(crop / resize, 3),
        interpolation=transform.interpolation.value,
    )
