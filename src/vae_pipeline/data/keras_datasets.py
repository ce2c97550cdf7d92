"""MNIST and Fashion-MNIST through ``keras.datasets``."""

from __future__ import annotations

from typing import Literal

from vae_pipeline.data.sources import ImageSource, array_source
from vae_pipeline.data.stream import Chunks
from vae_pipeline.errors import InputDataError

KerasDatasetName = Literal["mnist", "fashion_mnist"]
KerasSplit = Literal["train", "test", "all"]


def keras_source(dataset: KerasDatasetName, split: KerasSplit = "all") -> ImageSource:
    """MNIST or Fashion-MNIST through ``keras.datasets``' own ``load_data``: from
    the Keras cache (``$KERAS_HOME/datasets``) when the files are there, otherwise
    downloaded, which needs internet access. Both are small enough to hold whole.
    """
    description = f"keras.datasets.{dataset} ({split})"

    def read(chunk_size: int) -> Chunks:
        import keras

        try:
            train, test = getattr(keras.datasets, dataset).load_data()
        except Exception as exc:
            raise InputDataError(
                f"{description}: keras.datasets could not load it, from its "
                f"cache or by download ({type(exc).__name__}: {exc})"
            ) from exc
        parts = {"train": train, "test": test}
        for name in ["train", "test"] if split == "all" else [split]:
            images, labels = parts[name]
            arrays = array_source(images, labels, kind="keras", description=description)
            yield from arrays.read(chunk_size)

    return ImageSource(read=read, kind="keras", description=description)
