"""Options are checked once, for the command line and the Python API alike, before anything is read or any
cluster is joined: these tests need no Ray cluster (and the last one no Ray at all)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from eval_data import KNOWN
from imagenet_sketch_tools.cli import main as cli
from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.evaluation import RayEngine, RayOptions, Weights, evaluate, evaluate_models
from known_answer_model import KnownAnswers

MODEL = "python:ray_models:resnet"


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--actors", "2"], "--actors need(s) --engine ray"),
        (["--address", "auto", "--gpus-per-actor", "1"], "--address, --gpus-per-actor need(s) --engine ray"),
        (["--engine", "ray", "--workers", "2"], "--workers is for --engine local"),
        (["--engine", "ray", "--actors", "0"], "--actors must be at least 1, not 0"),
        (["--workers", "-1"], "--workers must be 0 or more, not -1"),
        (["--engine", "ray", "--input-cache", "c"], "--input-cache is for --engine local"),
        (["--engine", "ray", "--models-per-actor", "-1"], "--models-per-actor must be 0 (a whole group) or more"),
        (["--models-per-actor", "2"], "--models-per-actor need(s) --engine ray"),
        (["--input-cache", __file__], "is a file; give a folder (created if missing)"),
    ],
)
def test_engine_flags_that_do_not_fit_are_one_line_errors(sample_package, tmp_path, capfd, flags, error):
    assert cli.main(["eval", MODEL, "--source", str(sample_package), "-o", str(tmp_path), *flags]) == 1
    err = capfd.readouterr().err.strip()
    assert err.count("\n") == 0 and error in err


@pytest.mark.parametrize(
    ("engine", "settings", "error"),
    [
        (RayEngine(), {"workers": 2}, "--workers is for --engine local"),
        (RayEngine(RayOptions(actors=0)), {}, "--actors must be at least 1, not 0"),
        (None, {"batch_size": 0}, "--batch-size must be at least 1, not 0"),
        (None, {"device": "tpu"}, "--device 'tpu' is not one of auto, cpu, cuda, mps"),
        (None, {"weights": Weights(checkpoint="nowhere.pth")}, "--checkpoint 'nowhere.pth' is not a file"),
    ],
)
def test_the_api_refuses_what_the_command_refuses_with_the_same_words(sample_package, tmp_path, engine, settings,
                                                                      error):  # fmt: skip
    with pytest.raises(UserError, match=error):
        evaluate_models([MODEL], str(sample_package), output=tmp_path / "out", engine=engine, **settings)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_the_ray_engine_takes_specs_and_packages_only(sample_package, coded_zip):
    with pytest.raises(UserError, match="--engine ray takes model specs"):
        evaluate(KnownAnswers(), str(sample_package), engine=RayEngine())
    with pytest.raises(UserError, match="--engine ray reads an exported hub package"):
        evaluate(KNOWN, str(coded_zip), engine=RayEngine())


def test_without_ray_the_error_is_one_line_naming_the_extra(sample_package, tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None\n"  # `import ray` now fails as if Ray were not installed
        "from imagenet_sketch_tools.cli import main as cli\n"
        f"sys.exit(cli.main(['eval', {MODEL!r}, '--source', {str(sample_package)!r}, "
        f"'-o', {str(tmp_path)!r}, '--engine', 'ray']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "imagenet-sketch: error: --engine ray needs Ray Data, which is not installed; "
        "run pip install 'imagenet-sketch[ray]'"
    )
