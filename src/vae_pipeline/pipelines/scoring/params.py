"""Typed parameters of the scoring pipeline (validated by Kedro at start-up)."""

from __future__ import annotations

from pydantic import Field, PositiveInt

from vae_pipeline.params import StrictParams


class ScoringParams(StrictParams):
    """Parameters under ``scoring`` in ``parameters_scoring.yml``."""

    iwae_samples: PositiveInt
    outlier_quantile: float | None = Field(gt=0, lt=1)
    batch_size: PositiveInt
    similar_examples: PositiveInt
    similar_neighbors: PositiveInt
    histogram_bins: PositiveInt
    seed: int
