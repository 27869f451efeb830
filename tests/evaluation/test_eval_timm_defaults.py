"""timm's defaults: a timm model runs at the data config timm's validate.py resolves by default (the pretrained
config's test size and crop), at the train config with --use-train-size, and is compared with timm's published
row of the same model at the same size (issue 17 §1-3). resnet18.a1_in1k's pretrained config has test_input_size
288 with crop 1.0 and trains at 224 with crop 0.95; its weights are a seeded random init saved as a checkpoint."""

from __future__ import annotations

import csv

import numpy as np
import pyarrow.parquet as pq
import pytest
import timm
import timm.data
import torch
from test_eval_timm_parity import BATCH, checkpoint, package, timm_batches  # noqa: F401  (package: a fixture)

from imagenet_sketch_tools.cli import main as cli
from imagenet_sketch_tools.dataset import published
from imagenet_sketch_tools.evaluation import evaluate, models
from imagenet_sketch_tools.evaluation.batches import input_batches
from imagenet_sketch_tools.evaluation.data import open_source
from imagenet_sketch_tools.evaluation.spec import LoadOptions, Weights

MODEL = "resnet18.a1_in1k"
GEOMETRY = {False: (288, 1.0), True: (224, 0.95)}  # use_train_size -> (img_size, crop_pct)


def timms_config(use_train_size: bool) -> dict:
    """What timm's validate.py resolves: `use_test_size=not args.use_train_size`."""
    module = timm.create_model(MODEL, pretrained=False)
    return timm.data.resolve_data_config(model=module, use_test_size=not use_train_size)


@pytest.mark.parametrize("use_train_size", [False, True])
def test_inputs_and_logits_equal_validate_pys_route(package, tmp_path, use_train_size):  # noqa: F811
    weights = Weights(checkpoint=checkpoint(tmp_path, MODEL))
    loaded = models.load(f"timm:{MODEL}", weights, LoadOptions(use_train_size=use_train_size))
    config = timms_config(use_train_size)
    assert loaded.preprocess.config == config
    assert (loaded.img_size, loaded.crop_pct, loaded.interpolation) == (*GEOMETRY[use_train_size], "bicubic")
    module = loaded.module.eval()
    rows = open_source(str(package))
    batches = sorted(
        input_batches(rows, np.arange(len(rows)), loaded.preprocess, BATCH, workers=0), key=lambda b: b.index
    )
    theirs = timm_batches(package, config, workers=0)
    assert len(batches) == len(theirs) > 1
    for batch, (their_pixels, their_labels) in zip(batches, theirs):
        pixels = loaded.preprocess.on_device(batch.pixels, torch.device("cpu"))
        assert pixels.shape[-1] == GEOMETRY[use_train_size][0]
        assert torch.equal(pixels, their_pixels)
        assert torch.equal(torch.from_numpy(rows.meta().labels[batch.rows]), their_labels)
        with torch.inference_mode():
            assert torch.equal(module(pixels), module(their_pixels))

    result = evaluate(
        f"timm:{MODEL}", str(package), weights=weights, use_train_size=use_train_size, output=tmp_path / "out",
        batch_size=BATCH, workers=0,
    )  # fmt: skip
    with torch.inference_mode():
        prob, top5 = torch.cat([module(pixels) for pixels, _ in theirs]).softmax(dim=1).topk(5, dim=1)
    predictions = pq.read_table(result.folder / "predictions.parquet")
    assert predictions.column("top5").to_pylist() == top5.tolist()
    assert np.array_equal(np.asarray(predictions.column("top5_prob").to_pylist(), np.float32), prob.numpy())


def results_row(output) -> dict:
    with open(output / "results.csv", newline="") as file:
        [row] = [row for row in csv.DictReader(file) if row["model"] == MODEL]
    return row


def test_the_command_compares_with_timms_row_at_the_size_it_ran(package, tmp_path, capsys):  # noqa: F811
    """The issue's "done when": 288 / 1.0 and timm's 288 row; with --use-train-size 224 / 0.95 and the 224 row."""
    output = tmp_path / "out"
    command = ["eval", f"timm:{MODEL}", "--checkpoint", checkpoint(tmp_path, MODEL), "--source", str(package)]
    command += ["--reference", "timm", "-o", str(output), "--workers", "0"]
    published_rows = published.sketch_results()
    for use_train_size, flag in ((False, []), (True, ["--use-train-size"])):
        assert cli.main([*command, *flag]) == 0
        summary = capsys.readouterr().out.splitlines()[0]
        size, crop = GEOMETRY[use_train_size]
        row = results_row(output)
        assert (row["img_size"], row["crop_pct"], row["interpolation"]) == (str(size), f"{crop:.3f}", "bicubic")
        theirs = published_rows[(MODEL, size)]
        assert row["top1_ref"] == f"{theirs.top1:.3f}" and row["top5_ref"] == f"{theirs.top5:.3f}"
        assert row["top1_ref_diff"] == f"{float(row['top1']) - theirs.top1:+.3f}"
        assert row["imagenet_top1"] == f"{published.imagenet_top1(MODEL, size):.3f}"
        assert f"vs timm's published results (snapshot {published.snapshot_date()}) row {MODEL} at {size}: " in summary
        assert "already evaluated" not in summary  # the other size is another run, not the first one read back
    assert (published_rows[(MODEL, 288)].top1, published_rows[(MODEL, 224)].top1) == (23.074, 24.072)


def test_a_reference_without_a_row_at_the_size_run_is_not_used(package, tmp_path, capsys):  # noqa: F811
    """A row of the same model at another size is never compared with; validate.py's column order is read too."""
    reference = tmp_path / "mine.csv"
    reference.write_text(
        "model,top1,top1_err,top5,top5_err,param_count,img_size,crop_pct,interpolation\n"
        f"{MODEL},50.000,50.000,70.000,30.000,11.69,224,0.950,bicubic\n"
    )
    output = tmp_path / "out"
    command = ["eval", f"timm:{MODEL}", "--checkpoint", checkpoint(tmp_path, MODEL), "--source", str(package)]
    assert cli.main([*command, "--reference", str(reference), "-o", str(output), "--workers", "0"]) == 0
    summary = capsys.readouterr().out.splitlines()[0]
    assert f"{reference} has no row of {MODEL} at 288 (it has 224 only)" in summary
    row = results_row(output)
    assert (row["img_size"], row["top1_ref"], row["top1_ref_diff"]) == ("288", "", "")
