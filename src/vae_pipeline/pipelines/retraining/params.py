"""Typed parameters of the retraining pipeline (validated by Kedro at start-up)."""

from __future__ import annotations

from pydantic import Field, NonNegativeFloat

from vae_pipeline.params import StrictParams


class RetrainingParams(StrictParams):
    """Parameters under ``retraining`` in ``parameters_retraining.yml``."""

    warm_start: bool = True
    promotion_margin: NonNegativeFloat = 0.0
    validation_fraction: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 0
    lock_file: str = "data/01_raw/incoming.lock"
