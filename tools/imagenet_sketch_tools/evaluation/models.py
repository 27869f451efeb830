"""Model specs loaded as one shape: a torch module giving 1000 ImageNet-1k logits, and the eval
preprocessing of the library the model comes from (so a score here is the one that library reports).

torch and the model libraries are imported only when a model is loaded: the base install has none of them.
`describe` builds a model's architecture on torch's meta device, so a driver that only needs its name, size and
input geometry (the Ray engine's) reads, fetches and initialises no weights.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
from typing import Any

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.evaluation.clip import load_open_clip
from imagenet_sketch_tools.evaluation.hf import load_hf
from imagenet_sketch_tools.evaluation.preprocess import TensorPreprocess, TimmPreprocess
from imagenet_sketch_tools.evaluation.spec import (
    DEFAULT_DATA_CONFIG,
    LIBRARY_FAMILIES,
    NUM_CLASSES,
    RANDOM_INIT,
    Described,
    Loaded,
    Spec,
    Weights,
    load_state,
    param_count,
    parse_spec,
    require,
    unreachable,
)

DIGEST_CHARS = 8  # of a module's weights digest in its default name: enough to tell two modules apart


def load(spec: Spec | str, weights: Weights | None = None, *, architecture_only: bool = False) -> Loaded:
    """The model and its eval preprocessing for `spec`; with `architecture_only` (under torch's meta device, see
    `describe`) the library's architecture without its weights."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    weights = weights or Weights()
    require("torch")
    if weights.checkpoint and not os.path.isfile(weights.checkpoint):
        raise UserError(f"--checkpoint '{weights.checkpoint}' is not a file")
    import torch  # the eval extra, checked just above

    # A random init is seeded, so `--no-pretrained` gives the same model (and scores) every run, in this process
    # or a Ray actor; the caller's random state is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        loaded = load_family(spec, weights, architecture_only)
    if spec.family in LIBRARY_FAMILIES and not weights.pretrained and not weights.checkpoint:
        loaded.name += RANDOM_INIT
    return loaded


def load_family(spec: Spec, weights: Weights, architecture_only: bool) -> Loaded:
    if spec.family == "timm":
        return load_timm(spec, weights, architecture_only)
    if spec.family == "torchvision":
        return load_torchvision(spec, weights, architecture_only)
    if spec.family == "python":
        return load_python(spec, weights, architecture_only)
    if spec.family == "hf":
        return load_hf(spec, weights, architecture_only)
    return load_open_clip(spec, weights, architecture_only)


def describe(spec: Spec, weights: Weights) -> Described:
    """The model's name, parameter count and input geometry, from its architecture built on torch's meta
    device: shapes only, no weights read, fetched or initialised."""
    require("torch")
    import torch  # the eval extra, checked just above

    with torch.device("meta"):
        return load(spec, weights, architecture_only=True).description()


def from_module(module: Any, name: str | None = None, data_config: dict | None = None) -> Loaded:
    """A torch module given directly, with timm's data config keys in `data_config` (missing ones: timm's
    defaults for a 224 model). Unnamed, it is called after its class and its weights, so two different
    modules of one class never share a name (and a folder, and a results.csv row)."""
    if not hasattr(module, "state_dict") or not callable(module):
        raise UserError(f"a {type(module).__name__} is not a model: give a spec, a Loaded or a torch module")
    backbone = type(module).__name__
    return module_loaded(module, data_config or {}, name or f"{backbone}-{weights_digest(module)}", backbone)


def weights_digest(module: Any) -> str:
    """A short digest of a module's state dict: names, shapes, dtypes and bytes."""
    digest = hashlib.sha256()
    for key, tensor in module.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        if str(flat.dtype) == "torch.bfloat16":
            flat = flat.float()  # numpy has no bfloat16; float32 holds every bfloat16 exactly
        digest.update(flat.numpy().tobytes())
    return digest.hexdigest()[:DIGEST_CHARS]


