"""Typed parameters of the evaluation pipeline."""

from __future__ import annotations

from pydantic import PositiveFloat, PositiveInt

from vae_pipeline.params import StrictParams


class EvaluationParams(StrictParams):
    """Parameters under ``evaluation`` in ``parameters_evaluation.yml``."""

    iwae_samples: PositiveInt
    iwae_batch_size: PositiveInt
    elbo_samples: PositiveInt
    active_unit_threshold: PositiveFloat
    knn_neighbors: PositiveInt
    knn_max_train_images: PositiveInt
    distribution_examples: PositiveInt
    reconstruction_examples: PositiveInt
    seed: int
