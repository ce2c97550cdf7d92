"""Typed parameters of the generation pipeline."""

from __future__ import annotations

from pydantic import (
    Field,
    NonNegativeInt,
    PositiveInt,
    model_validator,
)

from vae_pipeline.params import StrictParams


class GenerationParams(StrictParams):
    """Parameters under ``generation`` in ``parameters_generation.yml``."""

    prior_grid: PositiveInt
    manifold_size: PositiveInt
    manifold_quantiles: list[float] = Field(min_length=2, max_length=2)
    interpolation_steps: int = Field(ge=2)
    interpolation_pair: list[NonNegativeInt] = Field(min_length=2, max_length=2)
    seed: int

    @model_validator(mode="after")
    def _quantiles_inside_0_1(self) -> GenerationParams:
        low, high = self.manifold_quantiles
        if not 0 < low < high < 1:
            raise ValueError(
                f"manifold_quantiles must satisfy 0 < low < high < 1, got {low}, {high}"
            )
        return self
