"""`imagenet-sketch report`: the summary line, the ImageNet top-1 of each model (timm's at its size, or given),
the page written whole or not at all, and one-line errors."""

from __future__ import annotations

import sys

import pytest
from report_data import KNOWN, OTHER

from imagenet_sketch_tools.cli.main import main
from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.report.folder import ModelRun
from imagenet_sketch_tools.report.line import published_fit, standings
from imagenet_sketch_tools.report.page import write_report


def test_the_command_writes_the_page_and_states_its_size(known_folder, tmp_path, capsys):
    out, archive = known_folder
    page = tmp_path / "page.html"
    assert main(["report", str(out), "--source", str(archive), "-o", str(page), "--imagenet-top1", f"{KNOWN}=70"]) == 0
    summary = capsys.readouterr().out.strip()
    size = page.stat().st_size
    assert summary == f"wrote {page}: {size / 1e6:.2f} MB, 2 model(s), 16 thumbnails"  # all 16 images shown
    html = page.read_text(encoding="utf-8")
    assert "<script src" not in html and "<link" not in html and "@import" not in html  # nothing to fetch
    assert html.count("data:image/webp;base64,") == 16  # each image inlined once, however often it is shown
    assert "(given)" in html and "Not placed" in html  # the known model placed, the complement only listed


def test_without_a_source_the_page_is_written_without_images(known_folder, tmp_path, capsys):
    out, _ = known_folder
    page = tmp_path / "page.html"
    assert main(["report", str(out), "-o", str(page), "--cache-dir", str(tmp_path / "empty-cache")]) == 0
    assert capsys.readouterr().out.strip().endswith("2 model(s), 0 thumbnails")
    assert "No images were read: no --source or --sample was given" in page.read_text(encoding="utf-8")


def test_a_model_is_matched_with_timms_row_at_its_own_size():
    fit = published_fit()
    at_224, at_288, unknown = standings(
        [
            ModelRun("resnet18.a1_in1k", 25.0, 40.0, 224),
            ModelRun("resnet18.a1_in1k", 25.0, 40.0, 288),
            ModelRun("my_net", 30.0, 50.0, 224),
        ],
        {"my_net": 60.0},
        fit,
    )
    assert (at_224.published_top1, at_224.imagenet_top1, at_224.imagenet_from) == (24.072, 71.504, "timm")
    assert (at_288.published_top1, at_288.imagenet_top1) == (23.074, 73.164)
    assert at_224.published_diff == pytest.approx(25.0 - 24.072)
    assert at_224.effective_robustness == pytest.approx(25.0 - fit.predict(71.504))
    assert (unknown.published_top1, unknown.imagenet_top1, unknown.imagenet_from) == (None, 60.0, "given")
    assert unknown.effective_robustness == pytest.approx(30.0 - fit.predict(60.0))
    [unplaced] = standings([ModelRun("resnet18.a1_in1k", 25.0, 40.0, 512)], {}, fit)  # a size timm did not publish
    assert (unplaced.imagenet_top1, unplaced.effective_robustness, unplaced.imagenet_from) == (None, None, "")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--imagenet-top1", "seventy"], "--imagenet-top1 'seventy' is not NAME=VALUE with VALUE a percentage"),
        (["--imagenet-top1", f"{KNOWN}=170"], f"--imagenet-top1 '{KNOWN}=170' is not NAME=VALUE"),
        (["--imagenet-top1", "nobody=50"], "--imagenet-top1 names nobody, not a model of"),
        (["-o", "/nonexistent-folder/page.html"], "folder '/nonexistent-folder' does not exist"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(known_folder, tmp_path, capsys, arguments, message):
    out, _ = known_folder
    before = sorted(path.name for path in out.iterdir())
    assert main(["report", str(out), *arguments]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"imagenet-sketch: error: {message}") and error.count("\n") == 1
    assert sorted(path.name for path in out.iterdir()) == before


def test_a_folder_that_is_not_an_eval_output_is_named(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error == f"imagenet-sketch: error: '{tmp_path}' holds no results.csv; give the --output folder of " + (
        "`imagenet-sketch eval`\n"
    )


def test_a_missing_extra_is_one_line_saying_what_to_install(known_folder, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "vl_convert", None)  # what `import vl_convert` meets when it is not installed
    with pytest.raises(
        UserError, match=r"the report needs vl_convert; install it with: pip install 'imagenet-sketch\[report\]'"
    ):
        write_report(known_folder[0], None, tmp_path / "page.html")
    assert not (tmp_path / "page.html").exists()


def test_models_are_listed_in_results_order(known_folder, tmp_path):
    written = write_report(known_folder[0], None, tmp_path / "page.html")
    html = written.path.read_text(encoding="utf-8")
    assert html.index(f'data-model="{OTHER}"') < html.index(f'data-model="{KNOWN}"')
