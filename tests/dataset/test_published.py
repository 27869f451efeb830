"""timm's bundled results: every row, keyed by model and image size, read in either column order."""

from __future__ import annotations

import csv
import io
from collections import Counter

import pytest

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.dataset import published

# validate.py's and `imagenet-sketch eval`'s order: img_size after the figures
EVAL_COLUMNS = ["model", "top1", "top1_err", "top5", "top5_err", "param_count", "img_size", "crop_pct", "interpolation"]


def raw_rows(name: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(published._bundled(name))))


@pytest.mark.parametrize("reader", [published.sketch_results, published.imagenet_results])
def test_every_published_row_is_kept_under_its_model_and_size(reader):
    rows = reader()
    assert len(rows) == 1556
    models = Counter(model for model, _ in rows)
    assert len(models) == 1266
    assert sum(count == 2 for count in models.values()) == 290  # train and test size: two rows, both kept


def test_a_model_at_two_sizes_has_both_rows_with_their_own_figures():
    sketch = published.sketch_results()
    at_224, at_288 = sketch[("resnet18.a1_in1k", 224)], sketch[("resnet18.a1_in1k", 288)]
    assert (at_224.top1, at_224.top5, at_224.crop_pct) == (24.072, 40.919, 0.95)
    assert (at_288.top1, at_288.top5, at_288.crop_pct) == (23.074, 39.572, 1.0)
    assert published.imagenet_top1("resnet18.a1_in1k", 224) == 71.504
    assert published.imagenet_top1("resnet18.a1_in1k", 288) == 73.164


def test_the_two_tables_hold_the_same_model_and_size_pairs():
    assert published.sketch_results().keys() == published.imagenet_results().keys()


def test_thousands_separators_in_param_count_are_read():
    big = [row for row in raw_rows(published.IMAGENET) if "," in row["param_count"]]
    assert big, "the snapshot has models over 1,000 M parameters"
    row = big[0]
    result = published.imagenet_results()[(row["model"], int(row["img_size"]))]
    assert result.param_count == float(row["param_count"].replace(",", "")) > 1000


def test_both_column_orders_read_the_same(tmp_path):
    published_order = tmp_path / "published-order.csv"
    eval_order = tmp_path / "eval-order.csv"
    rows = raw_rows(published.SKETCH)
    published_order.write_text(published._bundled(published.SKETCH), encoding="utf-8")
    with open(eval_order, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=EVAL_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(reversed(rows))
    assert open(eval_order).readline().startswith("model,top1,top1_err,top5,top5_err,param_count,img_size")
    from_published, from_eval = published.read_results(published_order), published.read_results(eval_order)
    assert from_published == from_eval == published.sketch_results()
    assert from_eval[("resnet18.a1_in1k", 288)].top1 == 23.074


def test_read_reference_takes_timm_or_a_path(tmp_path):
    assert published.read_reference("timm") is published.sketch_results()
    mine = tmp_path / "mine.csv"
    mine.write_text("model,top1,top5,img_size\nmy_net,12.5,30.25,224\n", encoding="utf-8")
    assert published.read_reference(mine) == {("my_net", 224): published.Result("my_net", 224, 12.5, 30.25)}


def test_unknown_model_or_size_is_none():
    assert published.imagenet_top1("no_such_model", 224) is None
    assert published.imagenet_top1("resnet18.a1_in1k", 512) is None  # a known model at a size timm did not publish


def test_the_snapshot_date_comes_from_source_md():
    assert published.snapshot_date() == "2026-08-08"
    assert f"({published.snapshot_date()})" in published._bundled(published.SOURCE)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("model,top1,top5\nx,1,2\n", "has no img_size column"),
        ("model,img_size,top1,top5\nx,224,high,2\n", "line 2"),
        ("model,img_size,top1,top5\nx,224,1,2\nx,224,3,4\n", "x at img_size 224 appears twice"),
    ],
)
def test_a_malformed_file_is_one_line_naming_it(tmp_path, text, complaint):
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=complaint) as raised:
        published.read_results(path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


def test_a_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot be read"):
        published.read_reference(tmp_path / "absent.csv")
