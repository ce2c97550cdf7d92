"""``kedro run`` against a real MLflow tracking server backed by PostgreSQL.

The fixture starts Debian's PostgreSQL (``initdb`` + ``pg_ctl``, as the
``postgres`` user when run as root) and ``mlflow server`` on 127.0.0.1, and stops
both afterwards. Without PostgreSQL installed the test is skipped, unless
``VAE_PIPELINE_REQUIRE_SERVICES`` is set (CI installs it and sets it).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import (
    aliases,
    free_port,
    kedro_cli,
    read_until,
    require,
    start_kedro,
    wait_for,
)

# Evaluation's, and the prior samples of the registered version's report.
REPORTED_FIGURES = {
    "latent_distributions.png",
    "latent_scatter.png",
    "reconstructions.png",
    "training_curves.png",
    "prior_samples.png",
}


def postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run as the ``postgres`` user then."""
    return (
        ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command
    )


@pytest.fixture(scope="module")
def postgres_uri() -> Iterator[str]:
    bin_dir = postgres_bin()
    require(bin_dir is not None, "PostgreSQL", "apt-get install postgresql")
    # Outside pytest's root-only tmp folders, so that the postgres user can enter.
    root = Path(tempfile.mkdtemp(prefix="vae-pipeline-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()

    def pg(tool: str, *args: str) -> None:
        subprocess.run(
            as_postgres_user([str(bin_dir / tool), *args]),
            check=True,
            capture_output=True,
            timeout=120,
        )

    pg(
        "initdb",
        "-D",
        str(data),
        "-U",
        "postgres",
        "--auth=trust",
        "--no-locale",
        "-E",
        "UTF8",
    )
    pg(
        "pg_ctl", "-D", str(data), "-l", str(root / "postgres.log"), "-w",
        "-o", f"-p {port} -h 127.0.0.1 -k {root}", "start",
    )  # fmt: skip
    try:
        pg("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "mlflow")
        yield f"postgresql://postgres@127.0.0.1:{port}/mlflow"
    finally:
        pg("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def tracking_server(
    postgres_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    artifacts = tmp_path_factory.mktemp("server-artifacts")
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", postgres_uri,
            "--artifacts-destination", str(artifacts),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{uri}/health", seconds=180, process=process)
        yield uri
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_training_and_evaluation_tracked_on_a_postgresql_backed_server(
    tracking_server: str, postgres_uri: str, project_copy: Path
):
    result = kedro_cli(
        project_copy,
        "run",
        "--pipelines",
        "data_ingestion,training,evaluation,registration",
        env={"MLFLOW_TRACKING_URI": tracking_server},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (project_copy / "mlflow.db").exists()

    client = MlflowClient(tracking_server)
    experiment = client.get_experiment_by_name("vae_pipeline")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "data_ingestion+training+evaluation+registration"
    assert run.data.params["training.model.latent_dim"] == "8"
    history = client.get_metric_history(run.info.run_id, "training.val_loss")
    assert [m.step for m in history] == list(range(1, len(history) + 1))
    assert "test.negative_elbo" in run.data.metrics
    figures = {
        Path(a.path).name for a in client.list_artifacts(run.info.run_id, "figures")
    }
    assert figures == REPORTED_FIGURES
    reports = client.list_artifacts(run.info.run_id, "reports")
    assert "model_report.html" in {Path(a.path).name for a in reports}
    (version,) = client.search_model_versions("name='vae_pipeline'")
    assert version.run_id == run.info.run_id
    assert float(version.tags["metric.test.negative_elbo"]) == pytest.approx(
        run.data.metrics["test.negative_elbo"]
    )
    assert aliases(client) == {"champion": 1}

    # The records are in PostgreSQL, not in some local fallback store.
    count = subprocess.run(
        ["psql", postgres_uri, "-tAc", "SELECT count(*) FROM runs"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert count == "1"


def start_sqlite_server(
    root: Path,
    port: int,
    *,
    artifacts: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """``mlflow server`` on a SQLite store, in its own process group; artifacts in
    ``root/artifacts`` unless ``artifacts`` names another destination."""
    return subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
            "--artifacts-destination", artifacts or str(root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGKILL)  # the server and its workers
    server.wait(timeout=30)


def test_a_server_that_dies_mid_run_fails_the_run_fast_registering_nothing(
    project_copy: Path, tmp_path: Path
):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_sqlite_server(tmp_path, port)
    try:
        wait_for(f"{uri}/health", seconds=180, process=server)
        run = start_kedro(project_copy, "run", env={"MLFLOW_TRACKING_URI": uri})
        output = read_until(run, lambda line: "epoch 2/" in line)
        stop(server)
        died = time.monotonic()
        output += run.stdout.read()
        assert run.wait(timeout=300) == 1, output[-3000:]
        assert time.monotonic() - died < 120  # MLflow alone retries for minutes
        last_line = output.strip().splitlines()[-1]
        assert last_line.startswith("Error: ") and f"127.0.0.1:{port}" in last_line
        assert "Traceback" not in output
    finally:
        if server.poll() is None:
            stop(server)
    server = start_sqlite_server(tmp_path, port)  # back, on the same store
    try:
        wait_for(f"{uri}/health", seconds=180, process=server)
        client = MlflowClient(uri)
        assert client.search_model_versions("name='vae_pipeline'") == []
        experiment = client.get_experiment_by_name("vae_pipeline").experiment_id
        (left,) = client.search_runs([experiment])
        assert left.info.status == "RUNNING"  # until the next run marks it KILLED
    finally:
        stop(server)
