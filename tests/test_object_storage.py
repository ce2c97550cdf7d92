"""The project on object storage: ``kedro run --env s3`` against an S3-compatible
server on 127.0.0.1 (moto's server mode, as kedro-datasets' own tests use).

One bucket where the default run ran once, end to end (``deployed``), and in any
order from there: a retraining whose drift gate quarantines a batch of noise in
the bucket, then one that consumes a batch of digits from it; an ingestion
killed while it writes its splits (no visible partial version; the next run
removes it); a truncated object and a wrong magic number (the same one-line
errors as on disk); MLflow's artifacts in the bucket; and the Airflow DAG's
trigger watching the bucket's incoming prefix. Each test's checks are relative
to the bucket as the test found it.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import s3fs
from moto.server import ThreadedMotoServer
from sklearn.datasets import load_digits

from tests.conftest import (
    assert_ok,
    free_port,
    kedro_cli,
    make_project_copy,
    start_kedro,
    wait_for,
)
from tests.tracking.test_tracking_server import start_sqlite_server, stop

BUCKET = "vae-pipeline"
SPLITS = f"{BUCKET}/data/05_model_input"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def env(endpoint: str) -> dict[str, str]:
    """AWS's usual variables, as a user on S3 sets them (conf/ holds no secret)."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": endpoint,
    }


@pytest.fixture(scope="module")
def bucket(env: dict[str, str]) -> s3fs.S3FileSystem:
    fs = s3fs.S3FileSystem(
        key=env["AWS_ACCESS_KEY_ID"],
        secret=env["AWS_SECRET_ACCESS_KEY"],
        endpoint_url=env["AWS_ENDPOINT_URL_S3"],
    )
    fs.mkdir(BUCKET)
    return fs


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project_copy(tmp_path_factory.mktemp("s3") / "project")


def committed(bucket: s3fs.S3FileSystem) -> dict:
    bucket.invalidate_cache()
    records = sorted(bucket.glob(f"{SPLITS}/data_version.json/*/data_version.json"))
    return json.loads(bucket.cat_file(records[-1]))


def put_npz(bucket: s3fs.S3FileSystem, key: str, images: np.ndarray, labels=None):
    buffer = io.BytesIO()
    arrays = {"x": images} if labels is None else {"x": images, "y": labels}
    np.savez(buffer, **arrays)
    bucket.pipe_file(f"{BUCKET}/{key}", buffer.getvalue())


def run_s3(project: Path, env: dict[str, str], *args: str):
    return kedro_cli(project, "run", "--env", "s3", *args, env=env, subprocess_run=True)


@pytest.fixture(scope="module")
def deployed(
    project: Path, env: dict[str, str], bucket
) -> tuple[subprocess.CompletedProcess[str], dict]:
    """The default run in the bucket, once: its result and the data version it
    committed (the latest until another test commits one)."""
    result = run_s3(project, env)
    assert_ok(result)
    return result, committed(bucket)


def test_the_default_run_keeps_every_data_layer_in_the_bucket(
    deployed, project, bucket
):
    result, record = deployed
    assert f"model: s3://{BUCKET}/data/06_models/vae.keras/" in result.stdout
    assert (
        f"data version: {record['version']} (s3://{BUCKET}/data/05_model_input)"
        in result.stdout
    )
    for split in ("train", "validation", "test"):
        version = record["splits"][split]["version"]
        assert bucket.isfile(f"{SPLITS}/{split}/{version}/{split}/manifest.json")
    assert bucket.glob(f"{BUCKET}/data/06_models/vae.keras/*/vae.keras")
    assert bucket.glob(f"{BUCKET}/data/08_reporting/evaluation_metrics.json/*/*")
    figures = f"{BUCKET}/data/08_reporting/*.png/{record['version']}/*.png"
    assert len(bucket.glob(figures)) == 7
    # Nothing in the local data layers; figures still logged to the MLflow run.
    local = [p for p in (project / "data").rglob("*") if p.is_file()]
    assert {p.name for p in local} <= {".gitkeep"} | {
        p.name for p in (project / "data/06_models/checkpoints").rglob("*")
    }
    assert list((project / "mlruns").rglob("figures/reconstructions.png"))


