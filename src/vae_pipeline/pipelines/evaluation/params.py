"""Typed parameters of the evaluation pipeline."""

from __future__ import annotations

from pydantic import PositiveFloat, PositiveInt

from vae_pipeline.params import StrictParams


class EvaluationParams(StrictParams):
    """Parameters under ``evaluation`` in ``parameters_evaluation.yml``."""

    iwae_samples: PositiveInt = 100
    iwae_batch_size: PositiveInt = 100
    iwae_sample_chunk: PositiveInt = 100
    elbo_samples: PositiveInt = 10
    active_unit_threshold: PositiveFloat = 0.01
    knn_neighbors: PositiveInt = 5
    knn_max_train_images: PositiveInt = 10_000
    distribution_examples: PositiveInt = 4
    reconstruction_examples: PositiveInt = 10
    seed: int = 0
