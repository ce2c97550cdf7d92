"""MNIST and Fashion-MNIST through ``keras.datasets``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from vae_pipeline.data.sources import ArraySource, ImageChunk, ImageSource
from vae_pipeline.errors import InputDataError

KerasDatasetName = Literal["mnist", "fashion_mnist"]
KerasSplit = Literal["train", "test", "all"]


class KerasDatasetSource(ImageSource):
    """MNIST or Fashion-MNIST through ``keras.datasets``' own ``load_data``: from
    the Keras cache (``$KERAS_HOME/datasets``) when the files are there, otherwise
    downloaded, which needs internet access. Both are small enough to hold whole.
    """

    kind = "keras"

    def __init__(self, dataset: KerasDatasetName, split: KerasSplit = "all") -> None:
        self.dataset = dataset
        self.split = split

    @property
    def description(self) -> str:
        return f"keras.datasets.{self.dataset} ({self.split})"

    def iter_chunks(self, chunk_size: int) -> Iterator[ImageChunk]:
        import keras

        try:
            train, test = getattr(keras.datasets, self.dataset).load_data()
        except Exception as exc:
            raise InputDataError(
                f"{self.description}: keras.datasets could not load it, from its "
                f"cache or by download ({type(exc).__name__}: {exc})"
            ) from exc
        parts = {"train": train, "test": test}
        for split in ["train", "test"] if self.split == "all" else [self.split]:
            images, labels = parts[split]
            source = ArraySource(
                images, labels, kind=self.kind, description=self.description
            )
            yield from source.iter_chunks(chunk_size)