def test_retraining_quarantines_then_consumes_batches_in_the_bucket(
    deployed, project, env, bucket
):
    before = committed(bucket)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (60, 8, 8), dtype=np.uint8)
    put_npz(bucket, "data/01_raw/incoming/2026-11-23/noise.npz", noise)
    result = run_s3(project, env, "--pipelines", "retraining")
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    quarantine = f"s3://{BUCKET}/data/01_raw/quarantine/2026-11-23"
    assert line.startswith(
        f"Error: the drift gate refused new data, nothing merged: 2026-11-23 (moved "
        f"to {quarantine}): "
    ), line
    bucket.invalidate_cache()
    assert bucket.isfile(f"{quarantine}/noise.npz")
    assert b"Kolmogorov" in bucket.cat_file(f"{quarantine}/.quarantine-reason.txt")
    assert not bucket.exists(f"{BUCKET}/data/01_raw/incoming/2026-11-23")
    assert committed(bucket) == before

    digits = load_digits()
    chosen = rng.choice(len(digits.images), 60, replace=False)
    images = (digits.images[chosen] * 255 / 16).astype(np.uint8)
    put_npz(
        bucket, "data/01_raw/incoming/2026-11-24/new.npz", images, digits.target[chosen]
    )
    result = run_s3(project, env, "--pipelines", "retraining")
    assert_ok(result)
    record = committed(bucket)
    assert f"data version: {record['version']} (s3://" in result.stdout
    assert record["parent"] == before["version"]
    assert list(record["incoming"]) == ["2026-11-24/new.npz"]
    assert record["splits"]["train"]["num_examples"] == (
        before["splits"]["train"]["num_examples"] + 54
    )


def test_a_killed_ingestion_leaves_no_visible_version(deployed, project, env, bucket):
    before = committed(bucket)
    rng = np.random.default_rng(1)
    put_npz(
        bucket,
        "data/01_raw/images.npz",
        rng.integers(0, 256, (30000, 28, 28), dtype=np.uint8),
    )
    process = start_kedro(
        project, "run", "--env", "s3", "--pipelines", "data_ingestion",
        "--params", "data_ingestion.source=npz", env=env,
    )  # fmt: skip
    folders = set(bucket.ls(f"{SPLITS}/train", detail=False))
    deadline = time.monotonic() + 120
    while set(bucket.ls(f"{SPLITS}/train", detail=False, refresh=True)) == folders:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # while it writes the train split's shards
    output = process.communicate(timeout=60)[0]
    assert process.returncode == -signal.SIGKILL, output[-3000:]
    assert committed(bucket) == before
    bucket.invalidate_cache()
    written = set(bucket.ls(f"{SPLITS}/train", detail=False))
    assert len(written) == len(set(committed_versions(bucket, "train"))) + 1

    # The next ingestion commits its own version and removes the killed one's.
    result = run_s3(project, env, "--pipelines", "data_ingestion")
    assert_ok(result)
    assert "which died before committing it" in result.stdout
    bucket.invalidate_cache()
    assert set(bucket.ls(f"{SPLITS}/train", detail=False)) == {
        f"{SPLITS}/train/{version}" for version in committed_versions(bucket, "train")
    }


def committed_versions(bucket: s3fs.S3FileSystem, split: str) -> list[str]:
    records = bucket.glob(f"{SPLITS}/data_version.json/*/data_version.json")
    return [json.loads(bucket.cat_file(r))["splits"][split]["version"] for r in records]


