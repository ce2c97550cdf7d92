"""MNIST and Fashion-MNIST through ``keras.datasets`` in the catalog."""

from __future__ import annotations

from typing import Any, get_args

from kedro.io import DatasetError

from vae_pipeline.data.keras_datasets import KerasDatasetName, KerasSplit, keras_source
from vae_pipeline.data.sources import ImageSource
from vae_pipeline.datasets.read_only import ReadOnlyDataset


class KerasImagesDataset(ReadOnlyDataset):
    """MNIST or Fashion-MNIST through ``keras.datasets`` and its local cache."""

    def __init__(
        self,
        *,
        dataset: KerasDatasetName = "mnist",
        split: KerasSplit = "all",
        metadata: dict[str, Any] | None = None,
    ):
        for name, value, allowed in (
            ("dataset", dataset, get_args(KerasDatasetName)),
            ("split", split, get_args(KerasSplit)),
        ):
            if value not in allowed:
                raise DatasetError(
                    f"KerasImagesDataset: unknown {name} '{value}' (expected "
                    f"{', '.join(map(repr, allowed[:-1]))} or {allowed[-1]!r})"
                )
        self._dataset = dataset
        self._split = split
        self.metadata = metadata

    def load(self) -> ImageSource:
        return keras_source(self._dataset, self._split)

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._dataset, "split": self._split}
