"""The leaderboard and the accuracy-on-the-line chart: a folder's models among timm's published results."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt

from imagenet_sketch_tools.dataset import published
from imagenet_sketch_tools.report.fit import ProbitFit, fit_probit_line, probit
from imagenet_sketch_tools.report.folder import ModelRun

# percent ticks of the probit axes: the chart is drawn in probit units, labelled in accuracy
TICKS = [0.01, 0.1, 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99]
LABEL = "format(cumulativeNormal(datum.value) * 100, '.3~') + '%'"  # a probit value back to a percent
PUBLISHED_COLOUR, LINE_COLOUR, USER_COLOUR = "#9aa5b1", "#d9480f", "#1c7ed6"


@dataclass
class Standing:
    """One leaderboard row: the model's figures, timm's published ones at its size, its place against the line."""

    model: ModelRun
    published_top1: float | None  # timm's ImageNet-Sketch top-1 for (model, img_size)
    imagenet_top1: float | None  # its ImageNet-1k top-1: timm's at that size, or given with --imagenet-top1
    imagenet_from: str  # "timm", "given" or ""
    predicted: float | None  # the line's sketch top-1 for that ImageNet top-1
    effective_robustness: float | None  # sketch top-1 minus predicted, in points

    @property
    def published_diff(self) -> float | None:
        return None if self.published_top1 is None else self.model.top1 - self.published_top1


def published_fit() -> ProbitFit:
    """The line through timm's published (model, img_size) results, ImageNet-1k against ImageNet-Sketch."""
    keys = list(published.sketch_results())
    imagenet, sketch = published.imagenet_results(), published.sketch_results()
    return fit_probit_line([imagenet[key].top1 for key in keys], [sketch[key].top1 for key in keys])


def standings(models: list[ModelRun], given: dict[str, float], fit: ProbitFit) -> list[Standing]:
    """Each model's leaderboard row. Its ImageNet-1k top-1 is a value `given` (--imagenet-top1) if any, which wins
    over the table's (it names what the user means), else timm's for the same model at the same img_size."""
    rows = []
    for model in models:
        key = (model.name, model.img_size or 0)
        sketch = published.sketch_results().get(key)
        imagenet, origin = given.get(model.name), "given"
        if imagenet is None:
            imagenet, origin = published.imagenet_top1(*key), "timm"
        predicted = None if imagenet is None else fit.predict(imagenet)
        robustness = None if imagenet is None else fit.effective_robustness(model.top1, imagenet)
        published_top1 = None if sketch is None else sketch.top1
        origin = origin if imagenet is not None else ""
        rows.append(Standing(model, published_top1, imagenet, origin, predicted, robustness))
    return rows


def line_chart(fit: ProbitFit, placed: list[Standing]) -> dict:
    """The Vega-Lite spec: every published result a grey point, the fitted line, the placed models in colour."""
    imagenet, sketch = published.imagenet_results(), published.sketch_results()
    points = [
        {
            "model": model,
            "img_size": size,
            "imagenet": imagenet[(model, size)].top1,
            "sketch": result.top1,
            "x": probit(imagenet[(model, size)].top1),
            "y": probit(result.top1),
        }
        for (model, size), result in sketch.items()
    ]
    users = [
        {
            "model": row.model.name,
            "img_size": row.model.img_size,
            "imagenet": row.imagenet_top1,
            "sketch": row.model.top1,
            "robustness": f"{row.effective_robustness:+.2f} points",
            "x": probit(row.imagenet_top1 or 0),
            "y": probit(row.model.top1),
        }
        for row in placed
    ]
    # one label per place: models at the same point (two random inits at chance) share it instead of overprinting
    names_at: dict[tuple[float, float], list[str]] = {}
    for user in users:
        names_at.setdefault((user["x"], user["y"]), []).append(user["model"])
    labels_data = [{"x": x, "y": y, "model": ", ".join(names)} for (x, y), names in names_at.items()]
    # the axes span the points; the line is drawn across them and clipped where it leaves the plot
    x_domain = _span([point["x"] for point in points + users])
    y_domain = _span([point["y"] for point in points + users])
    line = [{"x": x, "y": fit.slope * x + fit.intercept} for x in x_domain]
    ticks = [probit(percent) for percent in TICKS]
    x_axis = alt.X(
        "x:Q",
        title="ImageNet-1k top-1 (probit scale)",
        axis=alt.Axis(values=ticks, labelExpr=LABEL),
        scale=alt.Scale(domain=x_domain, nice=False, zero=False),
    )
    y_axis = alt.Y(
        "y:Q",
        title="ImageNet-Sketch top-1 (probit scale)",
        axis=alt.Axis(values=ticks, labelExpr=LABEL),
        scale=alt.Scale(domain=y_domain, nice=False, zero=False),
    )
    tooltip = [
        alt.Tooltip("model:N"),
        alt.Tooltip("img_size:Q", title="img size"),
        alt.Tooltip("imagenet:Q", title="ImageNet top-1 %", format=".2f"),
        alt.Tooltip("sketch:Q", title="Sketch top-1 %", format=".2f"),
    ]
    backdrop = (
        alt.Chart(alt.Data(values=points), name="published")
        .mark_circle(size=22, opacity=0.55, color=PUBLISHED_COLOUR)
        .encode(x_axis, y_axis, tooltip=tooltip)
    )
    fitted = (
        alt.Chart(alt.Data(values=line), name="fit")
        .mark_line(color=LINE_COLOUR, strokeWidth=2, clip=True)
        .encode(alt.X("x:Q"), alt.Y("y:Q"))
    )
    layers = [backdrop, fitted]
    if users:
        data = alt.Data(values=users)
        marks = alt.Chart(data, name="yours").mark_point(
            size=140, filled=True, color=USER_COLOUR, stroke="white", strokeWidth=1.5, opacity=1
        )
        labels = alt.Chart(alt.Data(values=labels_data), name="yours_labels").mark_text(
            align="left", dx=9, dy=-8, fontWeight="bold", color=USER_COLOUR
        )
        robustness = alt.Tooltip("robustness:N", title="effective robustness")
        layers.append(marks.encode(alt.X("x:Q"), alt.Y("y:Q"), tooltip=[*tooltip, robustness]))
        layers.append(labels.encode(alt.X("x:Q"), alt.Y("y:Q"), text="model:N"))
    chart = alt.layer(*layers).properties(width="container", height=460)
    return chart.configure_view(stroke=None).configure_axis(grid=True, gridOpacity=0.4).to_dict()


def _span(values: list[float], margin: float = 0.15) -> list[float]:
    return [min(values) - margin, max(values) + margin]