@pytest.mark.parametrize(
    ("key", "content", "source", "message"),
    [
        ("data/01_raw/images.npz", b"PK\x03\x04 truncated", "npz",
         "s3://vae-pipeline/data/01_raw/images.npz: not a readable NPZ archive"),
        ("data/01_raw/idx/train-images-idx3-ubyte.gz", b"\x00\x00\x08\x09" + bytes(12),
         "idx", "s3://vae-pipeline/data/01_raw/idx/train-images-idx3-ubyte.gz: "
         "wrong IDX magic number 2057"),
    ],
)  # fmt: skip
def test_a_bad_object_gives_the_same_one_line_error_as_on_disk(
    deployed, project, env, bucket, key, content, source, message
):
    before = committed(bucket)
    bucket.pipe_file(f"{BUCKET}/{key}", content)
    result = run_s3(
        project, env, "--pipelines", "data_ingestion",
        "--params", f"data_ingestion.source={source}",
    )  # fmt: skip
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"Error: {message}"), last_line
    assert committed(bucket) == before


PREDICT = (
    "import mlflow, numpy as np; "
    "model = mlflow.pyfunc.load_model('models:/vae_pipeline@champion'); "
    "print(sorted((k, v.shape) for k, v in model.predict("
    "np.zeros((3, 8, 8, 1), np.float32)).items()))"
)


def test_mlflow_artifacts_in_the_bucket_load_back(tmp_path, env, bucket):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_sqlite_server(
        tmp_path, port, artifacts=f"s3://{BUCKET}/mlartifacts", env=env
    )
    try:
        wait_for(f"{uri}/health", seconds=180, process=server)
        project = make_project_copy(tmp_path / "project")
        tracked = {**env, "MLFLOW_TRACKING_URI": uri}
        assert_ok(
            kedro_cli(project, "run", "--env", "s3", env=tracked, subprocess_run=True)
        )
        bucket.invalidate_cache()
        stored = bucket.glob(f"{BUCKET}/mlartifacts/**/MLmodel")
        assert stored, "the model's files are not in the bucket"
        assert bucket.glob(f"{BUCKET}/mlartifacts/**/figures/reconstructions.png")
        assert not list((project / "mlruns").rglob("MLmodel"))  # nothing local
        loaded = subprocess.run(
            [sys.executable, "-c", PREDICT],
            env={**os.environ, **tracked},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert loaded.returncode == 0, loaded.stderr[-3000:]
        assert loaded.stdout.strip().splitlines()[-1] == (
            "[('log_likelihood', (3,)), ('outlier', (3,)), ('outlier_threshold', "
            "(1,)), ('reconstruction', (3, 8, 8, 1)), ('z_log_var', (3, 8)), "
            "('z_mean', (3, 8))]"
        )
    finally:
        stop(server)


def test_the_airflow_trigger_watches_the_bucket(
    project: Path, env: dict[str, str], bucket, monkeypatch: pytest.MonkeyPatch
):
    """With ``--env s3`` the DAG's trigger lists the bucket's incoming prefix, by
    ETag, and fires once a new batch there has settled."""
    import asyncio

    from tests.conftest import require
    from tests.test_airflow_dag import airflow_installed

    require(airflow_installed(), "Airflow", "pip install -r requirements-airflow.lock")
    from vae_pipeline.triggers import IncomingBatchTrigger

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    batch = f"{BUCKET}/data/01_raw/incoming/watched-{time.time_ns()}"
    trigger = IncomingBatchTrigger(
        project_path=str(project), env="s3", quiet_seconds=0.5, poke_interval=0.2
    )

    async def first_event_for_the_batch() -> dict:
        run = trigger.run()
        bucket.pipe(f"{batch}/a.npz", b"first piece")
        try:
            while True:
                event = await asyncio.wait_for(anext(run), timeout=60)
                if event.payload["batch"] == batch.rsplit("/", 1)[1]:
                    return event.payload
        finally:
            await run.aclose()

    try:
        payload = asyncio.run(first_event_for_the_batch())
    finally:
        bucket.rm(batch, recursive=True)
    name = batch.rsplit("/", 1)[1]
    assert payload == {"batch": name, "files": [f"{name}/a.npz"]}
