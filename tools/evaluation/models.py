"""Model specs (`timm:NAME`, `torchvision:NAME[:WEIGHTS]`, `hf:REPO`, `open_clip:ARCH:PRETRAINED`,
`python:MODULE:FUNCTION`) loaded as one shape: a torch module giving 1000 ImageNet-1k logits, and the eval
preprocessing of the library the model comes from (so a score here is the one that library reports).

torch and the model libraries are imported only when a model is loaded: the base install has none of them.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from ..errors import UserError

FAMILIES = ("timm", "torchvision", "hf", "open_clip", "python")
EXTRA_OF = {"timm": "eval", "torch": "eval", "torchvision": "eval", "open_clip": "clip", "transformers": "transformers"}
NUM_CLASSES = 1000
# timm's defaults for a 224 model: what a python: model gets when it gives no data config
DEFAULT_DATA_CONFIG = {
    "input_size": (3, 224, 224),
    "interpolation": "bicubic",
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
    "crop_pct": 0.875,
    "crop_mode": "center",
}


@dataclass(frozen=True)
class Spec:
    """A parsed model spec: the library, the name in it, and what follows (weights tag, pretrained, function)."""

    family: str
    name: str
    extra: str | None = None

    @property
    def text(self) -> str:
        return ":".join(part for part in (self.family, self.name, self.extra) if part)


@dataclass
class Weights:
    """Where parameters come from: the library's pretrained weights, a local checkpoint, or a random init."""

    checkpoint: str | None = None
    pretrained: bool = True


@dataclass
class Loaded:
    """A model ready to evaluate: `module(batch)` gives (N, 1000) logits in ImageNet-1k label order."""

    name: str  # results.csv's `model` (timm's own name for timm models, so --reference rows match)
    backbone: str
    module: Any  # torch.nn.Module
    preprocess: Any  # a preprocess.* object: PIL image -> model input
    param_count: int
    img_size: int
    crop_pct: float
    interpolation: str
    notes: list[str] = field(default_factory=list)


def parse_spec(text: str) -> Spec:
    """`timm:resnet50.tv_in1k` (a bare name means timm), `torchvision:resnet50[:IMAGENET1K_V2]`, `hf:REPO`,
    `open_clip:ARCH:PRETRAINED`, `python:MODULE:FUNCTION`; UserError naming the forms otherwise."""
    family, sep, rest = text.partition(":")
    if not sep:
        family, rest = "timm", text
    if family not in FAMILIES:
        # `C:\model` or `hf_hub:...` typed by mistake: say what is accepted
        raise UserError(f"model '{text}' has an unknown library '{family}'; use one of {', '.join(FAMILIES)}")
    if family == "hf":
        name, extra = rest, None  # a repo id or a local folder, taken whole (a path may hold a colon)
    else:
        name, _, extra = rest.partition(":")
        extra = extra or None
    if not name:
        raise UserError(f"model '{text}' names no model after '{family}:'")
    if family in ("open_clip", "python") and not extra:
        form = "open_clip:ARCH:PRETRAINED" if family == "open_clip" else "python:MODULE:FUNCTION"
        raise UserError(f"model '{text}' needs the form {form}")
    if family == "timm" and extra:
        raise UserError(f"model '{text}': a timm name has no ':' part; use a tag as in timm:resnet50.tv_in1k")
    return Spec(family, name, extra)


def require(module: str):
    """Import `module`, or a one-line UserError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = module.split(".")[0]
        if getattr(error, "name", None) and error.name.split(".")[0] != top:
            raise  # the library is there but broken: its own error says more than ours would
        extra = EXTRA_OF.get(top, "eval")
        raise UserError(f"{top} is not installed; run pip install 'imagenet-sketch[{extra}]'") from error


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
            from .hf import load_hf

            return load_hf(spec, weights)
        from .clip import load_open_clip

        return load_open_clip(spec, weights)


def unreachable(spec: Spec, error: BaseException) -> UserError:
    """Pretrained weights that cannot be fetched: say why in a few words, and the two ways around it."""
    reason = " ".join(str(error).split())[:160] or type(error).__name__
    return UserError(
        f"cannot get the pretrained weights of {spec.text} ({type(error).__name__}: {reason}); "
        "pass --checkpoint FILE (a state dict or .safetensors) or --no-pretrained for a random init"
    )


def read_state_dict(path: str) -> dict:
    """A state dict from a `.safetensors` file or a torch file (a bare state dict or one under
    `state_dict` / `model` / `state_dict_ema`, as training scripts save them)."""
    import torch

    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a pickle of arbitrary objects, or not a torch file at all
        raise UserError(f"--checkpoint '{path}' is not a state dict torch can read safely ({error})") from error
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise UserError(f"--checkpoint '{path}' holds a {type(state).__name__}, not a state dict")
    # DataParallel / DDP checkpoints prefix every key
    return {key.removeprefix("module."): value for key, value in state.items()}


def load_state(module, path: str, spec: Spec) -> None:
    try:
        module.load_state_dict(read_state_dict(path))
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise UserError(f"--checkpoint '{path}' does not fit {spec.text}: {first}") from error


def param_count(module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def load_timm(spec: Spec, weights: Weights) -> Loaded:
    timm = require("timm")
    if not timm.is_model(spec.name):
        raise UserError(f"timm has no model '{spec.name}'; see timm.list_models('{spec.name.split('.')[0]}*')")
    pretrained = weights.pretrained and not weights.checkpoint
    try:
        module = timm.create_model(spec.name, pretrained=pretrained)
    except Exception as error:
        if pretrained:
            raise unreachable(spec, error) from error
        raise
    if weights.checkpoint:
        load_state(module, weights.checkpoint, spec)
    if getattr(module, "num_classes", NUM_CLASSES) != NUM_CLASSES:
        raise UserError(f"{spec.text} has {module.num_classes} classes, not the 1000 of ImageNet-1k")
    config = timm.data.resolve_data_config(model=module)
    cfg = module.pretrained_cfg or {}
    architecture = cfg.get("architecture") or spec.name.split(".")[0]
    # timm's results name a model architecture.tag; with its pretrained weights that is what ran
    name = f"{architecture}.{cfg['tag']}" if pretrained and cfg.get("tag") else spec.name
    return timm_loaded(module, config, name, architecture)


def timm_loaded(module, config: dict, name: str, backbone: str) -> Loaded:
    from .preprocess import TimmPreprocess

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

    from .preprocess import TensorPreprocess

    try:
        enum = models.get_model_weights(spec.name)
    except (ValueError, KeyError) as error:
        raise UserError(f"torchvision has no classification model '{spec.name}'") from error
    try:
        chosen = enum[spec.extra] if spec.extra else enum.DEFAULT
    except KeyError as error:
        known = ", ".join(member.name for member in enum)
        raise UserError(f"{spec.name} has no weights '{spec.extra}'; it has {known}") from error
    pretrained = weights.pretrained and not weights.checkpoint
    try:
        module = models.get_model(spec.name, weights=chosen if pretrained else None)
    except Exception as error:
        if pretrained:
            raise unreachable(spec, error) from error
        raise
    if weights.checkpoint:
        load_state(module, weights.checkpoint, spec)
    transform = chosen.transforms()
    crop = int(transform.crop_size[0])
    resize = int(transform.resize_size[0])
    return Loaded(
        name=f"torchvision:{spec.name}:{chosen.name}" if pretrained else spec.text,
        backbone=spec.name,
        module=module,
        preprocess=TensorPreprocess(transform),
        param_count=param_count(module),
        img_size=crop,
        crop_pct=round(crop / resize, 3),
        interpolation=transform.interpolation.value,
    )
