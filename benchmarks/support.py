"""What the benchmarks share: the data they measure on, project copies, timing.

Imports only NumPy and the standard library at module level, so
``pythae_baseline.py`` can use it from a virtual environment without the project.
The test suite's fixtures build on the same project-copy helpers.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
MNIST_DIR = SHARED_DATA / "mnist"
MNIST_IMAGES = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
MNIST_LABELS = MNIST_DIR / "t10k-labels-idx1-ubyte.gz"
BINARIZED_MNIST_DIR = SHARED_DATA / "binarized_mnist"
_IDX_UINT8 = 0x08

P = TypeVar("P")


def read_idx(path: Path) -> np.ndarray:
    """An unsigned-byte IDX file (gzip or raw) as an array of the shape its header
    gives. The project reads IDX through ``vae_pipeline.datasets``; this copy is
    for the benchmarks that run where the project is not installed."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        data = stream.read()
    if data[:2] != b"\0\0" or data[2] != _IDX_UINT8:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def mnist() -> np.ndarray:
    """The 10,000 MNIST test images, (N, 28, 28) uint8."""
    return read_idx(MNIST_IMAGES)


def log_time(log: str, text: str) -> datetime:
    """When Kedro's plain log first printed a line containing ``text``."""
    line = next(line for line in log.splitlines() if text in line)
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")


def node_seconds(log: str, first: str, last: str | None = None) -> float:
    """Seconds from the start of node ``first`` to the end of node ``last``
    (``first`` when None; its outputs saved), from Kedro's plain log lines."""
    started = log_time(log, f"Running node: {first}")
    return (log_time(log, f"Completed node: {last or first}") - started).total_seconds()


@functools.cache
def base_parameters() -> dict[str, Any]:
    """The parameters as the project ships them (``conf/base``)."""
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="base"
    )
    return dict(loader["parameters"])


def typed_params(params_class: type[P], group: str, /, **overrides: Any) -> P:
    """A parameter group as the project ships it (``conf/base``, not a user's
    ``conf/local``), with some values overridden, validated as ``params_class``."""
    from vae_pipeline.params import merged

    return params_class.model_validate(merged(base_parameters()[group], overrides))


def model_options(**overrides: Any) -> dict[str, Any]:
    """``build_vae`` options: the project's ``training.model``, some overridden."""
    from vae_pipeline.params import merged

    return merged(base_parameters()["training"]["model"], overrides)


def training_recipe(*envs: str, overrides: str = "") -> dict[str, Any]:
    """``training`` of each environment's ``parameters_training.yml`` in turn
    (``training.model`` merged key by key), then ``overrides`` in ``kedro run
    --params`` syntax (``training.a.b=value,...``, values parsed as YAML).

    Read as plain YAML, not by Kedro's loader (:func:`project_config`): the GPU
    hosts the accelerator benchmarks run on have neither Kedro nor OmegaConf.
    """
    import yaml

    training: dict[str, Any] = {}
    for env in envs:
        path = PROJECT_ROOT / "conf" / env / "parameters_training.yml"
        layer = yaml.safe_load(path.read_text(encoding="utf-8"))["training"]
        model = {**training.get("model", {}), **layer["model"]}
        training = {**training, **layer, "model": model}
    for item in filter(None, overrides.split(",")):
        key, _, value = item.partition("=")
        *parents, leaf = key.removeprefix("training.").split(".")
        target = training
        for parent in parents:
            target = target[parent]
        if leaf not in target:
            raise SystemExit(f"--params: training has no option {key!r}")
        target[leaf] = yaml.safe_load(value)
    return training


def project_config(key: str, *, env: str = "local") -> dict[str, Any]:
    """The project's own configuration (``conf/base`` + ``conf/<env>``), loaded as
    ``kedro run --env <env>`` loads it."""
    from kedro.config import OmegaConfigLoader

    from vae_pipeline.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"),
        **{**CONFIG_LOADER_ARGS, "default_run_env": env},
    )
    return dict(loader[key])


