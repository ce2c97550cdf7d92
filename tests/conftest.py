"""Shared fixtures: the project's catalog pointed at a temporary data folder."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest

# The project-copy helpers are the benchmarks'; re-exported for the tests.
from benchmarks.support import (  # noqa: F401
    BINARIZED_MNIST_DIR,
    MNIST_DIR,
    MNIST_IMAGES,
    MNIST_LABELS,
    PROJECT_ROOT,
    base_parameters,
    build_catalog,
    cli_env,
    copy_data_skeleton,
    free_port,
    kedro_command,
    make_project_copy,
    model_options,
    project_config,
    relocate_catalog_entry,
    run_in_memory,
    serve_command,
    typed_params,
    wait_for,
)
from kedro.io import DataCatalog
from mlflow.tracking import MlflowClient

import vae_pipeline  # noqa: F401 (its filter of the warning below)

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")

# kedro-mlflow 2.0.3 defines KedroPipelineModel(PythonModel) without type hints on
# predict, and MLflow warns once per process when that class is defined, under a
# "once" filter of its own that no filterwarnings entry overrides. The tests define
# it here, before any test loads kedro-mlflow's CLI: the warning is discarded, or
# where Kedro's logging has taken warnings over, dropped by the same filter as on
# the console (vae_pipeline/__init__.py).
with warnings.catch_warnings(record=True):
    import kedro_mlflow.mlflow  # noqa: F401


@pytest.fixture(autouse=True, scope="session")
def mlflow_tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Keep MLflow out of the project: catalogs built by tests log here."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.end_run()
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="session", autouse=True)
def _log_file_outside_the_repository(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Kedro configures this process's logging from the ``conf/logging.yml`` of
    the folder pytest starts in, whose file handler writes ``info.log`` there, into
    the repository; the tests' log file goes to a temporary folder instead."""
    from kedro.framework.project import LOGGING

    handler = LOGGING.data.get("handlers", {}).get("info_file_handler")
    if handler is not None:
        handler["filename"] = str(tmp_path_factory.mktemp("logs") / "info.log")
        LOGGING.configure(LOGGING.data)


@pytest.fixture(autouse=True)
def _end_mlflow_run() -> Iterator[None]:
    """Datasets that log outside ``kedro run`` start a run; close it per test."""
    yield
    mlflow.end_run()


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """A fresh copy of the project's data-layer skeleton."""
    return copy_data_skeleton(tmp_path / "project")


@pytest.fixture
def make_catalog(data_root: Path) -> Callable[..., DataCatalog]:
    """Build the project catalog under ``data_root``, with entries overridden."""
    return functools.partial(build_catalog, data_root)


@pytest.fixture
def run_pipeline() -> Callable[..., dict[str, Any]]:
    """Run a pipeline in memory with parameters given as model objects."""
    return run_in_memory


def require(available: bool, what: str, how: str) -> None:
    """Skip a test whose outside requirement is missing, naming how to get it.

    The README's test command installs them where the machine allows; CI sets
    ``VAE_PIPELINE_REQUIRE_SERVICES`` so that a missing one fails instead.
    """
    if available:
        return
    message = f"{what} is not installed ({how})"
    if os.environ.get("VAE_PIPELINE_REQUIRE_SERVICES"):
        pytest.fail(message)
    pytest.skip(message)


def dead_pid() -> int:
    """The pid of a process that has exited (what a ``kill -9`` leaves behind)."""
    process = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(process.stdout)


def aliases(client: MlflowClient, name: str = "vae_pipeline") -> dict[str, int]:
    """A registered model's aliases; a server gives versions as text, SQLite as int."""
    model = client.get_registered_model(name)
    return {alias: int(version) for alias, version in model.aliases.items()}


def written_files(directory: Path) -> list[Path]:
    """Files under a folder, apart from the ``.gitkeep`` placeholders."""
    return sorted(
        p for p in directory.rglob("*") if p.is_file() and p.name != ".gitkeep"
    )


