"""What a model spec names (`timm:NAME`, `torchvision:NAME[:WEIGHTS]`, `hf:REPO`, `open_clip:ARCH:PRETRAINED`,
`python:MODULE:FUNCTION`), where its weights come from, and the loaded shape every family gives: a torch module
with 1000 ImageNet-1k logits and its library's eval preprocessing. Shared by every family's loader.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from imagenet_sketch_tools.common.errors import UserError

FAMILIES = ("timm", "torchvision", "hf", "open_clip", "python")
LIBRARY_FAMILIES = FAMILIES[:4]  # those whose library has its own pretrained weights (python: the user's module)
EXTRA_OF = {"timm": "eval", "torch": "eval", "torchvision": "eval", "open_clip": "clip", "transformers": "transformers"}
NUM_CLASSES = 1000
TOP = 5  # predictions kept per image: top-1 and top-5 are scored from them
RANDOM_INIT = "-random-init"  # a library model's name without its weights: never passes for the pretrained one
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

    @property
    def from_library(self) -> bool:
        """The library's own pretrained weights (fetched from its hub), not a checkpoint or a random init."""
        return self.pretrained and not self.checkpoint


@dataclass(frozen=True)
class Described:
    """What results.csv and run.json say of a model, known without its weights."""

    name: str  # results.csv's `model` (timm's own name for timm models, so --reference rows match)
    backbone: str
    param_count: int
    img_size: int
    crop_pct: float
    interpolation: str
    notes: tuple[str, ...] = ()


@dataclass
class Loaded:
    """A model ready to evaluate: `module(batch)` gives (N, 1000) logits in ImageNet-1k label order."""

    name: str  # as `Described.name`
    backbone: str
    module: Any  # torch.nn.Module
    preprocess: Any  # a preprocess.* object: PIL image -> model input
    param_count: int
    img_size: int
    crop_pct: float
    interpolation: str
    notes: list[str] = field(default_factory=list)

    def description(self) -> Described:
        return Described(
            self.name, self.backbone, self.param_count, self.img_size, self.crop_pct, self.interpolation,
            tuple(self.notes),
        )  # fmt: skip


Model = Spec | Loaded  # what an engine is given: a spec to load, or a model already in memory


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
        missing = getattr(error, "name", None)
        if missing and missing.split(".")[0] != top:
            raise  # the library is there but broken: its own error says more than ours would
        extra = EXTRA_OF.get(top, "eval")
        raise UserError(f"{top} is not installed; run pip install 'imagenet-sketch[{extra}]'") from error


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
    import torch  # the eval extra: called only once a model is loaded

    if path.endswith(".safetensors"):
        from safetensors.torch import load_file  # installed with the eval extra (timm needs it)

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
