"""The report page: everything in an eval output folder, with timm's published results as the backdrop, rendered
from the Jinja2 template beside this module into one self-contained HTML file (scripts, styles, chart library and
thumbnails inline; system fonts, so no font file is needed) that opens offline in any browser."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.common.files import write_atomically
from imagenet_sketch_tools.dataset import published
from imagenet_sketch_tools.report import images
from imagenet_sketch_tools.report.compare import comparisons
from imagenet_sketch_tools.report.folder import ModelRun, read_eval_folder
from imagenet_sketch_tools.report.line import line_chart, published_fit, standings
from imagenet_sketch_tools.report.views import (
    Predictions,
    Shot,
    class_table_rows,
    confident_mistakes,
    confusions,
    extreme_classes,
)

REPORT = "report.html"
TEMPLATES = "templates"
INSTALL = "pip install 'imagenet-sketch[report]'"


@dataclass
class Written:
    """What write_report made: the file, its size, and how many models and thumbnails it holds."""

    path: Path
    size: int
    models: int
    thumbnails: int

    def summary(self) -> str:
        return f"wrote {self.path}: {self.size / 1e6:.2f} MB, {self.models} model(s), {self.thumbnails} thumbnails"


def write_report(
    eval_dir: str | os.PathLike,
    source: images.ImageFetcher | str | None = None,
    output: str | os.PathLike | None = None,
    imagenet_top1: dict[str, float] | None = None,
    images_note: str = "give --source or --sample",
) -> Written:
    """Write the report of `eval_dir` to `output` (default EVAL_DIR/report.html) and say what was written.

    `source` gives the images for the thumbnails: an archive location (zip, folder, URL), or a function
    {row: path} -> {path: bytes} (eval passes its own reader); None shows the pages without images.
    `imagenet_top1` gives a model's ImageNet-1k top-1 where timm's table has none (it wins over the table's).
    """
    jinja2, markup, vl_convert = _libraries()
    eval_dir = Path(eval_dir)
    output = Path(output) if output is not None else eval_dir / REPORT
    models = read_eval_folder(eval_dir)
    unknown = sorted(set(imagenet_top1 or {}) - {model.name for model in models})
    if unknown:
        listed = ", ".join(model.name for model in models)
        raise UserError(f"--imagenet-top1 names {', '.join(unknown)}, not a model of {eval_dir} ({listed})")
    if not output.parent.is_dir():
        raise UserError(f"folder '{output.parent}' does not exist; create it or choose another --output")
    fit = published_fit()
    rows = standings(models, imagenet_top1 or {}, fit)
    views = [model_view(model) for model in models if model.predictions is not None]
    named = [(view["name"], view["predictions"]) for view in views]
    pairs = comparisons(named)
    wanted = {shot.row: shot.path for shot in shots_of(views, pairs)}
    fetch = images.from_archive(source) if isinstance(source, str) else source
    thumbs = images.thumbnails(fetch, wanted)
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("imagenet_sketch_tools.report", TEMPLATES), autoescape=True
    )
    placed = [row for row in rows if row.imagenet_top1 is not None]
    html = environment.get_template("report.html.j2").render(
        eval_dir=str(eval_dir),
        standings=rows,
        placed=placed,
        unplaced=[row for row in rows if row.imagenet_top1 is None],
        fit=fit,
        snapshot=published.snapshot_date(),
        published_count=len(published.sketch_results()),
        chart=line_chart(fit, placed),
        class_rows=class_table_rows([model for model in models if model.predictions is not None]),
        views=views,
        pairs=pairs,
        thumbs=thumbs,
        images_note=images_note,
        css=markup(_template_file(environment, "report.css")),
        vega_js=markup(_script_safe(vl_convert.javascript_bundle())),
        page_js=markup(_script_safe(_template_file(environment, "report.js"))),
    )
    write_atomically(output, html)
    return Written(output, output.stat().st_size, len(models), len(thumbs))


def model_view(model: ModelRun) -> dict:
    predictions = Predictions.of(model)
    worst, best = extreme_classes(model, predictions)
    return {
        "name": model.name,
        "predictions": predictions,
        "worst": worst,
        "best": best,
        "confusions": confusions(predictions),
        "mistakes": confident_mistakes(predictions),
    }


def shots_of(views: list[dict], pairs: list[dict]) -> list[Shot]:
    """Every image the page shows, so each is read and inlined once."""
    found = []
    for view in views:
        for row in view["worst"] + view["best"] + view["confusions"]:
            found += row["shots"]
        found += view["mistakes"]
    for pair in pairs:
        for row in pair["a_better"] + pair["b_better"]:
            found += [shot for shot, _ in row["examples"]]
    return found


def _libraries():
    try:
        # the [report] extra: imported when a report is made, so nothing else of the package needs it
        import jinja2
        import vl_convert
        from markupsafe import Markup
    except ImportError as error:
        raise UserError(f"the report needs {error.name}; install it with: {INSTALL}") from error
    return jinja2, Markup, vl_convert


def _template_file(environment, name: str) -> str:
    """A file of templates/ as it is (the CSS and JS inlined into the page)."""
    source, _, _ = environment.loader.get_source(environment, name)
    return source


def _script_safe(code: str) -> str:
    """A script's text made safe inside <script>: no "</script" can close the element early. Only that string
    is escaped (as "<\\/script", the same string to JavaScript inside a literal); a blanket "</" would break the
    bundle's regular expressions such as /</g."""
    return re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)
