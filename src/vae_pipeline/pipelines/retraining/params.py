"""Typed parameters of the retraining pipeline (validated by Kedro at start-up)."""

from __future__ import annotations

from pydantic import Field, NonNegativeFloat

from vae_pipeline.params import StrictParams


class RetrainingParams(StrictParams):
    """Parameters under ``retraining`` in ``parameters_retraining.yml``."""

    warm_start: bool
    promotion_margin: NonNegativeFloat
    validation_fraction: float = Field(ge=0, lt=1)
    seed: int
