"""Each model family loads from local files (no weights can be downloaded here) and runs on the sample, with
its own library's preprocessing; bad specs, unreachable weights and missing extras are one-line errors."""

from __future__ import annotations

import json
import sys

import open_clip
import pytest
import timm
import torch
import torchvision
import transformers
from safetensors.torch import save_file

from eval_data import KNOWN
from imagenet_sketch_tools.cli import main as cli
from imagenet_sketch_tools.common.images import decode
from imagenet_sketch_tools.dataset.classes import class_table
from imagenet_sketch_tools.dataset.sample import sample_archive, sketch_jpeg
from imagenet_sketch_tools.evaluation import clip, evaluate, hf, models, spec

TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 16, "patch_size": 8, "head_width": 8},
    # a short context keeps the 80,000 prompts of the class embeddings quick on a CPU
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
}


def eval_cli(capfd, *args) -> tuple[int, str, str]:
    code = cli.main(["eval", *map(str, args)])
    out, err = capfd.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("imagenet-sketch: error: ")]
    assert len(errors) == (code == 1)
    return code, out, errors[0] if errors else err


def run_on_sample(model, tmp_path, weights=None, **settings):
    output = tmp_path / "out"
    return evaluate(model, sample_archive(), weights=weights, output=output, workers=0, progress=False, **settings)


def test_timm_checkpoint_as_safetensors(tmp_path):
    torch.manual_seed(1)
    save_file(timm.create_model("test_vit", pretrained=False).state_dict(), tmp_path / "vit.safetensors")
    result = run_on_sample("timm:test_vit", tmp_path, spec.Weights(checkpoint=str(tmp_path / "vit.safetensors")))
    assert result.model == "test_vit" and result.scores.images == 31
    run = json.loads((result.folder / "run.json").read_text())
    assert (run["img_size"], run["interpolation"]) == (160, "bicubic")


def test_torchvision_with_its_weights_transform(tmp_path):
    torch.manual_seed(2)
    model = torchvision.models.get_model("mobilenet_v3_small", weights=None)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "mnv3.pth")  # a training script's layout
    weights = spec.Weights(checkpoint=str(tmp_path / "mnv3.pth"))
    loaded = models.load("torchvision:mobilenet_v3_small", weights)
    image = decode(sketch_jpeg(5, "L", (150, 120)))[0]
    expected = torchvision.models.MobileNet_V3_Small_Weights.DEFAULT.transforms()(image.convert("RGB"))
    assert torch.equal(loaded.preprocess(image), expected)
    assert (loaded.img_size, loaded.crop_pct, loaded.interpolation) == (224, 0.875, "bilinear")
    assert run_on_sample("torchvision:mobilenet_v3_small", tmp_path, weights, limit=8).scores.images == 8


def tiny_vit(directory, labels: list[str]):
    torch.manual_seed(3)
    config = transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )  # fmt: skip
    transformers.ViTForImageClassification(config).save_pretrained(directory)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory


def test_transformers_local_folder_with_imagenet_labels(tmp_path):
    directory = tiny_vit(tmp_path / "vit", list(class_table()[1]))
    result = run_on_sample(f"hf:{directory}", tmp_path)
    assert result.scores.images == 31 and result.backbone == "vit"
    run = json.loads((result.folder / "run.json").read_text())
    assert (run["img_size"], run["crop_pct"]) == (32, 1.0)


def test_transformers_background_class_is_dropped_and_foreign_labels_refused(tmp_path, capfd):
    names = list(class_table()[1])
    directory = tiny_vit(tmp_path / "bg", ["background", *names])
    loaded = models.load(f"hf:{directory}")
    assert loaded.notes == ["background class dropped"]
    pixels = torch.zeros(2, 3, 32, 32)
    with torch.inference_mode():
        full = loaded.module.model(pixel_values=pixels).logits
        assert torch.equal(loaded.module(pixels), full[:, 1:])
    # crane2 in our table is 'crane' in everyone else's: still ImageNet-1k order
    assert hf.label_offset({i: name.replace("crane2", "crane") for i, name in enumerate(names)}) == 0
    cats = tiny_vit(tmp_path / "cats", [f"cat {i}" for i in range(1000)])
    code, _, error = eval_cli(capfd, f"hf:{cats}", "--sample", "-o", tmp_path / "o")
    assert code == 1 and "class 0 is 'cat 0', not ImageNet-1k's 'tench, Tinca tinca'" in error
    ten = tiny_vit(tmp_path / "ten", names[:10])
    code, _, error = eval_cli(capfd, f"hf:{ten}", "--sample", "-o", tmp_path / "o")
    assert code == 1 and "the model has 10 classes" in error


