"""Evaluation benchmark: pipeline time on the default data, IWAE throughput on MNIST.

1. The evaluation and generation pipelines on the embedded default (digits), with
   the project's parameters, after ingestion and training (not timed).
2. The importance-weighted log-likelihood on the 2,000 held-out MNIST images
   (../shared/data/mnist, last 2,000) for K = 1, 100 and 1000 samples, with the
   default model trained on the first 8,000: decoder evaluations per second.

    python benchmarks/evaluation_benchmark.py

Target (issue 4): evaluation and generation on the embedded default in under 15 s
on 2 CPU cores.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import training_benchmark
from support import (
    MNIST_IMAGES,
    build_catalog,
    copy_data_skeleton,
    project_config,
    run_in_memory,
    typed_params,
)

SECONDS_TARGET = 15.0


def time_default_evaluation(workdir: Path) -> float:
    from vae_pipeline.pipelines import data_ingestion, evaluation, generation, training
    from vae_pipeline.pipelines.data_ingestion.params import IngestionParams
    from vae_pipeline.pipelines.evaluation.params import EvaluationParams
    from vae_pipeline.pipelines.generation.params import GenerationParams
    from vae_pipeline.pipelines.training.params import TrainingParams

    params = project_config("parameters")
    root = copy_data_skeleton(workdir / "default")
    catalog = build_catalog(root)
    run_in_memory(
        data_ingestion.create_pipeline() + training.create_pipeline(),
        catalog,
        {
            "data_ingestion": IngestionParams.model_validate(params["data_ingestion"]),
            "training": TrainingParams.model_validate(
                {**params["training"], "checkpoint_dir": str(root / "checkpoints")}
            ),
        },
    )
    catalog = build_catalog(root)  # a fresh catalog loads what training saved
    start = time.perf_counter()
    run_in_memory(
        evaluation.create_pipeline() + generation.create_pipeline(),
        catalog,
        {
            "evaluation": EvaluationParams.model_validate(params["evaluation"]),
            "generation": GenerationParams.model_validate(params["generation"]),
        },
    )
    return time.perf_counter() - start


def iwae_throughput(workdir: Path) -> list[tuple[int, float, float]]:
    from vae_pipeline.datasets import ShardedArrayDataset
    from vae_pipeline.pipelines.training.params import TrainingParams
    from vae_pipeline.train import train_vae

    train, held_out = training_benchmark.load_images(
        MNIST_IMAGES, train=8000, held_out=2000
    )
    splits = []
    for name, images in (("train", train[:-800]), ("validation", train[-800:])):
        dataset = ShardedArrayDataset(filepath=str(workdir / name))
        dataset.save(images)
        splits.append(dataset.load())
    model, _ = train_vae(
        *splits,
        typed_params(
            TrainingParams, "training", checkpoint_dir=str(workdir / "checkpoints")
        ),
    )
    rows = []
    for k in (1, 100, 1000):
        start = time.perf_counter()
        estimate = model.log_likelihood(held_out, num_samples=k, batch_size=100)
        seconds = time.perf_counter() - start
        rows.append((k, len(held_out) * k / seconds, float(-estimate.mean())))
    return rows


def main() -> int:
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        seconds = time_default_evaluation(Path(tmp))
        print(
            f"evaluation + generation on the embedded default: {seconds:.1f} s "
            f"(target < {SECONDS_TARGET:.0f} s)",
            flush=True,
        )
        if not mnist_available():
            print("IWAE throughput: skipped, ../shared/data/mnist is absent")
            return 0
        print(
            "IWAE on 2,000 held-out MNIST images, default model (latent 8); on "
            "grey pixels a Bernoulli cross-entropy, not a log-likelihood:"
        )
        print(f"{'K':>6} {'decoder evals/s':>16} {'IWAE cross-entropy':>19}")
        for k, speed, nll in iwae_throughput(Path(tmp)):
            print(f"{k:>6} {speed:>16.0f} {nll:>19.2f}")
    return 0


def mnist_available() -> bool:
    return MNIST_IMAGES.is_file()


if __name__ == "__main__":
    sys.exit(main())
