"""``kedro run`` end to end with MLflow: runs, metrics, artifacts, the registry."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from tests.conftest import (
    aliases,
    assert_ok,
    browse,
    free_port,
    git,
    kedro_cli,
    model_report,
    written_files,
)

RUN_NAME = "data_ingestion+training+evaluation+registration+generation"
PLAIN_INFO_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO [\w.]+: .")
FIGURES = {
    "interpolation",
    "latent_distributions",
    "latent_manifold",
    "latent_scatter",
    "prior_samples",
    "reconstructions",
    "training_curves",
}


@pytest.fixture(scope="module")
def project(tracked_project: Path) -> Path:
    """The project after its two default runs, read by the tests that take it."""
    return tracked_project


@pytest.fixture
def own_copy(tracked_project: Path, tmp_path: Path) -> Path:
    """A copy of that project for a test that runs in it, so that what it adds
    (runs, versions, generated images) is seen by no other test."""
    copy = tmp_path / "project"
    shutil.copytree(tracked_project, copy, ignore=shutil.ignore_patterns("*.log"))
    return copy


def test_console_shows_plain_lines_a_summary_and_no_library_noise(project):
    """Run into a pipe (not a terminal): plain, unwrapped log lines, no library
    warnings or TensorFlow C++ chatter, and a summary that says what happened."""
    first, second = (
        (project / f"console-{index}.log").read_text().splitlines() for index in (0, 1)
    )
    for lines in (first, second):
        assert lines, "nothing on the console"
        for line in lines:  # every line one whole record at INFO
            assert PLAIN_INFO_LINE.match(line), line
        text = "\n".join(lines)
        assert "Mlflow run" not in text and "__default__" not in text
        assert "Run summary:" in text
        assert "test -ELBO" in text and "KL per dimension (nats):" in text
        assert "figures: 7 under data/08_reporting" in text
        assert re.search(
            r"report: data/08_reporting/model_report.html/\S+/model_", text
        )
    assert any("version 1, now @champion: the first version" in s for s in first)
    assert any("version 2; @champion stays version 1" in s for s in second)


def store(project: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{project / 'mlflow.db'}")


@pytest.fixture(scope="module")
def client(project: Path) -> MlflowClient:
    return store(project)


def default_runs(client: MlflowClient):
    experiment = client.get_experiment_by_name("vae_pipeline")
    runs = client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time ASC"]
    )
    return [run for run in runs if run.info.run_name == RUN_NAME]


def test_two_runs_are_two_finished_mlflow_runs_in_the_project_folder(project, client):
    runs = default_runs(client)
    assert [run.info.status for run in runs] == ["FINISHED", "FINISHED"]
    for run in runs:
        assert run.info.artifact_uri.startswith(str(project / "mlruns"))


def test_run_has_flattened_params_and_metric_histories(project, client):
    run = default_runs(client)[-1]
    params = run.data.params
    assert params["training.model.latent_dim"] == "8"
    assert params["training.model.hidden_units"] == "[256, 128]"
    assert params["data_ingestion.split.seed"] == "42"
    assert params["evaluation.iwae_samples"] == "100"
    history_files = sorted(
        (project / "data/08_reporting/training_history.json").iterdir()
    )
    history = json.loads((history_files[-1] / "training_history.json").read_text())
    for name in ("loss", "reconstruction", "kl", "val_loss", "val_reconstruction"):
        logged = client.get_metric_history(run.info.run_id, f"training.{name}")
        assert [m.step for m in logged] == history["epoch"]
        assert [m.value for m in logged] == pytest.approx(history[name])
    evaluation = json.loads(
        next(
            (project / "data/08_reporting/evaluation_metrics.json").glob(
                f"{run.data.tags['kedro.run_id']}/evaluation_metrics.json"
            )
        ).read_text()
    )
    metrics = run.data.metrics
    assert metrics["test.negative_elbo"] == pytest.approx(evaluation["negative_elbo"])
    assert metrics["test.kl_per_dimension.7"] == pytest.approx(
        evaluation["kl_per_dimension"][7]
    )
    assert metrics["test.knn_accuracy.latent_means"] == pytest.approx(
        evaluation["knn_accuracy"]["latent_means"]
    )


def test_run_has_figures_reports_summary_and_tags(project, client):
    run = default_runs(client)[-1]
    run_id = run.info.run_id

    def listed(path: str) -> set[str]:
        return {Path(a.path).name for a in client.list_artifacts(run_id, path)}

    assert listed("figures") == {f"{name}.png" for name in FIGURES}
    assert listed("reports") == {
        "evaluation_metrics.json",
        "training_history.json",
        "promotion_decision.json",
        "model_report.html",
    }
    assert listed("data") == {"ingestion_summary.json"}
    tags = run.data.tags
    assert tags["mlflow.source.git.commit"] == git(project, "rev-parse", "HEAD")
    assert tags["git.dirty"] == "false"
    model_versions = [p.name for p in (project / "data/06_models/vae.keras").iterdir()]
    assert tags["kedro.run_id"] in model_versions  # the run's Kedro save version


def test_each_run_registered_a_version_the_first_is_champion(project, client):
    runs = default_runs(client)
    versions = sorted(
        client.search_model_versions("name='vae_pipeline'"),
        key=lambda v: int(v.version),
    )
    assert [v.run_id for v in versions] == [run.info.run_id for run in runs]
    for version, run in zip(versions, runs, strict=True):
        assert float(version.tags["metric.test.negative_elbo"]) == pytest.approx(
            run.data.metrics["test.negative_elbo"]
        )
        # The data version it was trained on, as committed.
        record = project / "data/05_model_input/data_version.json"
        assert (record / version.tags["data_version"] / "data_version.json").is_file()
    assert aliases(client) == {"champion": 1}


def test_each_run_logs_its_data_version_as_an_mlflow_input(project, client):
    """Lineage in MLflow's UI: the data version a run committed is its input,
    with one digest for the same images ingested twice."""
    runs = default_runs(client)
    inputs = [run.inputs.dataset_inputs for run in runs]
    assert [len(found) for found in inputs] == [1, 1]
    versions = sorted(
        client.search_model_versions("name='vae_pipeline'"),
        key=lambda v: int(v.version),
    )
    for (found,), version in zip(inputs, versions, strict=True):
        assert found.dataset.name == f"model_input@{version.tags['data_version']}"
        assert json.loads(found.dataset.source) == {
            "uri": str(project / "data/05_model_input")
        }
        assert [tag.value for tag in found.tags] == ["training"]
    assert inputs[0][0].dataset.digest == inputs[1][0].dataset.digest


def test_each_registered_version_has_one_report_page(project, client, chromium):
    """Metrics with units, the figures inside the page, lineage, the decision;
    and the page renders in a browser."""
    versions = sorted(
        client.search_model_versions("name='vae_pipeline'"),
        key=lambda v: int(v.version),
    )
    pages = project / "data/08_reporting/model_report.html"
    assert len(list(pages.iterdir())) == len(versions) == 2
    for version in versions:
        page = model_report(client, project, version)
        run = client.get_run(version.run_id)
        elbo = run.data.metrics["test.negative_elbo"]
        assert re.search(
            rf"<td>negative_elbo</td><td class=\"number\">{elbo:.4g}</td>"
            r"<td>nats per image</td>",
            page,
        )
        assert page.count("<img ") == 5
        assert f"Data version <code>{version.tags['data_version']}</code>" in page
    first, second = (model_report(client, project, v) for v in versions)
    assert "Promoted to champion.</strong> no champion yet" in first
    assert "Not promoted.</strong> @champion stays version 1" in second
    page_file = next(pages.glob("*/model_report.html"))
    dom = browse(chromium, page_file.as_uri(), "--dump-dom")
    assert "<h2>Lineage</h2>" in dom and dom.count("<img ") == 5


PREDICT = textwrap.dedent(
    """
    import sys
    import mlflow, numpy as np
    from kedro.io import Version
    from vae_pipeline.datasets import ShardedArrayDataset
    dataset = ShardedArrayDataset(filepath=sys.argv[1], version=Version(None, None))
    outputs = mlflow.pyfunc.load_model("models:/vae_pipeline@champion").predict(
        dataset.load().images()[:7]
    )
    print({name: value.shape for name, value in sorted(outputs.items())})
    """
)


def test_champion_predicts_through_pyfunc_in_a_fresh_process(project):
    result = subprocess.run(
        [sys.executable, "-c", PREDICT, str(project / "data/05_model_input/test")],
        cwd=project,
        env={**os.environ, "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == (
        "{'log_likelihood': (7,), 'outlier': (7,), 'outlier_threshold': (1,), "
        "'reconstruction': (7, 8, 8, 1), 'z_log_var': (7, 8), 'z_mean': (7, 8)}"
    )


def test_generation_runs_on_a_registered_model_without_training(own_copy):
    project, client = own_copy, store(own_copy)
    models = project / "data/06_models/vae.keras"
    generated = project / "data/07_model_output/generated_images"
    trained_before = sorted(models.iterdir())
    generated_before = len(list(generated.iterdir()))
    assert_ok(kedro_cli(project, "run", "--pipelines", "generation"))
    assert_ok(
        kedro_cli(
            project,
            "run",
            "--pipelines",
            "generation",
            "--params",
            "model_uri=models:/vae_pipeline/2",
        )
    )
    assert sorted(models.iterdir()) == trained_before
    assert len(list(generated.iterdir())) == generated_before + 2
    assert len(client.search_model_versions("name='vae_pipeline'")) == 2
    missing = kedro_cli(
        project,
        "run",
        "--pipelines",
        "generation",
        "--params",
        "model_uri=models:/vae_pipeline/9",
    )
    assert missing.returncode == 1
    last_line = missing.stderr.strip().splitlines()[-1]
    assert last_line.startswith("Error: registered_vae_model")
    assert "version=9" in last_line


def test_diverging_run_is_failed_and_registers_nothing(own_copy):
    project, client = own_copy, store(own_copy)
    result = kedro_cli(project, "run", "--params", "training.learning_rate=1e12")
    assert result.returncode == 1
    assert "training diverged" in result.stderr.strip().splitlines()[-1]
    last = default_runs(client)[-1]
    assert last.info.status == RunStatus.to_string(RunStatus.FAILED)
    assert len(client.search_model_versions("name='vae_pipeline'")) == 2
    assert aliases(client) == {"champion": 1}


def test_unreachable_tracking_server_fails_fast_before_training(own_copy):
    project = own_copy
    uri = f"http://127.0.0.1:{free_port()}"
    before = written_files(project / "data")
    start = time.monotonic()
    result = kedro_cli(project, "run", env={"MLFLOW_TRACKING_URI": uri})
    elapsed = time.monotonic() - start
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: MLflow tracking server {uri} is unreachable (ConnectionError); "
        "start it, or set MLFLOW_TRACKING_URI or conf/local/mlflow.yml"
    )
    assert elapsed < 30  # session start-up included; MLflow retries for minutes
    assert written_files(project / "data") == before