def relocate_catalog_entry(config: dict[str, Any], root: Path) -> dict[str, Any]:
    """A catalog entry with its ``data/`` paths (wrapped datasets too) under root."""
    relocated = dict(config)
    for key in ("filepath", "path", "incoming"):  # incoming: the quarantine's
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


def build_catalog(data_root: Path, **overrides: dict[str, Any]) -> Any:
    """The project catalog with data paths under ``data_root``, entries overridden."""
    from kedro.io import DataCatalog

    config = {
        name: relocate_catalog_entry(entry, data_root)
        for name, entry in project_config("catalog").items()
    }
    config.update(overrides)
    return DataCatalog.from_config(config)


def run_in_memory(pipeline: Any, catalog: Any, params: dict[str, Any]) -> dict:
    """Run a pipeline with Kedro's SequentialRunner; parameters given as model
    objects (``{"training": TrainingParams(...)}``)."""
    from kedro.runner import SequentialRunner

    for name, value in params.items():
        catalog[f"params:{name}"] = value
    return SequentialRunner().run(pipeline, catalog)


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


def kedro(project: Path, *args: str) -> str:
    """Run ``kedro <args>`` in a project copy; its standard output, or an error
    with the end of its standard error."""
    run = subprocess.run(
        kedro_command(*args),
        cwd=project,
        env=cli_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode:
        raise RuntimeError(f"kedro {' '.join(args)} failed:\n{run.stderr[-3000:]}")
    return run.stdout


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ELBO_SAMPLES = 10  # samples of z per held-out image


def held_out_negative_elbo(model, images: np.ndarray, seed: int) -> float:
    """Mean over images of E_q[-log p(x|z)] + KL(q || p), nats, 10 samples of z."""
    terms = model.elbo(images, num_samples=ELBO_SAMPLES, seed=seed)
    return float(np.mean(terms["reconstruction"] + terms["kl"]))


def run_project_node(
    train: np.ndarray,
    held_out: np.ndarray,
    seed: int,
    overrides: dict[str, Any],
    workdir: Path,
    validation: int,
) -> tuple[float, float, float, Any]:
    """Train with the project's node (``training`` parameters as shipped, some
    overridden), early-stopping on the last ``validation`` training images.

    Returns:
        Training wall seconds, the images/s it trained (a split repeated to
        ``min_steps_per_epoch`` counts its repeats), the held-out negative
        ELBO and the trained model.
    """
    from vae_pipeline.datasets import ShardedArrayDataset
    from vae_pipeline.pipelines.training.params import TrainingParams
    from vae_pipeline.train import train_vae

    splits = {}
    fit_images, validation_images = train[:-validation], train[-validation:]
    for name, images in (("train", fit_images), ("validation", validation_images)):
        dataset = ShardedArrayDataset(filepath=str(workdir / f"{name}-{seed}"))
        dataset.save(images)
        splits[name] = dataset.load()
    config = project_config("parameters")["training"]
    config = {
        **config,
        **overrides,
        "model": {**config["model"], **overrides.get("model", {})},
        "seed": seed,
        "checkpoint_dir": str(workdir / "checkpoints"),
    }
    params = TrainingParams.model_validate(config)
    start = time.perf_counter()
    model, history = train_vae(splits["train"], splits["validation"], params)
    seconds = time.perf_counter() - start
    elbo = held_out_negative_elbo(model, held_out, seed)
    per_epoch = images_per_epoch(params, len(fit_images))
    return seconds, len(history["epoch"]) * per_epoch / seconds, elbo, model


def images_per_epoch(params: Any, num_examples: int) -> int:
    """The images the training node trains on per epoch over a split of
    ``num_examples`` (``train.epoch_plan``: a small split repeats)."""
    from vae_pipeline.train import epoch_plan

    steps, _ = epoch_plan(params, math.ceil(num_examples / params.batch_size))
    return steps * params.batch_size


def run_pythae(python: str, *args: str) -> dict[str, Any]:
    """``pythae_baseline.py`` with ``args`` in pythae's own virtual environment
    (``python``); the result it writes."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "pythae.json"
        subprocess.run(
            [python, str(Path(__file__).with_name("pythae_baseline.py")), *args]
            + ["--out", str(out)],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.read_text())
