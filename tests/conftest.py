"""Shared fixtures: the project's catalog pointed at a temporary data folder."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner
from mlflow.tracking import MlflowClient

from vae_pipeline.params import P, merged

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = PROJECT_ROOT.parent / "shared" / "data" / "mnist"
MNIST_IMAGES = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
MNIST_LABELS = MNIST_DIR / "t10k-labels-idx1-ubyte.gz"
BINARIZED_MNIST_DIR = PROJECT_ROOT.parent / "shared" / "data" / "binarized_mnist"

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")


@functools.cache
def base_parameters() -> dict[str, Any]:
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="base"
    )
    return dict(loader["parameters"])


def typed_params(params_class: type[P], group: str, /, **overrides: Any) -> P:
    """A parameter group as the project ships it (``conf/base``, not a user's
    ``conf/local``), with some values overridden, validated as ``params_class``."""
    return params_class.model_validate(merged(base_parameters()[group], overrides))


def model_options(**overrides: Any) -> dict[str, Any]:
    """``build_vae`` options: the project's ``training.model``, some overridden."""
    return merged(base_parameters()["training"]["model"], overrides)


def project_config(key: str, *, env: str = "local") -> dict[str, Any]:
    """The project's own configuration (``conf/base`` + ``conf/<env>``), loaded as
    ``kedro run --env <env>`` loads it."""
    from vae_pipeline.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"),
        **{**CONFIG_LOADER_ARGS, "default_run_env": env},
    )
    return dict(loader[key])


def relocate_catalog_entry(config: dict[str, Any], root: Path) -> dict[str, Any]:
    """A catalog entry with its ``data/`` paths (wrapped datasets too) under root."""
    relocated = dict(config)
    for key in ("filepath", "path"):
        value = relocated.get(key)
        if isinstance(value, str) and value.startswith("data/"):
            relocated[key] = str(root / value)
    if isinstance(relocated.get("dataset"), dict):
        relocated["dataset"] = relocate_catalog_entry(relocated["dataset"], root)
    return relocated


def copy_data_skeleton(root: Path) -> Path:
    """Recreate the project's data layers (their ``.gitkeep`` files) under ``root``."""
    for gitkeep in (PROJECT_ROOT / "data").rglob(".gitkeep"):
        target = root / gitkeep.relative_to(PROJECT_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
    return root


def build_catalog(data_root: Path, **overrides: dict[str, Any]) -> DataCatalog:
    """The project catalog with data paths under ``data_root``, entries overridden."""
    config = {
        name: relocate_catalog_entry(entry, data_root)
        for name, entry in project_config("catalog").items()
    }
    config.update(overrides)
    return DataCatalog.from_config(config)


def run_in_memory(
    pipeline: Pipeline, catalog: DataCatalog, params: dict[str, Any]
) -> dict[str, Any]:
    """Run a pipeline with SequentialRunner; parameters given as model objects."""
    for name, value in params.items():
        catalog[f"params:{name}"] = value
    return SequentialRunner().run(pipeline, catalog)


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


def serve_command(
    python: str | Path, *, port: int, model_uri: str = "models:/vae_pipeline@champion"
) -> list[str]:
    """``mlflow models serve`` of ``model_uri`` on 127.0.0.1 with ``python``'s
    packages (``--env-manager local``: no environment is built)."""
    return [
        str(python),
        *("-m", "mlflow", "models", "serve", "-m", model_uri),
        *("--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)),
    ]


def wait_for(url: str, *, seconds: float, process: subprocess.Popen) -> None:
    """Wait until a server process answers ``url``; fail at once if it exits."""
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr
            log = stderr.read().decode(errors="replace")[-3000:] if stderr else ""
            raise RuntimeError(
                f"{process.args[:4]} exited ({process.returncode}): {log}"
            )
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer in {seconds} s")


def dead_pid() -> int:
    """The pid of a process that has exited (what a ``kill -9`` leaves behind)."""
    process = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(process.stdout)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
        result = kedro_cli(root, "run")
        assert_ok(result)
        (root / f"console-{index}.log").write_text(result.stdout + result.stderr)
    return root


def make_project_copy(root: Path) -> Path:
    """A copy of the project (configuration and data skeleton) at ``root``."""
    shutil.copytree(
        PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local")
    )
    (root / "conf" / "local").mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, root / name)
    (root / "src").mkdir()  # Kedro requires it; the package itself is installed
    return copy_data_skeleton(root)


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of the project to run the CLI in."""
    return make_project_copy(tmp_path / "cli-project")


def kedro_command(*args: str) -> list[str]:
    """``kedro <args>`` from this environment."""
    return [str(Path(sys.executable).with_name("kedro")), *args]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI run: MLflow tracks into the project folder's own
    store unless ``extra`` sets ``MLFLOW_TRACKING_URI``."""
    inherited = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return {
        **inherited,
        "COLUMNS": "200",
        "VAE_PIPELINE_TRACEBACK": "",
        **(extra or {}),
    }


def kedro_cli(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``kedro <args>`` in a project folder, as a user would.

    MLflow tracks into the project folder's own store unless ``env`` sets
    ``MLFLOW_TRACKING_URI``.
    """
    return subprocess.run(
        kedro_command(*args),
        cwd=project,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
