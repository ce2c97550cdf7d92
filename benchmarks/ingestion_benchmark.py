"""Ingestion benchmark: peak memory and throughput for 10,000 and 100,000 images.

Runs the real data-ingestion pipeline (the project's catalog, redirected to a
temporary folder) on IDX gzip files: the MNIST test set from ../shared/data/mnist
when present (repeated 10 times for 100,000 images), synthetic digits otherwise.
Each size runs in a fresh process so that its peak RSS is its own.

    python benchmarks/ingestion_benchmark.py

Targets (issue 2): peak RSS at 100,000 images at most 1.3x that at 10,000, and the
10,000 MNIST images ingested in under 5 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from support import (
    MNIST_IMAGES,
    MNIST_LABELS,
    project_config,
    read_idx,
    relocate_catalog_entry,
    typed_params,
)

SIZES = (10_000, 100_000)
RSS_RATIO_TARGET = 1.3
SECONDS_TARGET_10K = 5.0


def write_inputs(folder: Path, count: int) -> tuple[Path, Path, str]:
    """Write IDX gzip images and labels of ``count`` MNIST (or synthetic) digits."""
    from vae_pipeline.data.idx import write_idx

    if MNIST_IMAGES.is_file():
        base_images, base_labels = read_idx(MNIST_IMAGES), read_idx(MNIST_LABELS)
        origin = "MNIST test set"
    else:
        rng = np.random.default_rng(0)
        base_images = rng.integers(0, 256, (10_000, 28, 28), dtype=np.uint8)
        base_labels = rng.integers(0, 10, 10_000).astype(np.uint8)
        origin = "synthetic"
    repeats = -(-count // len(base_images))
    images = np.tile(base_images, (repeats, 1, 1))[:count]
    labels = np.tile(base_labels, repeats)[:count]
    return (
        write_idx(folder / f"images-{count}.gz", images),
        write_idx(folder / f"labels-{count}.gz", labels),
        origin,
    )


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM), in MiB.

    Unlike ``getrusage``'s ``ru_maxrss``, VmHWM is not inherited from the parent
    across fork and exec, so each child reports only its own peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(images: Path, labels: Path, data_root: Path) -> None:
    """Ingest once in this process and print a JSON line of measurements."""
    from kedro.io import DataCatalog
    from kedro.runner import SequentialRunner

    from vae_pipeline.pipelines.data_ingestion import create_pipeline
    from vae_pipeline.pipelines.data_ingestion.params import (
        IngestionParams,
    )

    (data_root / "data/01_raw/image_folder").mkdir(parents=True)
    (data_root / "data/01_raw/image_folder/.gitkeep").touch()
    config = {
        name: relocate_catalog_entry(entry, data_root)
        for name, entry in project_config("catalog").items()
    }
    config["raw_idx_images"]["filepath"] = str(images)
    config["raw_idx_labels"]["filepath"] = str(labels)
    catalog = DataCatalog.from_config(config)
    catalog["params:data_ingestion"] = typed_params(
        IngestionParams, "data_ingestion", source="idx"
    )
    rss_before = peak_rss_mib()
    start = time.perf_counter()
    SequentialRunner().run(create_pipeline(), catalog)
    seconds = time.perf_counter() - start
    summary = catalog.load("ingestion_summary")
    print(
        json.dumps(
            {
                "images": summary["num_images"],
                "seconds": seconds,
                "rss_before_mib": rss_before,
                "peak_rss_mib": peak_rss_mib(),
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, metavar=("IMAGES", "LABELS", "DATA_ROOT"))
    args = parser.parse_args()
    if args.child:
        run_child(*(Path(arg) for arg in args.child))
        return 0

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in SIZES:
            images, labels, origin = write_inputs(Path(tmp), count)
            output = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(images),
                    str(labels),
                    str(Path(tmp) / f"run-{count}"),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results.append(json.loads(output.strip().splitlines()[-1]))
    print(f"Ingestion of IDX gzip ({origin}), 28x28, chunk_size 4096:")
    columns = ("images", 8), ("seconds", 8), ("images/s", 9), ("peak RSS MiB", 13)
    print(" ".join(f"{name:>{width}}" for name, width in columns), "RSS before MiB")
    for row in results:
        print(
            f"{row['images']:>8} {row['seconds']:>8.2f} "
            f"{row['images'] / row['seconds']:>9.0f} {row['peak_rss_mib']:>13.1f} "
            f"{row['rss_before_mib']:>15.1f}"
        )
    ratio = results[1]["peak_rss_mib"] / results[0]["peak_rss_mib"]
    print(f"peak RSS ratio 100k/10k: {ratio:.2f} (target <= {RSS_RATIO_TARGET})")
    seconds_10k = results[0]["seconds"]
    print(f"10k ingestion: {seconds_10k:.2f} s (target < {SECONDS_TARGET_10K} s)")
    met = ratio <= RSS_RATIO_TARGET and seconds_10k < SECONDS_TARGET_10K
    print("targets met" if met else "TARGETS MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
