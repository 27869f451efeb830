"""The rough edges a new user met (issue 17 §4), each gone: an unreachable hub, a missing or mismatched checkpoint,
flags that exclude each other, a typo'd name (test_eval_models.py), open_clip's prompt embeddings, one naming
rule for rows and folders, a ConvNext processor's geometry, Ray's checks before a cluster starts."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys

import open_clip
import pytest
import timm
import torch
import transformers
from open_clip.zero_shot_classifier import build_zero_shot_classifier
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, SIMPLE_IMAGENET_TEMPLATES
from test_eval_models import eval_cli, run_on_sample, tiny_clip

from eval_data import KNOWN
from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.streams import dropping_lines
from imagenet_sketch_tools.dataset.classes import class_table
from imagenet_sketch_tools.evaluation import RayEngine, RayOptions, clip, evaluate_models, hf, models, outputs
from imagenet_sketch_tools.evaluation.ray_engine import RESTART_NOTICE, check_room
from imagenet_sketch_tools.evaluation.spec import LoadOptions, Weights, parse_spec

ERROR = "imagenet-sketch: error: "


def closed_port() -> int:
    """A loopback port nothing listens on: a connection to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_hub_is_one_whole_line_saying_what_to_do(coded_zip, tmp_path):
    """huggingface_hub would retry each file 5 times with a backoff, logging each retry (20 lines, ~57 s)."""
    env = dict(os.environ, HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}", HF_HUB_OFFLINE="0")
    command = [sys.executable, "-m", "imagenet_sketch_tools.cli", "eval", "timm:resnet18.a1_in1k"]
    command += ["--source", str(coded_zip), "-o", str(tmp_path / "out"), "--workers", "0"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip() and "Generating train split" not in line]
    assert len(lines) == 1 and lines[0].startswith(ERROR), done.stderr
    line = lines[0]
    assert "cannot get the pretrained weights of timm:resnet18.a1_in1k" in line
    assert f"the hub at {env['HF_ENDPOINT']} cannot be reached" in line and "not in the local cache" in line
    assert "--checkpoint FILE" in line and "--no-pretrained" in line and "set HF_ENDPOINT" in line
    assert line.endswith("to a hub mirror you can reach")  # whole, not cut mid-word
    assert "Retrying" not in done.stderr


def test_a_missing_checkpoint_is_not_a_file(tmp_path, capfd):
    out = ["-o", tmp_path / "out"]
    code, _, error = eval_cli(capfd, "timm:test_resnet", "--sample", *out, "--checkpoint", tmp_path / "nope.pth")
    assert code == 1 and error == f"{ERROR}--checkpoint '{tmp_path / 'nope.pth'}' is not a file"


def test_a_checkpoint_of_another_model_names_the_keys_that_do_not_fit(tmp_path, capfd):
    torch.save(timm.create_model("test_vit", pretrained=False).state_dict(), tmp_path / "vit.pth")
    out = ["-o", tmp_path / "out"]
    code, _, error = eval_cli(capfd, "timm:test_resnet", "--sample", *out, "--checkpoint", tmp_path / "vit.pth")
    assert code == 1 and "does not fit timm:test_resnet: " in error
    assert "missing key(s) (conv1.0.weight, " in error and "unexpected key(s) (cls_token, " in error

    torch.save(timm.create_model("test_resnet", num_classes=10).state_dict(), tmp_path / "ten.pth")
    with pytest.raises(UserError, match=r"2 shape mismatch\(es\) \(fc.weight \(10, \d+\) for \(1000, \d+\), fc.bias"):
        models.load("timm:test_resnet", Weights(checkpoint=str(tmp_path / "ten.pth")))


def test_checkpoint_and_no_pretrained_are_a_one_line_error_as_any_other(tmp_path, capfd):
    torch.save(timm.create_model("test_resnet").state_dict(), tmp_path / "r.pth")
    code, out, error = eval_cli(capfd, "timm:test_resnet", "--sample", "-o", tmp_path / "out", "--checkpoint",
                                tmp_path / "r.pth", "--no-pretrained")  # fmt: skip
    assert code == 1 and error.startswith(f"{ERROR}--checkpoint and --no-pretrained exclude each other")
    assert "usage:" not in out


