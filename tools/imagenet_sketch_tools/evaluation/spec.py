"""What a model spec names (`timm:NAME`, `torchvision:NAME[:WEIGHTS]`, `hf:REPO`, `open_clip:ARCH[:PRETRAINED]`,
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
TEMPLATES = ("openai", "simple")  # open_clip's prompt sets: CLIP's 80 ImageNet templates, or its 7-template subset
SHOWN_KEYS = 3  # of each kind of mismatch a checkpoint error names
REASON_CHARS = 200  # of a library's error message quoted in ours (cut at a word)
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

    def __post_init__(self):
        if self.checkpoint and not self.pretrained:
            raise UserError(
                "--checkpoint and --no-pretrained exclude each other: a checkpoint gives the weights, "
                "--no-pretrained a random init; pass one of them"
            )

    @property
    def from_library(self) -> bool:
        """The library's own pretrained weights (fetched from its hub), not a checkpoint or a random init."""
        return self.pretrained and not self.checkpoint


@dataclass(frozen=True)
class LoadOptions:
    """How a spec is turned into a model, beyond its weights (`Settings` holds them for a run)."""

    use_train_size: bool = False  # timm: the train-size data config, not validate.py's default test size
    templates: str = "openai"  # open_clip: which prompt templates build the zero-shot classifier (TEMPLATES)
    progress: bool = False  # open_clip: a bar over the prompt embeddings (minutes on a CPU); no effect on results


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
    `open_clip:ARCH[:PRETRAINED]` (a tag is needed for its pretrained weights only, which `load` checks),
    `python:MODULE:FUNCTION`; UserError naming the forms otherwise."""
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
    if family == "python" and not extra:
        raise UserError(f"model '{text}' needs the form python:MODULE:FUNCTION")
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


def unreachable(spec: Spec, error: BaseException | str) -> UserError:
    """Pretrained weights that cannot be fetched: why, in one whole line, and the three ways around it."""
    reason = error if isinstance(error, str) else f"{type(error).__name__}: {short(str(error))}"
    # torchvision's weights come from download.pytorch.org, the other libraries' from the Hugging Face hub
    mirror = "" if spec.family == "torchvision" else ", or set HF_ENDPOINT to a hub mirror you can reach"
    return UserError(
        f"cannot get the pretrained weights of {spec.text} ({reason}); pass --checkpoint FILE (a state dict or "
        f".safetensors) or --no-pretrained for a random init{mirror}"
    )


def short(text: str, limit: int = REASON_CHARS) -> str:
    """`text` on one line, cut at a word (never mid-word) when longer than `limit`."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0] + " ..."


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
    """The checkpoint's weights into `module`, or a UserError naming the first keys that do not fit."""
    state = read_state_dict(path)
    mismatch = state_mismatch(module.state_dict(), state)
    if mismatch:
        raise UserError(f"--checkpoint '{path}' does not fit {spec.text}: {mismatch}")
    module.load_state_dict(state)


def state_mismatch(expected: dict, given: dict) -> str:
    """The first few missing keys, unexpected keys and shape mismatches of `given` against `expected`; ""
    when it fits (torch's own message stops at its first line, before any key)."""
    missing = [key for key in expected if key not in given]
    unexpected = [key for key in given if key not in expected]
    shapes = [
        f"{key} {tuple(given[key].shape)} for {tuple(expected[key].shape)}"
        for key in expected
        if key in given and tuple(given[key].shape) != tuple(expected[key].shape)
    ]
    parts = [
        f"{len(found)} {what} ({', '.join(found[:SHOWN_KEYS])}{', ...' if len(found) > SHOWN_KEYS else ''})"
        for what, found in (
            ("missing key(s)", missing),
            ("unexpected key(s)", unexpected),
            ("shape mismatch(es)", shapes),
        )
        if found
    ]
    return "; ".join(parts)


def param_count(module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())