def created(spec: Spec, weights: Weights, create, architecture_only: bool = False):
    """`create(pretrained)`'s module with the user's weights: the library's pretrained ones (an unreachable hub is a
    one-line error saying what to do instead), a `--checkpoint`, or a random init; the bare architecture when
    `architecture_only`."""
    if architecture_only:
        return create(False)
    try:
        module = create(weights.from_library)
    except Exception as error:
        if weights.from_library:
            raise unreachable(spec, error) from error
        raise
    if weights.checkpoint:
        load_state(module, weights.checkpoint, spec)
    return module


def load_timm(spec: Spec, weights: Weights, architecture_only: bool) -> Loaded:
    timm = require("timm")
    if not timm.is_model(spec.name):
        raise UserError(f"timm has no model '{spec.name}'; see timm.list_models('{spec.name.split('.')[0]}*')")
    create = lambda pretrained: timm.create_model(spec.name, pretrained=pretrained)  # noqa: E731
    module = created(spec, weights, create, architecture_only)
    if getattr(module, "num_classes", NUM_CLASSES) != NUM_CLASSES:
        raise UserError(f"{spec.text} has {module.num_classes} classes, not the {NUM_CLASSES} of ImageNet-1k")
    config = timm.data.resolve_data_config(model=module)
    cfg = module.pretrained_cfg or {}
    architecture = cfg.get("architecture") or spec.name.split(".")[0]
    # timm's results name a model architecture.tag; with its pretrained weights that is what ran
    name = f"{architecture}.{cfg['tag']}" if weights.from_library and cfg.get("tag") else spec.name
    return timm_loaded(module, config, name, architecture)


def timm_loaded(module, config: dict, name: str, backbone: str) -> Loaded:
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


def load_python(spec: Spec, weights: Weights, architecture_only: bool) -> Loaded:
    """`python:MODULE:FUNCTION`: FUNCTION() gives a module, or (module, data config in timm's form)."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: a module beside the user is importable
    try:
        module_of_user = importlib.import_module(spec.name)
    except ImportError as error:
        raise UserError(f"cannot import '{spec.name}' for {spec.text}: {error}") from error
    function = getattr(module_of_user, spec.extra or "", None)
    if not callable(function):
        raise UserError(f"'{spec.name}' has no function '{spec.extra}'")
    made = function()
    module, given = made if isinstance(made, tuple) else (made, {})
    if not hasattr(module, "parameters") or not callable(module):
        raise UserError(f"{spec.text} returned a {type(module).__name__}, not a torch module")
    if weights.checkpoint and not architecture_only:
        load_state(module, weights.checkpoint, spec)
    return module_loaded(module, given, spec.text, spec.extra or spec.name, what=spec.text)


def module_loaded(module, given: dict, name: str, backbone: str, what: str = "data_config") -> Loaded:
    """A module with timm's preprocessing for the data config keys `given` (the rest: timm's 224 defaults)."""
    timm = require("timm")
    unknown = set(given) - set(DEFAULT_DATA_CONFIG)
    if unknown:
        raise UserError(f"{what}: unknown data config keys {sorted(unknown)}; use {sorted(DEFAULT_DATA_CONFIG)}")
    config = timm.data.resolve_data_config(pretrained_cfg={**DEFAULT_DATA_CONFIG, **given})
    return timm_loaded(module, config, name, backbone)


def load_torchvision(spec: Spec, weights: Weights, architecture_only: bool) -> Loaded:
    """torchvision's model, with the eval transform of its weights (the named ones, else DEFAULT)."""
    require("torchvision")
    from torchvision import models  # the eval extra, checked just above

    try:
        enum = models.get_model_weights(spec.name)
    except (ValueError, KeyError) as error:
        raise UserError(f"torchvision has no classification model '{spec.name}'") from error
    try:
        chosen = enum[spec.extra or "DEFAULT"]  # DEFAULT: the enum's alias of its best weights
    except KeyError as error:
        known = ", ".join(member.name for member in enum)
        raise UserError(f"{spec.name} has no weights '{spec.extra}'; it has {known}") from error
    create = lambda pretrained: models.get_model(spec.name, weights=chosen if pretrained else None)  # noqa: E731
    module = created(spec, weights, create, architecture_only)
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
