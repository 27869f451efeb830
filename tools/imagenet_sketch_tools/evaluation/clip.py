"""open_clip zero-shot (`open_clip:ARCH[:PRETRAINED]`): the image tower scored against one embedding per class,
the mean of the normalised text embeddings of CLIP's 80 prompt templates (or, with templates "simple", open_clip's
7 `SIMPLE_IMAGENET_TEMPLATES`) filled with the curated class names (shipped as data files: our `crane` / `crane2`
table names are not prompt text), renormalised, as open_clip's `build_zero_shot_classifier` computes it. Class
embeddings are cached per model and template set, a seeded random init's too.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
from importlib import resources

from tqdm.auto import tqdm

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.files import cache_folder, write_atomically
from imagenet_sketch_tools.dataset.classes import class_table
from imagenet_sketch_tools.evaluation.fetching import fetched
from imagenet_sketch_tools.evaluation.preprocess import TensorPreprocess
from imagenet_sketch_tools.evaluation.spec import TEMPLATES, Loaded, Spec, Weights, param_count, require, short

NAMES_FILE = "imagenet1k_clip_names.tsv"
TEMPLATES_FILE = "imagenet1k_clip_templates.txt"
LOGIT_SCALE = 100.0  # open_clip's zero-shot evaluation multiplies cosine similarities by 100, as CLIP did
CLASSES_PER_STEP = 10  # classes whose prompts go through the text tower at once (as open_clip's default)


def _package_text(name: str) -> str:
    # Beside the class table: the prompt names are the same 1000 classes, in the same order.
    return resources.files("imagenet_sketch_tools.dataset").joinpath(name).read_text(encoding="utf-8")


@functools.cache
def prompt_names() -> tuple[str, ...]:
    """The curated class names CLIP's authors wrote for prompts, in label order (checked against our wnids)."""
    rows = [line.split("\t") for line in _package_text(NAMES_FILE).splitlines()[1:] if line]
    if [wnid for wnid, _ in rows] != list(class_table()[0]):
        raise RuntimeError(f"{NAMES_FILE} is not in the class table's order")
    return tuple(name for _, name in rows)


def templates(kind: str = "openai") -> tuple[str, ...]:
    """The prompt templates, `{}` standing for the class name: CLIP's 80 ImageNet ones ("openai"), or the
    7-template subset CLIP's authors also published, as open_clip ships it ("simple")."""
    if kind == "simple":
        open_clip = require("open_clip")
        return tuple(template("{}") for template in open_clip.SIMPLE_IMAGENET_TEMPLATES)
    if kind != "openai":
        raise UserError(f"--templates {kind!r} is not one of {', '.join(TEMPLATES)}")
    return tuple(line for line in _package_text(TEMPLATES_FILE).splitlines() if line)


def class_embeddings(clip, tokenizer, names, prompts, device="cpu", progress: bool = False):
    """(embed_dim, classes): per class, the mean of its normalised prompt embeddings, normalised again."""
    import torch  # the eval extra: reached only once open_clip (which needs it) is loaded
    import torch.nn.functional as F  # as torch above

    columns = []
    # 1000 classes x 80 prompts through the text tower take minutes on a CPU: say so
    bar = tqdm(
        total=len(names), desc=f"prompt embeddings ({len(prompts)} per class)", unit="class", disable=not progress
    )
    with torch.inference_mode(), bar:
        for start in range(0, len(names), CLASSES_PER_STEP):
            chunk = names[start : start + CLASSES_PER_STEP]
            texts = tokenizer([template.format(name) for name in chunk for template in prompts]).to(device)
            embedded = F.normalize(clip.encode_text(texts).float(), dim=-1)
            mean = embedded.reshape(len(chunk), len(prompts), -1).mean(dim=1)
            columns.append(F.normalize(mean, dim=-1).T)
            bar.update(len(chunk))
    return torch.cat(columns, dim=1)


def cache_key(arch: str, weights_id: str, prompts: tuple[str, ...]) -> str:
    open_clip = require("open_clip")
    material = "\n".join([arch, weights_id, open_clip.__version__, *prompt_names(), *prompts])
    return hashlib.sha256(material.encode()).hexdigest()[:24]