def test_open_clip_random_init_without_a_tag_shows_its_prompt_bar_and_is_cached(tmp_path, capfd, monkeypatch):
    tiny_clip(tmp_path)  # registers the tiny-clip-test architecture
    computed = []
    original = clip.class_embeddings

    def counted(*args, **kwargs):
        computed.append(len(args[3]))  # the templates it ran
        return original(*args, **kwargs)

    monkeypatch.setattr(clip, "class_embeddings", counted)
    common = ["--sample", "-o", tmp_path / "o", "--workers", "0", "--limit", "4"]
    code, out, err = eval_cli(capfd, "open_clip:tiny-clip-test", "--no-pretrained", *common)
    assert code == 0 and out.startswith("open_clip:tiny-clip-test-random-init: top-1 ")
    assert "prompt embeddings (80 per class)" in err and "1000/1000" in err
    assert computed == [80] and len(list(clip.cache_folder().glob("eval/clip/*.pt"))) == 1
    code, _, err = eval_cli(capfd, "open_clip:tiny-clip-test", "--no-pretrained", *common, "--force")
    assert code == 0 and computed == [80] and "prompt embeddings" not in err  # the seeded init's, from the cache


def test_open_clip_simple_templates_are_open_clips_seven(tmp_path):
    model, weights = tiny_clip(tmp_path)
    loaded = models.load(f"open_clip:tiny-clip-test:{weights}", options=LoadOptions(templates="simple"))
    assert clip.templates("simple") == tuple(template("{}") for template in SIMPLE_IMAGENET_TEMPLATES)
    tokenizer = open_clip.get_tokenizer("tiny-clip-test")
    some = list(IMAGENET_CLASSNAMES[100:110])
    theirs = build_zero_shot_classifier(model.eval(), tokenizer, some, SIMPLE_IMAGENET_TEMPLATES)
    assert torch.allclose(loaded.module.classifier[:, 100:110], theirs, atol=1e-6)
    assert loaded.notes == ["7 prompt templates (simple)"]
    with pytest.raises(UserError, match="--templates 'many' is not one of openai, simple"):
        run_on_sample(KNOWN, tmp_path, templates="many")


def test_one_naming_rule_for_rows_and_folders(tmp_path):
    """Each results.csv row's folder is its name made a folder name, whatever the family and weights."""
    torch.save(timm.create_model("test_resnet").state_dict(), tmp_path / "r.pth")
    no_weights = Weights(pretrained=False)
    output = tmp_path / "out"
    evaluate_models(["timm:test_resnet", "torchvision:mobilenet_v3_small"], sample_source(), weights=no_weights,
                    output=output, workers=0, limit=2)  # fmt: skip
    evaluate_models(["timm:test_resnet"], sample_source(), weights=Weights(checkpoint=str(tmp_path / "r.pth")),
                    output=output, workers=0, limit=2)  # fmt: skip
    evaluate_models([KNOWN], sample_source(), output=output, workers=0, limit=2)
    with open(output / "results.csv", newline="") as file:
        names = sorted(row["model"] for row in csv.DictReader(file))
    assert names == [KNOWN, "test_resnet", "test_resnet-random-init", "torchvision:mobilenet_v3_small-random-init"]
    for name in names:
        assert json.loads((output / outputs.folder_name(name) / "run.json").read_text())["model"] == name
    assert (
        outputs.folder_name("torchvision:mobilenet_v3_small-random-init")
        == "torchvision_mobilenet_v3_small-random-init"
    )
    # the library's resolved weights name the row, known without loading (no download here)
    assert models.result_name(parse_spec("torchvision:resnet18"), Weights()) == "torchvision:resnet18:IMAGENET1K_V1"
    assert models.result_name(parse_spec("timm:resnet18"), Weights()) == "resnet18.a1_in1k"


def sample_source():
    from imagenet_sketch_tools.dataset.sample import sample_archive

    return sample_archive()


