"""``kedro viz build`` renders every pipeline, checked in headless Chromium.

Chromium is Debian's package (``apt-get install chromium``); without it the
browser check is skipped unless ``VAE_PIPELINE_REQUIRE_SERVICES`` is set (CI).
A screenshot of each pipeline is left in the test's temporary folder.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import browse, kedro_cli, make_project_copy

PIPELINE_NODES = {
    "__default__": {
        "remove_abandoned_data_node",
        "select_source_node",
        "build_model_input_node",
        "commit_data_version_node",
        "train_vae_node",
        "compute_evaluation_metrics_node",
        "draw_latent_manifold_node",
        "remove_abandoned_versions_node",
        "register_model_node",
        "assign_first_champion_node",
        "report_model_node",
        "train_split",
        "data_version",
        "vae_model",
        "evaluation_metrics",
        "registered_model",
        "model_report",
        "model_aliases",
    },
    "retraining": {
        "remove_abandoned_data_node",
        "select_new_files_node",
        "merge_training_data_node",
        "retrain_vae_node",
        "decide_promotion_node",
        "remove_abandoned_versions_node",
        "register_model_node",
        "commit_data_version_node",
        "promote_model_node",
        "report_model_node",
        "incoming_files",
        "current_data_version",
        "champion_model",
        "promotion_decision",
        "registered_model",
        "data_version",
        "abandoned_model_versions",
        "model_aliases",
    },
    "latent_comparison": {"compare_latent_spaces_node", "latent_comparison_plot"},
    "generation": {"generate_prior_samples_node", "registered_vae_model"},
    "scoring": {
        "collect_scoring_sources_node",
        "score_images_node",
        "find_similar_images_node",
        "scoring_files",
        "scoring_model",
        "image_scores",
        "score_histogram_plot",
    },
}
LAYERS = ("raw", "model_input", "models", "model_output", "reporting")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = make_project_copy(tmp_path_factory.mktemp("viz") / "project")
    result = kedro_cli(project, "viz", "build")
    assert result.returncode == 0, result.stderr[-3000:]
    return project / "build"


def test_build_lists_every_registered_pipeline(site):
    pipelines = {path.name for path in (site / "api" / "pipelines").iterdir()}
    assert pipelines == {
        "__default__",
        "data_ingestion",
        "training",
        "evaluation",
        "registration",
        "generation",
        "latent_comparison",
        "retraining",
        "scoring",
    }
    graph = json.loads((site / "api" / "main").read_text())
    assert graph["layers"] == list(LAYERS)
    tags = {tag["id"] for tag in graph["tags"]}
    assert {"data_ingestion", "training", "evaluation", "generation"} <= tags


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(site)
    )
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


@pytest.mark.parametrize("pipeline", list(PIPELINE_NODES))
def test_graph_renders_in_chromium(chromium, served, pipeline, tmp_path):
    url = f"{served}?pid={pipeline}"
    dom = browse(chromium, url, "--dump-dom")
    labels = set(re.findall(r'class="pipeline-node__text"[^>]*>([^<]+)<', dom))
    assert PIPELINE_NODES[pipeline] <= labels
    assert 'data-id="layer-label--reporting"' in dom
    if pipeline == "__default__":
        for layer in LAYERS:
            assert f'data-id="layer-label--{layer}"' in dom
    browse(chromium, url, f"--screenshot={tmp_path / f'{pipeline}.png'}")
    assert (tmp_path / f"{pipeline}.png").stat().st_size > 10_000
