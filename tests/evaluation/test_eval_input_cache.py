"""`--input-cache`: a group's uint8 batches kept across runs, read back instead of decoding (the decode count of
the run's summary says so), for the same source and stage only, never past a cut or damaged file."""

from __future__ import annotations

from eval_data import CODED, CONVNEXT, EFFICIENTNET, RESNET, SETTINGS, VIT, alone, coded_zip_at, predictions
from imagenet_sketch_tools.cli import main as cli
from imagenet_sketch_tools.evaluation import evaluate, evaluate_models
from imagenet_sketch_tools.evaluation.api import run_summary


def cache_files(cache):
    return sorted(cache.glob("*/batch-*.npz"))


def test_a_finished_cache_is_read_by_a_later_run_and_other_models_of_the_stage(coded_zip, tmp_path):
    cache = tmp_path / "cache"
    first = evaluate_models([VIT, CONVNEXT], str(coded_zip), output=tmp_path / "a", input_cache=cache, **SETTINGS)
    assert [(r.decoded, r.cached) for r in first] == [(16, 0), (16, 0)]
    assert len(cache_files(cache)) == 4 and len(list(cache.glob("*/manifest.json"))) == 1

    later = evaluate_models(
        [VIT, CONVNEXT, EFFICIENTNET], str(coded_zip), output=tmp_path / "b", input_cache=cache, **SETTINGS
    )
    assert run_summary(later) == "3 model(s) run in 1 input group(s): 0 image(s) decoded, 16 read from the input cache"
    for spec, result in zip((VIT, CONVNEXT, EFFICIENTNET), later):
        assert predictions(result).equals(alone(spec, coded_zip, tmp_path / "alone")), spec


def test_a_cache_of_another_source_or_stage_is_not_used(coded_zip, tmp_path):
    cache = tmp_path / "cache"
    evaluate(VIT, str(coded_zip), input_cache=cache, **SETTINGS)
    other_stage = evaluate(RESNET, str(coded_zip), input_cache=cache, **SETTINGS)
    assert (other_stage.decoded, other_stage.cached) == (16, 0)
    other_source = coded_zip_at(tmp_path / "other.zip", {**CODED, "n01443537": [2, 0]})
    elsewhere = evaluate(VIT, str(other_source), input_cache=cache, **SETTINGS)
    assert (elsewhere.decoded, elsewhere.cached) == (17, 0)
    assert len({path.parent for path in cache_files(cache)}) == 3  # one cache per (source, stage)
    again = evaluate(VIT, str(coded_zip), input_cache=cache, **SETTINGS)
    assert (again.decoded, again.cached) == (0, 16)


def test_a_cut_or_missing_batch_file_is_decoded_again_with_one_line(coded_zip, tmp_path, capfd):
    cache = tmp_path / "cache"
    evaluate(VIT, str(coded_zip), input_cache=cache, **SETTINGS)
    files = cache_files(cache)
    files[1].write_bytes(files[1].read_bytes()[:-100])  # cut: a batch of 5 images
    files[3].unlink()  # missing: the last batch, of 1 image
    capfd.readouterr()
    result = evaluate(VIT, str(coded_zip), input_cache=cache, **SETTINGS)
    assert (result.decoded, result.cached) == (6, 10)
    err = capfd.readouterr().err.splitlines()
    assert any(f"{files[1]} is cut or damaged" in line for line in err)
    assert any(f"{files[3]} is missing; decoding its images again" in line for line in err)
    assert sum(line.startswith("input cache:") for line in err) == 2
    assert files[3].exists() and (evaluate(VIT, str(coded_zip), input_cache=cache, **SETTINGS).decoded == 0)
    assert predictions_equal(result, coded_zip, tmp_path)


def predictions_equal(result, coded_zip, tmp_path) -> bool:
    return result.predictions.equals(alone(VIT, coded_zip, tmp_path / "whole"))


def test_the_command_with_a_finished_cache_decodes_nothing(coded_zip, tmp_path, capfd):
    args = ["eval", VIT, CONVNEXT, EFFICIENTNET, "--no-pretrained", "--source", str(coded_zip), "-o", str(tmp_path),
            "--input-cache", str(tmp_path / "cache"), "--workers", "2", "--batch-size", "5"]  # fmt: skip
    assert cli.main(args) == 0  # the loader's worker processes write the batch files
    said = "3 model(s) run in 1 input group(s): {} image(s) decoded, {} read from the input cache"
    assert said.format(16, 0) in capfd.readouterr().out
    assert cli.main([*args, "--force"]) == 0
    assert said.format(0, 16) in capfd.readouterr().out
