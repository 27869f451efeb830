"""Models of one uint8 stage run as a group, each image decoded once for all of them: the same predictions as each
model run alone, with resume, --force and outputs per model, and the run's decode count in its summary."""

from __future__ import annotations

import pytest
import torch

from eval_data import CONVNEXT, EFFICIENTNET, RANDOM, RESNET, SETTINGS, VIT, Counting, alone, predictions
from imagenet_sketch_tools.cli import main as cli
from imagenet_sketch_tools.evaluation import evaluate, evaluate_models
from imagenet_sketch_tools.evaluation.api import run_summary
from imagenet_sketch_tools.evaluation.batches import Batch, predict_group
from imagenet_sketch_tools.evaluation.groups import group_by_stage, stage_of
from imagenet_sketch_tools.evaluation.models import load
from imagenet_sketch_tools.evaluation.spec import LoadOptions, parse_spec


def test_stages_group_timm_models_by_their_uint8_pixels_not_their_normalisation():
    stages = [stage_of(parse_spec(text), RANDOM, LoadOptions()) for text in (VIT, CONVNEXT, EFFICIENTNET, RESNET)]
    assert stages[0] == ("timm", (3, 160, 160), "bicubic", 0.95, "center")
    assert group_by_stage(stages) == [[0, 1, 2], [3]]  # efficientnet's ImageNet mean/std is applied later
    assert (
        stage_of(parse_spec("torchvision:mobilenet_v3_small"), RANDOM, LoadOptions()) is None
    )  # its own float transform
    assert group_by_stage([None, None, stages[0]]) == [[0], [1], [2]]


def test_two_groups_in_one_run_predict_as_each_model_alone(coded_zip, tmp_path):
    results = evaluate_models([VIT, RESNET, CONVNEXT], str(coded_zip), output=tmp_path / "run", **SETTINGS)
    assert [result.group for result in results] == [0, 1, 0]
    assert [result.decoded for result in results] == [16, 16, 16]  # per group: each image once
    assert run_summary(results) == (
        "3 model(s) run in 2 input group(s): 32 image(s) decoded, 0 read from the input cache"
    )
    for spec, result in zip((VIT, RESNET, CONVNEXT), results):
        assert predictions(result).equals(alone(spec, coded_zip, tmp_path / "alone")), spec
        assert result.computed == 16 and result.folder is not None and (result.folder / "run.json").exists()


def test_a_group_resumes_each_model_from_its_own_saved_batches(coded_zip, tmp_path):
    """The rule: a batch is decoded when any model of the group lacks it, and runs only through the models
    lacking it. Here test_vit was interrupted after 2 of its 4 batches; test_convnext has none."""
    output = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        evaluate(VIT, str(coded_zip), output=output, engine=Counting(stop_after=2), **SETTINGS)
    engine = Counting()
    vit, convnext = evaluate_models([VIT, CONVNEXT], str(coded_zip), output=output, engine=engine, **SETTINGS)
    assert sorted(engine.saved) == [0, 1, 2, 3]  # convnext needed every batch: all decoded once
    assert vit.decoded == 16 and vit.computed == 6 and convnext.computed == 16  # vit ran only batches 2 and 3
    assert predictions(vit).equals(alone(VIT, coded_zip, tmp_path / "alone"))
    assert predictions(convnext).equals(alone(CONVNEXT, coded_zip, tmp_path / "alone"))


def test_a_finished_model_is_read_back_and_only_the_others_run_unless_forced(coded_zip, tmp_path):
    output = tmp_path / "run"
    evaluate(VIT, str(coded_zip), output=output, **SETTINGS)
    vit, convnext = evaluate_models([VIT, CONVNEXT], str(coded_zip), output=output, **SETTINGS)
    assert vit.reused and vit.group is None and convnext.group == 0 and convnext.decoded == 16
    said = run_summary([vit, convnext])
    assert said.endswith("16 image(s) decoded, 0 read from the input cache; 1 already evaluated")
    forced = evaluate_models([VIT, CONVNEXT], str(coded_zip), output=output, force=True, **SETTINGS)
    assert [result.group for result in forced] == [0, 0] and not forced[0].reused
    assert run_summary(forced).startswith("2 model(s) run in 1 input group(s): 16 image(s) decoded")
    assert run_summary(evaluate_models([VIT], str(coded_zip), output=output, **SETTINGS)).startswith("nothing to run")


def test_the_batch_crosses_to_the_device_once_as_uint8_and_normalises_as_the_float_path():
    """What crosses to the model's device is recorded as torch dispatches it: one uint8 tensor for the whole
    group, whatever each model's mean and std; each model's input equals normalising in float32 first."""
    vit, efficientnet = load(VIT, RANDOM), load(EFFICIENTNET, RANDOM)
    pixels = torch.randint(0, 256, (3, 3, 160, 160), dtype=torch.uint8)
    batch = Batch(0, torch.arange(3).numpy(), pixels, [], [])
    crossed = []

    class Transfers(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func is torch.Tensor.to and args and args[0] is pixels:
                crossed.append(args[0].dtype)
            return func(*args, **(kwargs or {}))

    device = torch.device("cpu")
    with Transfers():
        predict_group([vit.module.eval(), efficientnet.module.eval()], [vit.preprocess, efficientnet.preprocess],
                      batch, device, amp=False)  # fmt: skip
    assert crossed == [torch.uint8]
    for preprocess in (vit.preprocess, efficientnet.preprocess):
        mean = torch.tensor([255 * x for x in preprocess.config["mean"]]).view(1, 3, 1, 1)
        std = torch.tensor([255 * x for x in preprocess.config["std"]]).view(1, 3, 1, 1)
        float_first = ((pixels.float() - mean) / std).to(device)
        assert torch.equal(preprocess.normalise(preprocess.to_device(pixels, device)), float_first)


def test_the_command_names_its_groups_and_decodes(coded_zip, tmp_path, capfd):
    args = ["eval", VIT, CONVNEXT, RESNET, "--no-pretrained", "--source", str(coded_zip), "-o", str(tmp_path),
            "--workers", "0"]  # fmt: skip
    assert cli.main(args) == 0
    out = capfd.readouterr().out
    assert "3 model(s) run in 2 input group(s): 32 image(s) decoded, 0 read from the input cache" in out
