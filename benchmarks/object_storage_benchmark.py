"""Object storage benchmark: ingestion and one training epoch, local disk vs S3.

Runs the real ``kedro run`` twice per storage in a fresh project copy: the
data-ingestion pipeline on the MNIST test set (IDX gzip, ../shared/data/mnist;
synthetic digits when absent), then the training pipeline for one epoch. "s3"
is moto's S3-compatible server on 127.0.0.1 (``kedro run --env s3``), so the
figures show the cost of the S3 protocol and of the local shard cache, not of a
network. Each command runs in its own process, so its peak RSS is its own; its
wall time includes Kedro's and TensorFlow's start-up, and images/s counts only the
nodes' time (reading, writing and training, from Kedro's log timestamps).

    python benchmarks/object_storage_benchmark.py
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ingestion_benchmark import write_inputs
from support import free_port, make_project_copy, node_seconds

KEDRO = str(Path(sys.executable).with_name("kedro"))
IDX = "data/01_raw/idx"


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    """Log, wall time and peak RSS (MiB) of one command in its own process."""
    script = (
        "import resource, subprocess, sys, json, time; "
        "start = time.perf_counter(); "
        "run = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "elapsed = time.perf_counter() - start; "
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024; "
        "print(json.dumps({'code': run.returncode, 'seconds': elapsed, "
        "'rss_mib': rss, 'log': run.stdout}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if report["code"]:
        raise RuntimeError(f"{' '.join(command)} failed in {cwd}")
    return report


def run_storage(storage: str, images: Path, labels: Path, env: dict[str, str]):
    root = Path(tempfile.mkdtemp(prefix=f"vae-bench-{storage}-"))
    project = make_project_copy(root / "project")
    args: list[str] = []
    if storage == "s3":
        import s3fs

        fs = s3fs.S3FileSystem(endpoint_url=env["AWS_ENDPOINT_URL_S3"])
        fs.put_file(str(images), f"vae-pipeline/{IDX}/train-images-idx3-ubyte.gz")
        fs.put_file(str(labels), f"vae-pipeline/{IDX}/train-labels-idx1-ubyte.gz")
        args = ["--env", "s3"]
    else:
        (project / IDX).mkdir(parents=True, exist_ok=True)
        shutil.copy(images, project / IDX / "train-images-idx3-ubyte.gz")
        shutil.copy(labels, project / IDX / "train-labels-idx1-ubyte.gz")
    env = {**env, "TMPDIR": str(root)}  # the shard cache, emptied per storage
    ingest = timed(
        [KEDRO, "run", "--pipelines", "data_ingestion", *args,
         "--params", "data_ingestion.source=idx"],
        project,
        env,
    )  # fmt: skip
    train = timed(
        [KEDRO, "run", "--pipelines", "training", *args,
         "--params", "training.epochs=1,training.min_steps_per_epoch=0"],
        project,
        env,
    )  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)
    ingest["node_seconds"] = node_seconds(
        ingest["log"], "select_source_node", "commit_data_version_node"
    )
    train["node_seconds"] = node_seconds(
        train["log"], "train_vae_node", "train_vae_node"
    )
    return ingest, train


def main() -> None:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request

    with tempfile.TemporaryDirectory() as folder:
        images, labels, origin = write_inputs(Path(folder), 10_000)
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            env = {
                **os.environ,
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
                "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db",
            }
            import s3fs

            s3fs.S3FileSystem(endpoint_url=env["AWS_ENDPOINT_URL_S3"], key="bench",
                              secret="bench").mkdir("vae-pipeline")  # fmt: skip
            os.environ.update({k: env[k] for k in env if k.startswith("AWS_")})
            print(f"10,000 images ({origin}); 8,000 of them train for one epoch")
            print(f"{'storage':8} {'step':10} {'command s':>9} {'nodes s':>8} "
                  f"{'images/s':>9} {'peak RSS':>9}")  # fmt: skip
            for storage in ("local", "s3"):
                ingest, train = run_storage(storage, images, labels, env)
                for step, report, count in (
                    ("ingestion", ingest, 10_000),
                    ("1 epoch", train, 8_000),
                ):
                    print(
                        f"{storage:8} {step:10} {report['seconds']:9.1f} "
                        f"{report['node_seconds']:8.1f} "
                        f"{count / report['node_seconds']:9.0f} "
                        f"{report['rss_mib']:6.0f} MiB"
                    )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