def tiny_clip(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "tiny-clip-test.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(tmp_path / "configs")
    torch.manual_seed(4)
    model = open_clip.create_model("tiny-clip-test")
    torch.save(model.state_dict(), tmp_path / "tiny-clip.pt")
    return model, str(tmp_path / "tiny-clip.pt")


def test_open_clip_zero_shot_equals_open_clips_classifier_and_is_cached(tmp_path):
    model, weights = tiny_clip(tmp_path)
    assert len(clip.templates()) == 80 and clip.prompt_names()[517] == "construction crane"
    from open_clip.zero_shot_classifier import build_zero_shot_classifier
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES

    assert clip.prompt_names() == tuple(IMAGENET_CLASSNAMES)
    assert [template.format("x") for template in clip.templates()] == [t("x") for t in OPENAI_IMAGENET_TEMPLATES]
    tokenizer = open_clip.get_tokenizer("tiny-clip-test")
    some = list(IMAGENET_CLASSNAMES[510:530])  # open_clip's own arithmetic, on a few classes (it is slow)
    theirs = build_zero_shot_classifier(model.eval(), tokenizer, some, OPENAI_IMAGENET_TEMPLATES)
    assert torch.allclose(clip.class_embeddings(model, tokenizer, some, clip.templates()), theirs, atol=1e-6)

    loaded = models.load(f"open_clip:tiny-clip-test:{weights}")
    assert loaded.module.classifier.shape == (16, 1000)
    assert torch.allclose(loaded.module.classifier[:, 510:530], theirs, atol=1e-6)
    assert len(list(clip.cache_folder().glob("eval/clip/*.pt"))) == 1
    again = models.load(f"open_clip:tiny-clip-test:{weights}")  # from the cache: same embeddings
    assert torch.equal(again.module.classifier, loaded.module.classifier)
    result = run_on_sample(loaded, tmp_path, limit=6)
    assert result.scores.images == 6
    assert (result.model, result.backbone) == (f"open_clip:tiny-clip-test:{weights}", "tiny-clip-test")


def test_python_model_without_a_data_config_gets_timms_224_defaults(tmp_path):
    result = run_on_sample("python:known_answer_model:bare_model", tmp_path, limit=3)
    run = json.loads((result.folder / "run.json").read_text())
    assert (run["img_size"], run["crop_pct"], run["interpolation"]) == (224, 0.875, "bicubic")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("pytorch:resnet50", "unknown library 'pytorch'; use one of timm, torchvision, hf, open_clip, python"),
        (
            "open_clip:ViT-B-32",
            "open_clip:ViT-B-32 names no pretrained weights: give a tag as in open_clip:ViT-B-32:TAG",
        ),
        ("python:known_answer_model", "needs the form python:MODULE:FUNCTION"),
        ("timm:no_such_net", "timm has no model 'no_such_net'"),
        ("timm:resnet81", "timm has no model 'resnet81'; did you mean resnet18, "),
        ("timm:resnet18.a1_in1", "timm has no model 'resnet18.a1_in1'; did you mean resnet18.a1_in1k, "),
        ("torchvision:resnet18:NOPE", "resnet18 has no weights 'NOPE'; it has IMAGENET1K_V1"),
        ("python:known_answer_model:missing", "'known_answer_model' has no function 'missing'"),
        ("python:no_such_module_here:f", "cannot import 'no_such_module_here'"),
    ],
)
def test_bad_specs_are_one_line_errors(tmp_path, capfd, spec, message):
    code, _, error = eval_cli(capfd, spec, "--sample", "-o", tmp_path / "o", "--workers", "0")
    assert code == 1 and message in error


def test_unreachable_weights_say_to_pass_a_checkpoint_or_no_pretrained(tmp_path, capfd, monkeypatch):
    import huggingface_hub.constants

    # offline as the fixtures mean it (huggingface_hub read HF_HUB_OFFLINE when first imported)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    code, _, error = eval_cli(capfd, "timm:test_resnet", "--sample", "-o", tmp_path / "o")
    assert code == 1
    assert "cannot get the pretrained weights of timm:test_resnet" in error
    assert "pass --checkpoint FILE (a state dict or .safetensors) or --no-pretrained" in error


@pytest.mark.parametrize("module, extra", [("open_clip", "clip"), ("transformers", "transformers"), ("timm", "eval")])
def test_a_missing_extra_is_named(tmp_path, capfd, monkeypatch, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # what an install without that extra looks like to import
    spec = {"open_clip": "open_clip:RN50:openai", "transformers": "hf:org/model", "timm": KNOWN}[module]
    code, _, error = eval_cli(capfd, spec, "--sample", "-o", tmp_path / "o", "--workers", "0")
    assert code == 1 and f"{module} is not installed; run pip install 'imagenet-sketch[{extra}]'" in error


def test_the_base_install_imports_no_torch():
    import subprocess

    code = "import sys, imagenet_sketch_tools.cli.main as c; c.build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_amp_runs_on_the_cpu_and_a_missing_device_is_a_one_line_error(tmp_path, capfd):
    torch.manual_seed(5)
    torch.save(timm.create_model("test_resnet", pretrained=False).state_dict(), tmp_path / "r.pth")
    common = ["--sample", "-o", tmp_path / "o", "--workers", "0", "--checkpoint", tmp_path / "r.pth", "--limit", "4"]
    code, out, _ = eval_cli(capfd, "timm:test_resnet", *common, "--amp")
    assert code == 0 and "on 4 images" in out
    if not torch.cuda.is_available():
        code, _, error = eval_cli(capfd, "timm:test_resnet", *common, "--device", "cuda", "--force")
        assert code == 1 and "--device cuda: torch finds no cuda device here; use --device cpu or auto" in error