def tiny_convnext(directory):
    torch.manual_seed(6)
    names = list(class_table()[1])
    config = transformers.ConvNextConfig(
        num_channels=3, hidden_sizes=[8, 8, 8, 8], depths=[1, 1, 1, 1], num_labels=len(names),
        id2label=dict(enumerate(names)), label2id={name: i for i, name in enumerate(names)},
    )  # fmt: skip
    transformers.ConvNextForImageClassification(config).save_pretrained(directory)
    # facebook/convnext-tiny-224's processor: shortest edge 224, crop_pct 0.875, no do_center_crop
    processor = transformers.ConvNextImageProcessor(size={"shortest_edge": 224}, crop_pct=0.875)
    processor.save_pretrained(directory)
    return directory


def test_a_convnext_processor_is_reported_at_the_crop_it_makes(tmp_path):
    directory = tiny_convnext(tmp_path / "convnext")
    processor = transformers.AutoImageProcessor.from_pretrained(directory)
    assert not getattr(processor, "do_center_crop", False)
    from PIL import Image

    pixels = processor(images=Image.new("RGB", (400, 300)), return_tensors="pt")["pixel_values"]
    assert tuple(pixels.shape[-2:]) == (224, 224)  # resized to 256 on the short side, then cropped
    result = run_on_sample(f"hf:{directory}", tmp_path, limit=2)
    run = json.loads((result.folder / "run.json").read_text())
    assert (run["img_size"], run["crop_pct"]) == (224, 0.875)
    processor.size = {"shortest_edge": 384}  # ConvNext warps to 384 and above: no crop
    assert hf.processor_geometry(processor) == (384, 1.0)


@pytest.mark.parametrize(
    ("actors", "cpus", "said"),
    [
        (3, 2, "use --actors 1 or fewer"),  # one CPU reads, one actor on the other
        (2, 2, "use --actors 1 or fewer"),
        (4, 4, "use --actors 3 or fewer"),
        (1, 1, "no actor fits beside the reading"),  # not "use --actors 1", which does not fit either
    ],
)
def test_the_actors_suggested_are_the_most_that_fit(actors, cpus, said):
    with pytest.raises(UserError, match=f"--actors {actors} with 1 CPU each .* of {cpus} CPUs; {said}, or use"):
        check_room(RayOptions(actors=actors), cpus)
    if "use --actors" in said:
        check_room(RayOptions(actors=int(said.split()[2])), cpus)  # the suggestion is accepted


def test_ray_refuses_a_pool_too_big_before_starting_a_cluster(sample_package, tmp_path):
    import ray

    engine = RayEngine(RayOptions(actors=3, init={"num_cpus": 2}))
    with pytest.raises(UserError, match="on a cluster of 2 CPUs; use --actors 1 or fewer"):
        evaluate_models(["python:ray_models:resnet"], str(sample_package), output=tmp_path, engine=engine)
    assert not ray.is_initialized() and not (tmp_path / "results.csv").exists()


def test_ray_starts_no_cluster_when_every_model_is_finished(sample_package, tmp_path):
    import ray

    local = evaluate_models(["python:ray_models:resnet"], str(sample_package), output=tmp_path, workers=0)
    again = evaluate_models(["python:ray_models:resnet"], str(sample_package), output=tmp_path, engine=RayEngine())
    assert again[0].reused and again[0].scores == local[0].scores
    assert not ray.is_initialized()


def test_dropped_lines_are_only_the_marked_ones(capfd):
    with dropping_lines(RESTART_NOTICE):
        os.write(2, b"before\n")
        os.write(2, b"[2026 E 1 1] core_worker.cc:2465: Actor with class name: 'MapWorker' and ID: 'ab' has "
                    b"constructor arguments in the object store and max_restarts > 0. If ...\n")  # fmt: skip
        os.write(2, b"bar 50%\rbar 100%\r")  # a progress bar passes as it comes
        os.write(2, b"[2026 E 1 1] core_worker.cc:100: a real error\n")
    assert capfd.readouterr().err == "before\nbar 50%\rbar 100%\r[2026 E 1 1] core_worker.cc:100: a real error\n"
