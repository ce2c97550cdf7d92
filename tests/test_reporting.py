"""The report page on its own: units, escaping, figures inside the page."""

from __future__ import annotations

import base64
import io
import re

import matplotlib.pyplot as plt
from PIL import Image

from vae_pipeline.reporting import metric_rows, model_report

REGISTERED = {"name": "vae_pipeline", "version": "7", "run_id": "abc123"}
DATA_VERSION = {
    "version": "2026-12-02T06.00.00.000Z",
    "parent": "2026-12-01T06.00.00.000Z",
    "splits": {
        "train": {"version": "V", "num_examples": 1200, "content_sha256": "aa11"},
    },
    "incoming": {"2026-12/digits.npz": "ff00ee"},
}


def figure(width: float):
    fig, axes = plt.subplots(figsize=(width, 2))
    axes.plot([0, 1], [1, 0])
    plt.close(fig)
    return fig


def test_metrics_have_units_and_nested_ones_one_row_each():
    rows = metric_rows(
        {
            "negative_elbo": 31.5,
            "active_units": 4,
            "knn_accuracy": {"latent_means": 0.9, "pixels": 0.95, "k": 5},
            "binary_pixels": False,
        }
    )
    assert rows == [
        ("negative_elbo", 31.5, "nats per image"),
        ("active_units", 4, "latent dimensions"),
        ("knn_accuracy.latent_means", 0.9, "fraction of test images"),
        ("knn_accuracy.pixels", 0.95, "fraction of test images"),
        ("knn_accuracy.k", 5, "neighbours"),
        ("binary_pixels", False, ""),
    ]


def test_page_holds_its_figures_escapes_text_and_shows_lineage():
    page = model_report(
        REGISTERED,
        metrics={"negative_elbo": 31.5, "kl_per_dimension": [1.25, 0.5]},
        data_version=DATA_VERSION,
        decision={
            "promote": False,
            "reason": "worse by <0.2> nats & more",
            "split": "validation",
            "champion_version": "6",
            "champion_negative_elbo": 31.3,
            "challenger_negative_elbo": 31.5,
        },
        figures={"training_curves": figure(4), "latent_scatter": figure(3)},
    )
    assert "<title>vae_pipeline version 7</title>" in page
    assert "Not promoted.</strong> worse by &lt;0.2&gt; nats &amp; more" in page
    assert "<td>kl_per_dimension</td><td>1.25, 0.5</td>" in page
    assert '<td>champion at the time</td><td class="number">6</td>' not in page
    assert "<td>champion at the time</td><td>6</td>" in page
    assert "on top of <code>2026-12-01T06.00.00.000Z</code>" in page
    assert "<td>2026-12/digits.npz</td><td>ff00ee</td>" in page
    sources = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="(\w+)">', page)
    assert [alt for _, alt in sources] == ["training_curves", "latent_scatter"]
    widths = [
        Image.open(io.BytesIO(base64.b64decode(data))).size[0] for data, _ in sources
    ]
    assert widths[0] > widths[1] > 100
