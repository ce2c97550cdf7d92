"""Tracking hooks and registry helpers, without a Kedro run."""

from __future__ import annotations

import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import free_port
from vae_pipeline.errors import InputDataError, NothingToRetrain, TrackingError
from vae_pipeline.locks import FileLock
from vae_pipeline.tracking.hooks import TrackingHooks, run_name
from vae_pipeline.tracking.registry import (
    assign_alias,
    metric_tags,
    register_run_model,
    version_by_alias,
)
from vae_pipeline.tracking.server import (
    REQUEST_LIMITS,
    bound_retries,
    check_tracking_server,
    redact,
)

DEFAULT = ("data_ingestion", "training", "evaluation", "registration", "generation")


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (None, "data_ingestion+training+evaluation+registration+generation"),
        (["generation"], "generation"),
        (
            ["__default__", "training"],
            "data_ingestion+training+evaluation+registration+generation",
        ),
        (
            ["evaluation", "data_ingestion", "training"],
            "data_ingestion+training+evaluation",
        ),
        (["retraining", "latent_comparison"], "latent_comparison+retraining"),
    ],
)
def test_run_name_spells_out_the_pipelines(names, expected):
    assert run_name(names, DEFAULT) == expected


def test_redact_hides_passwords_only():
    assert redact("http://alice:s3cret@host:5000/x") == "http://alice:***@host:5000/x"
    assert redact("http://host:5000") == "http://host:5000"


def test_unreachable_server_fails_fast_naming_the_uri():
    uri = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(TrackingError, match=rf"^MLflow tracking server {uri} is"):
        check_tracking_server(uri, timeout=2)
    assert time.monotonic() - start < 5


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"status": 200})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", handler
    server.shutdown()


def test_answering_server_passes_and_an_erroring_one_does_not(health_server):
    uri, handler = health_server
    check_tracking_server(uri)
    handler.status = 503
    with pytest.raises(TrackingError, match=r"unreachable \(HTTP 503\)"):
        check_tracking_server(uri)


def test_local_stores_are_not_probed():
    check_tracking_server("sqlite:///nowhere/mlflow.db")
    check_tracking_server("file:///nowhere/mlruns")


def test_metric_tags_keep_finite_summary_values():
    tags = metric_tags(
        {"test.kl": 1.5, "training.loss": float("nan"), "test.kl_per_dimension.3": 2.0}
    )
    assert tags == {"metric.test.kl": "1.5"}


def test_register_versions_and_move_the_alias(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'registry.db'}")
    experiment = client.create_experiment("e", artifact_location=str(tmp_path))
    run = client.create_run(experiment)
    source = f"runs:/{run.info.run_id}/model"
    assert version_by_alias(client, "vae", "champion") is None
    first = register_run_model(
        client, name="vae", model_uri=source, run_id=run.info.run_id, tags={"a": "1"}
    )
    second = register_run_model(
        client, name="vae", model_uri=source, run_id=run.info.run_id
    )
    assert (int(first.version), int(second.version)) == (1, 2)
    assert client.get_model_version("vae", "1").tags == {"a": "1"}
    assert version_by_alias(client, "vae", "champion") is None
    assign_alias(client, first, "champion")
    assert int(version_by_alias(client, "vae", "champion").version) == 1
    assign_alias(client, second, "champion")
    assert int(version_by_alias(client, "vae", "champion").version) == 2
    assert mlflow.get_tracking_uri() != client.tracking_uri


def test_a_read_only_sqlite_store_fails_fast_naming_it(tmp_path, monkeypatch):
    store = tmp_path / "mlflow.db"
    store.touch()
    check_tracking_server(f"sqlite:///{store}")  # writable: passes
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != store)
    with pytest.raises(TrackingError, match=rf"store {store} is read-only"):
        check_tracking_server(f"sqlite:///{store}")


def test_a_lock_never_truncates_a_file_it_did_not_write(tmp_path):
    precious = tmp_path / "notes.txt"
    precious.write_text("a user's file")
    with pytest.raises(InputDataError, match=r"parameter x.lock: .* not a lock"):
        FileLock(precious, parameter="x.lock").acquire()
    assert precious.read_text() == "a user's file"
    lock = FileLock(tmp_path / "a.lock", parameter="x.lock")
    lock.acquire()
    assert lock.path.read_text() == f"pid {os.getpid()}"
    lock.release()
    FileLock(lock.path, parameter="x.lock").acquire()  # its own released lock file


def test_mlflow_retries_are_bounded_unless_the_user_set_them(monkeypatch):
    for name in REQUEST_LIMITS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    bound_retries()
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "5"


@pytest.fixture
def tracked_run(tmp_path, monkeypatch) -> Iterator[TrackingHooks]:
    """An MLflow run open as kedro-mlflow opens one, seen by the hooks."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    hooks = TrackingHooks()
    hooks._project_path = tmp_path  # noqa: SLF001 (set by after_context_created)
    with mlflow.start_run():
        yield hooks


def test_a_failed_run_leaves_the_registry_as_it_found_it(tracked_run):
    client = MlflowClient()
    earlier = client.create_run(mlflow.active_run().info.experiment_id)
    source = f"runs:/{earlier.info.run_id}/model"
    first = register_run_model(
        client, name="vae", model_uri=source, run_id=earlier.info.run_id
    )
    assign_alias(client, first, "champion")
    tracked_run.before_pipeline_run({"run_id": "r"})
    run_id = mlflow.active_run().info.run_id
    second = register_run_model(client, name="vae", model_uri=source, run_id=run_id)
    assign_alias(client, second, "champion")
    tracked_run.on_pipeline_error(RuntimeError("a node failed"))
    versions = client.search_model_versions("name='vae'")
    assert [int(v.version) for v in versions] == [1]
    assert {
        k: int(v) for k, v in client.get_registered_model("vae").aliases.items()
    } == {"champion": 1}
    assert client.get_run(run_id).info.lifecycle_stage == "active"


def test_a_skipped_run_leaves_no_mlflow_run(tracked_run):
    tracked_run.before_pipeline_run({"run_id": "r"})
    run_id = mlflow.active_run().info.run_id
    mlflow.end_run("FAILED")  # kedro-mlflow's own on_pipeline_error, which runs first
    tracked_run.on_pipeline_error(NothingToRetrain("no new files"))
    assert MlflowClient().get_run(run_id).info.lifecycle_stage == "deleted"


def test_a_relative_sqlite_store_is_the_projects_wherever_the_process_runs():
    from vae_pipeline.tracking.server import absolute_sqlite_uri

    assert absolute_sqlite_uri("sqlite:///mlflow.db", "/srv/project") == (
        "sqlite:////srv/project/mlflow.db"
    )
    for unchanged in (
        "sqlite:////abs/mlflow.db",
        "sqlite:///:memory:",
        "http://h:5000",
    ):
        assert absolute_sqlite_uri(unchanged, "/srv/project") == unchanged
