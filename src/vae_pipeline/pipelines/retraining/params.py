"""Typed parameters of the retraining pipeline (validated by Kedro at start-up)."""

from __future__ import annotations

from pydantic import Field, NonNegativeFloat

from vae_pipeline.params import StrictParams


class DriftParams(StrictParams):
    """The gate before the merge, under ``retraining.drift``."""

    max_ks_statistic: float = Field(gt=0, le=1)
    significance: float = Field(gt=0, lt=1)
    max_outlier_fraction: float = Field(gt=0, le=1)
    admit: list[str]


class RetrainingParams(StrictParams):
    """Parameters under ``retraining`` in ``parameters_retraining.yml``."""

    drift: DriftParams
    warm_start: bool
    promotion_margin: NonNegativeFloat
    validation_fraction: float = Field(ge=0, lt=1)
    seed: int
