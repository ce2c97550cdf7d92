"""Serving benchmark: REST latency and throughput, and the scoring pipeline's speed.

In a fresh project copy, ``kedro run`` trains and registers the default model on
the first 8,000 images of the MNIST test set (../shared/data/mnist, as NPZ). Then:

- ``kedro run --pipelines scoring`` scores the 2,000 held-out digits, 2,000
  uniform-noise images and the 2,000 held-out digits inverted (1 - x): the share
  of each flagged as outliers, and images/s of the scoring node (Kedro's log);
- ``mlflow models serve -m models:/vae_pipeline@champion`` on 127.0.0.1 answers
  ``/invocations`` (JSON ``inputs``, default ``iwae_samples`` 100) for batches of
  1 and 256 images, one client, one request at a time: p50 and p99 latency and
  images/s.

    python benchmarks/serving_benchmark.py [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from support import (
    MNIST_IMAGES,
    free_port,
    kedro,
    make_project_copy,
    mnist,
    node_seconds,
    serve_command,
    wait_for,
)


def score(project: Path, images: np.ndarray) -> dict:
    import pandas as pd

    held_out = images[8000:]
    rng = np.random.default_rng(0)
    folder = project / "data" / "01_raw" / "scoring"
    for name, x in (
        ("digits", held_out),
        ("noise", rng.integers(0, 256, held_out.shape, dtype=np.uint8)),
        ("inverted", 255 - held_out),
    ):
        np.savez(folder / f"{name}.npz", x=x)
    log = kedro(project, "run", "--pipelines", "scoring")
    seconds = node_seconds(log, "score_images_node")
    table = next((project / "data/07_model_output").glob("image_scores.parquet/*/*"))
    scores = pd.read_parquet(table)
    rates = scores.groupby(scores["source"].str.extract(r"(\w+)\.npz")[0])["outlier"]
    return {
        "images": len(scores),
        "seconds": round(seconds, 2),
        "images_per_second": round(len(scores) / seconds),
        "outlier_rates": rates.mean().round(4).to_dict(),
        "threshold": float(scores["outlier_threshold"].iloc[0]),
    }


def serve(project: Path, images: np.ndarray, requests: int) -> dict:
    import httpx

    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        # mlflow models serve starts the `uvicorn` on PATH: this environment's.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    process = subprocess.Popen(
        serve_command(sys.executable, port=port),
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/ping", seconds=180, process=process)
        results = {}
        scaled = (images[8000:, ..., None] / 255).astype(np.float32)
        with httpx.Client(timeout=60) as client:
            for batch, count in ((1, requests), (256, max(10, requests // 10))):
                body = json.dumps({"inputs": scaled[:batch].tolist()})
                headers = {"Content-Type": "application/json"}
                client.post(f"{url}/invocations", content=body, headers=headers)
                latencies = []
                for _ in range(count):
                    start = time.perf_counter()
                    response = client.post(
                        f"{url}/invocations", content=body, headers=headers
                    )
                    latencies.append(time.perf_counter() - start)
                    response.raise_for_status()
                results[batch] = {
                    "requests": count,
                    "p50_ms": round(1000 * float(np.percentile(latencies, 50)), 1),
                    "p99_ms": round(1000 * float(np.percentile(latencies, 99)), 1),
                    "images_per_second": round(batch * count / sum(latencies)),
                }
        return results
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    if not MNIST_IMAGES.is_file():
        print(f"skipped: {MNIST_IMAGES} is absent")
        return 0
    images = mnist()
    with tempfile.TemporaryDirectory(prefix="vae-serving-") as tmp:
        project = make_project_copy(Path(tmp) / "project")
        np.savez(project / "data/01_raw/images.npz", x=images[:8000])
        kedro(project, "run", "--params", "data_ingestion.source=npz")
        scoring = score(project, images)
        print("scoring pipeline:", json.dumps(scoring), flush=True)
        rest = serve(project, images, args.requests)
        print("REST /invocations:", json.dumps(rest), flush=True)
    print(f"\n{'batch':>6} {'p50 ms':>8} {'p99 ms':>8} {'images/s':>9}")
    for batch, row in rest.items():
        print(
            f"{batch:>6} {row['p50_ms']:>8} {row['p99_ms']:>8} "
            f"{row['images_per_second']:>9}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