def git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=project,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="session")
def tracked_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project copy in git where the default ``kedro run`` ran twice, shared by
    the tests that read what a run leaves (MLflow, data layers, the notebook);
    each console output is kept as ``console-<n>.log``."""
    root = make_project_copy(tmp_path_factory.mktemp("tracked") / "project")
    (root / ".gitignore").write_text("data/\nmlflow.db\nmlruns/\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "project")
    for index in range(2):
        result = kedro_cli(root, "run", subprocess_run=True)  # the console, whole
        assert_ok(result)
        (root / f"console-{index}.log").write_text(result.stdout + result.stderr)
    return root


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project after its first ``kedro run`` (version 1 is ``@champion``), built
    once per worker. Never run in: a test that runs kedro takes a copy (its MLflow
    experiment keeps this project's artifact folder, where each run writes under
    its own id)."""
    project = make_project_copy(tmp_path_factory.mktemp("trained") / "project")
    assert_ok(kedro_cli(project, "run"))
    return project


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of the project to run the CLI in."""
    return make_project_copy(tmp_path / "cli-project")


def kedro_cli(
    project: Path,
    *args: str,
    env: dict[str, str] | None = None,
    subprocess_run: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``kedro <args>`` in a project folder, as a user would.

    MLflow tracks into the project folder's own store unless ``env`` sets
    ``MLFLOW_TRACKING_URI``. The command runs in this process, through Click's
    test runner as Kedro's own CLI tests do, which saves the 10 to 15 s of
    starting Python, TensorFlow and Kedro again; ``subprocess_run`` runs it as
    its own process instead, for tests of what only a process shows (the console
    at start-up, object storage clients, several processes at once).
    """
    if subprocess_run:
        return subprocess.run(
            kedro_command(*args),
            cwd=project,
            env=cli_env(env),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    return _kedro_in_process(project, list(args), env or {})


def start_kedro(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``kedro <args>`` started in its own process in a project folder (for a test
    that acts while it runs), its output and errors one unbuffered text stream."""
    return subprocess.Popen(
        kedro_command(*args),
        cwd=project,
        env=cli_env({**(env or {}), "PYTHONUNBUFFERED": "1"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(process: subprocess.Popen[str], seen: Callable[[str], bool]) -> str:
    """A started process's output up to the first line ``seen`` accepts (all of
    it if none does)."""
    output = ""
    for line in process.stdout:
        output += line
        if seen(line):
            break
    return output


@contextlib.contextmanager
def _process_state_kept() -> Iterator[None]:
    """Put back what a ``kedro run`` changes in the process: working folder,
    environment, ``sys.path``, logging handlers, MLflow's URIs and active run,
    TensorFlow's op determinism and Keras's session."""
    import logging

    import keras
    from absl import logging as absl_logging
    from mlflow.tracking import fluent
    from tensorflow.python.framework import config as tf_config

    root = logging.getLogger()
    saved = (os.getcwd(), dict(os.environ), list(sys.path), root.handlers[:])
    # Configuring logging closes every handler's stream that is not sys.stderr,
    # TensorFlow's absl handler's included: pytest's capture, outside a runner.
    absl = absl_logging.get_absl_handler().python_handler
    absl_stream = absl.stream
    tracking, experiment = mlflow.get_tracking_uri(), fluent._active_experiment_id  # noqa: SLF001
    try:
        yield
    finally:
        mlflow.end_run()
        # MLflow keeps its URIs and experiment in globals and in the environment.
        mlflow.set_tracking_uri(tracking)
        mlflow.set_registry_uri(None)  # the tracking URI's, as before the run
        fluent._active_experiment_id = experiment  # noqa: SLF001 (no public reset)
        cwd, environ, path, handlers = saved
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
        sys.path[:] = path
        root.handlers[:] = handlers
        absl.setStream(absl_stream)
        tf_config.disable_op_determinism()  # a run with training.deterministic
        keras.backend.clear_session()


def _kedro_in_process(
    project: Path, args: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``kedro <args>`` through Click's ``CliRunner``, with what a run changes in
    the process put back after (:func:`_process_state_kept`)."""
    import traceback

    from absl import logging as absl_logging
    from click.testing import CliRunner
    from kedro.framework.cli.cli import KedroCLI
    from kedro.framework.project import LOGGING

    runner = CliRunner()
    overrides = cli_env(env)
    overrides["MLFLOW_TRACKING_URI"] = env.get("MLFLOW_TRACKING_URI")
    code: int | str | None = 0
    with _process_state_kept():
        os.chdir(project)
        with runner.isolation(env=overrides) as (stdout, stderr, _):
            absl_logging.get_absl_handler().python_handler.setStream(sys.stderr)
            LOGGING.configure(LOGGING.data)  # its console writes to this runner
            try:
                KedroCLI(project_path=project).main(args=args, prog_name="kedro")
            except SystemExit as exit_:
                code = exit_.code
            except Exception:  # noqa: BLE001 (a process prints it and exits 1)
                sys.stderr.write(traceback.format_exc())
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            output = (stdout.getvalue().decode(), stderr.getvalue().decode())
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message")
        output = (output[0], output[1] + f"{code}\n")
        code = 1
    return subprocess.CompletedProcess(["kedro", *args], code, *output)


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1000",
    "--virtual-time-budget=20000",
)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's headless Chromium (``apt-get install chromium``)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    require(found is not None, "Chromium", "apt-get install chromium")
    return found


def browse(chromium: str, url: str, *args: str) -> str:
    """Open ``url`` in headless Chromium with ``args`` (``--dump-dom``,
    ``--screenshot=...``); its standard output."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def model_report(client: MlflowClient, project: Path, version: Any) -> str:
    """The report page of a registered version, checked to be the same in its
    MLflow run (``reports/model_report.html``) and under ``data/08_reporting``
    (the run's save version), and to reference nothing outside itself."""
    run = client.get_run(version.run_id)
    with tempfile.TemporaryDirectory() as folder:
        logged = Path(
            client.download_artifacts(
                version.run_id, "reports/model_report.html", folder
            )
        ).read_text()
    pages = project / "data/08_reporting/model_report.html"
    local = pages / run.data.tags["kedro.run_id"] / "model_report.html"
    assert local.read_text() == logged
    assert f"vae_pipeline version {version.version}</h1>" in logged
    references = re.findall(r'(?:src|href)="([^"]*)"', logged)
    assert references, "no figure in the report"
    assert all(ref.startswith("data:image/png;base64,") for ref in references)
    assert "<script" not in logged and "<link" not in logged
    return logged
