"""Typed parameters of the data-ingestion pipeline (validated by Kedro at start-up)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from vae_pipeline.params import StrictParams

SourceName = Literal["digits", "idx", "npz", "image_folder", "keras"]
_FRACTION_TOLERANCE = 1e-9


class SplitParams(StrictParams):
    """Fractions of the images in each split; they may sum to less than 1."""

    train: float = Field(default=0.8, gt=0, le=1)
    validation: float = Field(default=0.1, gt=0, le=1)
    test: float = Field(default=0.1, gt=0, le=1)
    seed: int = 42
    stratify: bool = True

    @model_validator(mode="after")
    def _fractions_sum_to_at_most_one(self) -> SplitParams:
        total = self.train + self.validation + self.test
        if total > 1 + _FRACTION_TOLERANCE:
            raise ValueError(
                f"train + validation + test must be at most 1, got {total:g}"
            )
        return self

    def fractions(self) -> dict[str, float]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


class ImageFolderParams(StrictParams):
    """How images from a folder are decoded."""

    image_size: list[PositiveInt] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="[height, width] to resize to; null keeps sizes (they must match)",
    )
    color_mode: Literal["grayscale", "rgb"] = "grayscale"
    skip_invalid: bool = False


class IngestionParams(StrictParams):
    """Parameters under ``data_ingestion`` in ``parameters_data_ingestion.yml``."""

    source: SourceName = "digits"
    image_folder: ImageFolderParams = ImageFolderParams()
    binarize: Literal["none", "threshold", "bernoulli"] = "none"
    binarize_threshold: float = Field(default=0.5, gt=0, lt=1)
    chunk_size: PositiveInt = 4096
    split: SplitParams = SplitParams()
