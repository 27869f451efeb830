"""The Python API: nothing written without an output folder, torch modules named so that two never share a row,
a module's own data config, and a driver that learns a model's name and size without its weights. The README's
Python example runs as shown."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import timm
import torch
import torchvision

from eval_data import KNOWN
from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.evaluation import Weights, evaluate, evaluate_models
from imagenet_sketch_tools.evaluation.models import describe, load
from imagenet_sketch_tools.evaluation.spec import parse_spec
from known_answer_model import DATA_CONFIG, KnownAnswers

README = Path(__file__).parents[2] / "README.md"


def test_without_output_nothing_is_written_and_the_result_is_in_memory(coded_zip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    result = evaluate(KNOWN, str(coded_zip), workers=0, batch_size=5)
    assert sorted(tmp_path.rglob("*")) == before
    assert result.folder is None and result.scores.top1 == 31.25 and result.predictions.num_rows == 16
    assert result.summary().endswith("images/s")


def test_two_modules_of_one_class_never_share_a_name(coded_zip, tmp_path):
    first, second = KnownAnswers(), KnownAnswers()
    with torch.no_grad():
        second.unused.fill_(1.0)  # other weights, the same answers
    results = evaluate_models([first, second, first], str(coded_zip), output=tmp_path, workers=0)
    names = [result.model for result in results]
    assert all(re.fullmatch(r"KnownAnswers-[0-9a-f]{8}", name) for name in names)
    assert names[0] != names[1] and names[0] == names[2] and results[2].reused  # the same module is the same
    with open(tmp_path / "results.csv", newline="") as file:
        assert sorted(row["model"] for row in csv.DictReader(file)) == sorted(names[:2])


def test_a_module_takes_a_name_and_a_data_config(coded_zip, tmp_path):
    result = evaluate(KnownAnswers(), str(coded_zip), name="mine", data_config=DATA_CONFIG, output=tmp_path,
                      workers=0)  # fmt: skip
    assert result.model == "mine" and result.folder == tmp_path / "mine" and result.scores.top1 == 31.25
    run = json.loads((tmp_path / "mine" / "run.json").read_text())
    assert (run["img_size"], run["interpolation"], run["backbone"]) == (32, "bilinear", "KnownAnswers")
    with pytest.raises(UserError, match="unknown data config keys \\['size'\\]"):
        evaluate(KnownAnswers(), str(coded_zip), data_config={"size": 3})
    with pytest.raises(UserError, match="name= and data_config= are for a torch module"):
        evaluate(KNOWN, str(coded_zip), name="x")


@pytest.mark.parametrize("text", ["timm:test_resnet", "torchvision:mobilenet_v3_small", KNOWN])
def test_a_model_is_described_from_its_architecture_without_reading_its_weights(tmp_path, text):
    spec = parse_spec(text)
    torch.manual_seed(0)
    if spec.family == "timm":
        module = timm.create_model(spec.name, pretrained=False)
    elif spec.family == "torchvision":
        module = torchvision.models.get_model(spec.name, weights=None)
    else:
        module = KnownAnswers()
    checkpoint = tmp_path / "weights.pth"
    torch.save(module.state_dict(), checkpoint)
    weights = Weights(checkpoint=str(checkpoint))
    described = describe(spec, weights)
    assert described == load(spec, weights).description()
    assert describe(spec, Weights(pretrained=False)) == load(spec, Weights(pretrained=False)).description()
    checkpoint.write_bytes(b"not a state dict")  # describe never opens it; load does, and refuses it
    assert describe(spec, weights) == described
    with pytest.raises(UserError, match="is not a state dict torch can read safely"):
        load(spec, weights)


def test_the_readme_python_example_runs_as_shown(tmp_path, monkeypatch, capsys):
    section = README.read_text(encoding="utf-8").split("## Evaluate", 1)[1].split("\n## ", 1)[0]
    [example] = re.findall(r"```python\n(.*?)```", section, re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, str(README), "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("resnet18-random-init: top-1 ") and "on 31 images of 6 classes" in lines[0]
    assert lines[1].endswith(" 31") and lines[2] == "eval/my-resnet18 160"
    assert sorted(path.name for path in (tmp_path / "eval").iterdir()) == [
        "leaderboard.md",
        "my-resnet18",
        "results.csv",
    ]
