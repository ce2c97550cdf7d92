"""Typed parameters of the data-ingestion pipeline (validated by Kedro at start-up)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from vae_pipeline.data import Preparation
from vae_pipeline.params import StrictParams

SourceName = Literal["digits", "idx", "idx_splits", "npz", "image_folder", "keras"]
_FRACTION_TOLERANCE = 1e-9


class SplitParams(StrictParams):
    """Fractions of the images in each split; they may sum to less than 1."""

    train: float = Field(gt=0, le=1)
    validation: float = Field(gt=0, le=1)
    test: float = Field(gt=0, le=1)
    seed: int
    stratify: bool

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
        min_length=2,
        max_length=2,
        description="[height, width] to resize to; null keeps sizes (they must match)",
    )
    color_mode: Literal["grayscale", "rgb"]
    skip_invalid: bool


class NPZArrayNames(StrictParams):
    """The names of the arrays in NPZ archives (``np.savez(x=..., y=...)``)."""

    images: str = Field(min_length=1)
    labels: str = Field(min_length=1, description="optional in each archive")


class IngestionParams(StrictParams):
    """Parameters under ``data_ingestion`` in ``parameters_data_ingestion.yml``."""

    source: SourceName
    label_names: list[str] | None = Field(
        min_length=1,
        description="class names by label (0, 1, ...) for sources without them",
    )
    image_folder: ImageFolderParams
    npz: NPZArrayNames
    pixel_max: PositiveInt | None = Field(
        description="integer pixels' maximum (16 for 0-16 data); null: 255"
    )
    binarize: Literal["none", "threshold", "bernoulli"]
    binarize_threshold: float = Field(gt=0, lt=1)
    chunk_size: PositiveInt
    split: SplitParams

    def preparation(self) -> Preparation:
        """How these parameters read pixels, for ingestion, retraining and scoring."""
        return Preparation(
            chunk_size=self.chunk_size,
            pixel_max=self.pixel_max,
            label_names=self.label_names,
            binarize=self.binarize,
            binarize_threshold=self.binarize_threshold,
            seed=self.split.seed,
        )
