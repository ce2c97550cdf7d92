"""One self-contained HTML page per registered model version.

The page carries everything inside it (figures as PNG data URIs, no script, no
stylesheet to fetch), so it reads the same from ``data/08_reporting/``, from the
MLflow UI's artifact view, or attached to a ticket. It is written with the
standard library's ``html.escape``: a dozen fixed sections need no template
engine, and none is a declared dependency of the project.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from numbers import Real
from typing import Any

from matplotlib.figure import Figure

NATS = "nats per image"
# Units of the evaluation metrics (``evaluation_metrics.json``), by name (a
# nested one by its own name, else by its group's); a name not listed is a flag
# and shows without a unit.
UNITS = {
    "negative_elbo": NATS,
    "reconstruction": NATS,
    "kl": NATS,
    "kl_per_dimension": NATS,
    "iwae_negative_log_likelihood": NATS,
    "iwae_cross_entropy": NATS,
    "iwae_samples": "importance samples",
    "active_units": "latent dimensions",
    "active_unit_threshold": "variance of the posterior mean",
    "latent_dim": "dimensions",
    "posterior_mean_variance": "variance",
    "reconstruction_mse": "mean squared error per pixel, pixels in [0, 1]",
    "knn_accuracy": "fraction of test images",
    "knn_accuracy.k": "neighbours",
    "knn_accuracy.train_images": "images",
    "knn_accuracy.pca_components": "components",
    "test_images": "images",
}
STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em;
       padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.8em; text-align: left;
         vertical-align: top; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 90%; }
figure { display: inline-block; margin: 0 1.5em 1.5em 0; }
img { max-width: 100%; }
.promoted { color: #176e2c; } .kept { color: #8a5300; }
"""


def _value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "-"
    if isinstance(value, Real):
        number = float(value)
        return f"{int(number):,}" if number.is_integer() else f"{number:,.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(_value(item) for item in value)
    return str(value)


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="number">{html.escape(_value(cell))}</td>'
            if isinstance(cell, Real) and not isinstance(cell, bool)
            else f"<td>{html.escape(_value(cell))}</td>"
            for cell in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def metric_rows(metrics: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    """``(name, value, unit)`` for each metric; a dict of metrics (kNN
    accuracies) gives one row per key, ``knn_accuracy.latent_means``."""
    rows = []
    for name, value in metrics.items():
        unit = UNITS.get(name, "")
        if isinstance(value, Mapping):
            rows += [
                (f"{name}.{key}", item, UNITS.get(f"{name}.{key}", unit))
                for key, item in value.items()
            ]
        else:
            rows.append((name, value, unit))
    return rows


def png_data_uri(figure: Figure, *, dpi: int = 100) -> str:
    """The figure as a PNG ``data:`` URI, for an ``<img>`` inside the page."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _promotion(decision: Mapping[str, Any]) -> str:
    promoted = bool(decision.get("promote"))
    outcome = (
        '<p class="promoted"><strong>Promoted to champion.</strong> '
        if promoted
        else '<p class="kept"><strong>Not promoted.</strong> '
    )
    text = outcome + html.escape(str(decision.get("reason", ""))) + "</p>"
    scores = [
        (label, decision[key])
        for label, key in (
            ("split the decision was made on", "split"),
            ("its images", "images"),
            ("challenger -ELBO (nats per image)", "challenger_negative_elbo"),
            ("champion at the time", "champion_version"),
            ("champion -ELBO (nats per image)", "champion_negative_elbo"),
            ("margin (nats)", "margin"),
        )
        if decision.get(key) is not None
    ]
    return text + (_table(("", "value"), scores) if scores else "")


def _lineage(data_version: Mapping[str, Any]) -> str:
    version = data_version.get("version", "-")
    parent = data_version.get("parent")
    text = (
        f"<p>Data version <code>{html.escape(str(version))}</code>"
        + (
            f", on top of <code>{html.escape(str(parent))}</code>"
            if parent
            else " (ingested)"
        )
        + ".</p>"
    )
    splits = [
        (
            name,
            entry.get("version"),
            entry.get("num_examples"),
            entry.get("content_sha256"),
        )
        for name, entry in data_version.get("splits", {}).items()
    ]
    text += _table(("split", "version", "images", "content SHA-256"), splits)
    incoming = sorted(data_version.get("incoming", {}).items())
    if incoming:
        text += (
            f"<p>{len(incoming)} incoming file(s) merged so far, by content:</p>"
            + _table(("file", "SHA-256"), incoming)
        )
    else:
        text += "<p>No incoming batch merged: the data is as ingested.</p>"
    return text


def model_report(
    registered_model: Mapping[str, str],
    *,
    metrics: Mapping[str, Any],
    data_version: Mapping[str, Any],
    decision: Mapping[str, Any],
    figures: Mapping[str, Figure],
) -> str:
    """The report page of one registered version.

    Args:
        registered_model: ``name``, ``version`` and ``run_id`` of the version.
        metrics: Its test metrics (``evaluation_metrics``).
        data_version: The committed data version it was trained on.
        decision: The promotion decision taken for it.
        figures: Figures by name, shown in this order.

    Returns:
        The page, as one HTML string with every image inside it.
    """
    name = html.escape(str(registered_model["name"]))
    version = html.escape(str(registered_model["version"]))
    run_id = html.escape(str(registered_model.get("run_id", "")))
    figure_html = "".join(
        f'<figure><img src="{png_data_uri(figure)}" alt="{html.escape(label)}">'
        f"<figcaption>{html.escape(label.replace('_', ' '))}</figcaption></figure>"
        for label, figure in figures.items()
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{name} version {version}</title><style>{STYLE}</style></head>"
        f"<body><h1>{name} version {version}</h1>"
        f"<p>Registered by MLflow run <code>{run_id}</code>.</p>"
        f"<h2>Promotion</h2>{_promotion(decision)}"
        "<h2>Test metrics</h2>"
        + _table(("metric", "value", "unit"), metric_rows(metrics))
        + f"<h2>Figures</h2>{figure_html}"
        + f"<h2>Lineage</h2>{_lineage(data_version)}"
        + "</body></html>\n"
    )
