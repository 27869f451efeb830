"""Model specs loaded as one shape: a torch module giving 1000 ImageNet-1k logits, and the eval
preprocessing of the library the model comes from (so a score here is the one that library reports).

torch and the model libraries are imported only when a model is loaded: the base install has none of them.
`describe` builds a model's architecture on torch's meta device, so a driver that only needs its name, size and
input geometry (the Ray engine's) reads, fetches and initialises no weights.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import os
import sys
from typing import Any

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.evaluation.clip import load_open_clip
from imagenet_sketch_tools.evaluation.fetching import fetched
from imagenet_sketch_tools.evaluation.hf import load_hf
from imagenet_sketch_tools.evaluation.preprocess import TensorPreprocess, TimmPreprocess
from imagenet_sketch_tools.evaluation.spec import (
    DEFAULT_DATA_CONFIG,
    LIBRARY_FAMILIES,
    NUM_CLASSES,
    RANDOM_INIT,
    Described,
    Loaded,
    LoadOptions,
    Spec,
    Weights,
    load_state,
    param_count,
    parse_spec,
    require,
)

DIGEST_CHARS = 8  # of a module's weights digest in its default name: enough to tell two modules apart
SUGGESTED = 3  # close timm names offered for a name timm does not know


def load(
    spec: Spec | str,
    weights: Weights | None = None,
    options: LoadOptions | None = None,
    *,
    architecture_only: bool = False,
) -> Loaded:
    """The model and its eval preprocessing for `spec`; with `architecture_only` (under torch's meta device, see
    `describe`) the library's architecture without its weights."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    weights, options = weights or Weights(), options or LoadOptions()
    require("torch")
    if weights.checkpoint and not os.path.isfile(weights.checkpoint):
        raise UserError(f"--checkpoint '{weights.checkpoint}' is not a file")
    import torch  # the eval extra, checked just above

    # A random init is seeded, so `--no-pretrained` gives the same model (and scores) every run, in this process
    # or a Ray actor; the caller's random state is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        loaded = load_family(spec, weights, options, architecture_only)
    loaded.name = result_name(spec, weights)
    return loaded


def load_family(spec: Spec, weights: Weights, options: LoadOptions, architecture_only: bool) -> Loaded:
    if spec.family == "timm":
        return load_timm(spec, weights, options, architecture_only)
    if spec.family == "torchvision":
        return load_torchvision(spec, weights, architecture_only)
    if spec.family == "python":
        return load_python(spec, weights, architecture_only)
    if spec.family == "hf":
        return load_hf(spec, weights, architecture_only)
    return load_open_clip(spec, weights, options.templates, architecture_only, options.progress)


def result_name(spec: Spec, weights: Weights) -> str:
    """The one naming rule of results.csv's rows (and, through `outputs.folder_name`, of model folders): the spec
    as written, without `timm:` (timm's results files name models bare); with the library's pretrained weights,
    the weights the library resolves (timm `architecture.tag`, torchvision `:WEIGHTS`); with a random init of a
    library's model, `-random-init` appended. Known without loading the model."""
    if spec.family == "timm" and weights.from_library:
        cfg = timm_pretrained_cfg(spec)
        # timm's results name a model architecture.tag; with its pretrained weights that is what runs
        name = f"{cfg.architecture}.{cfg.tag}" if cfg is not None and cfg.tag else spec.name
    elif spec.family == "timm":
        name = spec.name
    elif spec.family == "torchvision" and weights.from_library:
        name = f"torchvision:{spec.name}:{torchvision_weights(spec).name}"
    else:
        name = spec.text
    random = spec.family in LIBRARY_FAMILIES and not weights.pretrained and not weights.checkpoint
    return name + (RANDOM_INIT if random else "")


