"""scikit-learn's digits, the embedded offline default, in the catalog."""

from __future__ import annotations

from typing import Any

import numpy as np

from vae_pipeline.data.sources import ImageSource, array_source
from vae_pipeline.datasets.read_only import ReadOnlyDataset

_DIGITS_MAX_VALUE = 16


class DigitsDataset(ReadOnlyDataset):
    """scikit-learn's bundled digits (1,797 labelled 8x8 images, no network
    needed), their 0 to 16 intensities rescaled to 8-bit 0 to 255."""

    def __init__(self, *, metadata: dict[str, Any] | None = None):
        self.metadata = metadata

    def load(self) -> ImageSource:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.rint(digits.images * (255 / _DIGITS_MAX_VALUE)).astype(np.uint8)
        return array_source(
            images,
            digits.target.astype(np.int64),
            kind="digits",
            description="scikit-learn digits",
        )

    def _describe(self) -> dict[str, Any]:
        return {"source": "sklearn.datasets.load_digits"}