def weights_identity(pretrained: str | None) -> str:
    """A cache identity for the weights: a local file by path, size and time (a retrained file is new); a tag; a
    random init by the torch version that drew it (models.load seeds it, so it is the same every run)."""
    if pretrained and os.path.isfile(pretrained):
        status = os.stat(pretrained)
        return f"file:{os.path.abspath(pretrained)}:{status.st_size}:{status.st_mtime_ns}"
    if pretrained is None:
        torch = require("torch")
        return f"random-init:seed0:torch{torch.__version__}"
    return f"tag:{pretrained}"


def cached_class_embeddings(clip, tokenizer, arch: str, pretrained: str | None, kind: str, progress: bool = False):
    """Class embeddings from the cache, else computed once and stored (80,000 prompts are slow on a CPU)."""
    import torch  # the eval extra: reached only once open_clip (which needs it) is loaded

    prompts = templates(kind)
    path = cache_folder() / "eval" / "clip" / f"{cache_key(arch, weights_identity(pretrained), prompts)}.pt"
    if path.exists():
        return torch.load(path, map_location="cpu", weights_only=True)
    weights = class_embeddings(clip, tokenizer, prompt_names(), prompts, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    write_atomically(path, buffer.getvalue())
    return weights


def zero_shot_module(clip, classifier):
    import torch  # the eval extra: reached only once open_clip (which needs it) is loaded

    class ZeroShot(torch.nn.Module):
        """Image features, normalised, against the class embeddings: (N, 1000) logits in label order."""

        def __init__(self):
            super().__init__()
            self.clip = clip
            self.register_buffer("classifier", classifier)

        def forward(self, pixels):
            features = torch.nn.functional.normalize(self.clip.encode_image(pixels).float(), dim=-1)
            return LOGIT_SCALE * features @ self.get_buffer("classifier")

    return ZeroShot()


def load_open_clip(
    spec: Spec, weights: Weights, kind: str = "openai", architecture_only: bool = False, progress: bool = False
) -> Loaded:
    open_clip = require("open_clip")
    arch = spec.name
    if arch not in open_clip.list_models():
        raise UserError(f"open_clip has no model '{arch}'; see open_clip.list_models()")
    if weights.from_library and not spec.extra:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
        raise UserError(
            f"{spec.text} names no pretrained weights: give a tag as in open_clip:{arch}:TAG (it has {tags}), "
            "or pass --checkpoint FILE or --no-pretrained"
        )
    pretrained = None if architecture_only else weights.checkpoint or (spec.extra if weights.pretrained else None)
    create = lambda: open_clip.create_model_and_transforms(arch, pretrained=pretrained)  # noqa: E731
    if weights.from_library and not architecture_only:
        clip, _, preprocess = fetched(spec, create)
    else:
        try:
            clip, _, preprocess = create()
        except Exception as error:
            if not weights.checkpoint:
                raise
            raise UserError(
                f"--checkpoint '{weights.checkpoint}' does not fit {spec.text}: {short(str(error))}"
            ) from error
    clip.eval()
    tokenizer = open_clip.get_tokenizer(arch)
    # the architecture alone needs no class embeddings: its name, size and input geometry are the image tower's
    classifier = None
    if not architecture_only:
        classifier = cached_class_embeddings(clip, tokenizer, arch, pretrained, kind, progress)
    config = open_clip.get_model_preprocess_cfg(clip)
    size = config.get("size", 224)
    size = size[-1] if isinstance(size, (tuple, list)) else size
    return Loaded(
        name=spec.text,  # load() names it by models.result_name
        backbone=arch,
        module=clip if classifier is None else zero_shot_module(clip, classifier),
        preprocess=TensorPreprocess(preprocess),
        param_count=param_count(clip),
        img_size=int(size),
        crop_pct=1.0,  # open_clip resizes the short side to the input size and center-crops it
        interpolation=str(config.get("interpolation", "bicubic")),
        notes=[f"{len(templates(kind))} prompt templates ({kind})"] if kind != "openai" else [],
    )