def describe(spec: Spec, weights: Weights, options: LoadOptions | None = None) -> Described:
    """The model's name, parameter count and input geometry, from its architecture built on torch's meta
    device: shapes only, no weights read, fetched or initialised."""
    require("torch")
    import torch  # the eval extra, checked just above

    with torch.device("meta"):
        return load(spec, weights, options, architecture_only=True).description()


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
    if architecture_only or not weights.from_library:
        module = create(False)
    else:
        module = fetched(spec, lambda: create(True))
    if weights.checkpoint and not architecture_only:
        load_state(module, weights.checkpoint, spec)
    return module


def load_timm(spec: Spec, weights: Weights, options: LoadOptions, architecture_only: bool) -> Loaded:
    """timm's model with the data config its validate.py resolves: by default the pretrained config's test size
    and test crop (`use_test_size=True`, the size timm's published rows were measured at), the train config with
    `options.use_train_size` (validate.py's --use-train-size)."""
    timm = require("timm")
    timm_pretrained_cfg(spec)  # an unknown name is refused before anything is built
    create = lambda pretrained: timm.create_model(spec.name, pretrained=pretrained)  # noqa: E731
    module = created(spec, weights, create, architecture_only)
    if getattr(module, "num_classes", NUM_CLASSES) != NUM_CLASSES:
        raise UserError(f"{spec.text} has {module.num_classes} classes, not the {NUM_CLASSES} of ImageNet-1k")
    config = timm.data.resolve_data_config(model=module, use_test_size=not options.use_train_size)
    architecture = (module.pretrained_cfg or {}).get("architecture") or spec.name.split(".")[0]
    return timm_loaded(module, config, spec.name, architecture)


def timm_pretrained_cfg(spec: Spec):
    """timm's pretrained config for `spec.name` (None for an architecture without one); a UserError naming the
    closest names timm knows when it knows neither the architecture nor the tag."""
    timm = require("timm")
    if timm.is_model(spec.name):
        try:
            return timm.models.get_pretrained_cfg(spec.name)
        except RuntimeError:  # "Invalid pretrained tag": the architecture exists, the tag does not
            pass
    raise UserError(f"timm has no model '{spec.name}'{closest_timm_names(spec.name)}")


def closest_timm_names(name: str) -> str:
    """The closest names timm knows (with a tag: its pretrained names) as an error's end, "; did you mean a, b
    or c?"; else where to look."""
    timm = require("timm")
    known = timm.list_models(pretrained=True) if "." in name else timm.list_models()
    close = difflib.get_close_matches(name, known, n=SUGGESTED)
    if not close:
        return f"; see timm.list_models() for the {len(known):,} it has"
    return f"; did you mean {', '.join(close[:-1])}{' or ' if len(close) > 1 else ''}{close[-1]}?"


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
    models = require("torchvision.models")
    chosen = torchvision_weights(spec)
    create = lambda pretrained: models.get_model(spec.name, weights=chosen if pretrained else None)  # noqa: E731
    module = created(spec, weights, create, architecture_only)
    transform = chosen.transforms()
    crop = int(transform.crop_size[0])
    resize = int(transform.resize_size[0])
    return Loaded(
        name=spec.text,  # load() names it by result_name
        backbone=spec.name,
        module=module,
        preprocess=TensorPreprocess(transform),
        param_count=param_count(module),
        img_size=crop,
        crop_pct=round(crop / resize, 3),
        interpolation=transform.interpolation.value,
    )


def torchvision_weights(spec: Spec):
    """The torchvision weights enum member `spec` names (DEFAULT when it names none)."""
    models = require("torchvision.models")
    try:
        enum = models.get_model_weights(spec.name)
    except (ValueError, KeyError) as error:
        raise UserError(f"torchvision has no classification model '{spec.name}'") from error
    try:
        return enum[spec.extra or "DEFAULT"]  # DEFAULT: the enum's alias of its best weights
    except KeyError as error:
        known = ", ".join(member.name for member in enum)
        raise UserError(f"{spec.name} has no weights '{spec.extra}'; it has {known}") from error
