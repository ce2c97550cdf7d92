"""Typed parameters of the registration pipeline (validated by Kedro at start-up)."""

from __future__ import annotations

from pydantic import Field, PositiveInt

from vae_pipeline.params import StrictParams


class RegistrationParams(StrictParams):
    """Parameters under ``registration`` in ``parameters_registration.yml``."""

    champion_alias: str
    challenger_alias: str
    input_example_images: PositiveInt
    reference_images: PositiveInt
    reference_likelihood_images: PositiveInt
    reference_iwae_samples: PositiveInt
    outlier_quantile: float = Field(gt=0, lt=1)
    seed: int
