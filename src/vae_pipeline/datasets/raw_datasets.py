"""Read-only Kedro datasets for the raw image sources: each loads as a lazy
:class:`~vae_pipeline.data.sources.ImageSource` or a file handle, so only the
source the ingestion parameters select is ever read."""

from __future__ import annotations

from typing import Any, NoReturn, get_args

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from vae_pipeline.data.files import StoredFile
from vae_pipeline.data.idx import idx_source
from vae_pipeline.data.keras_datasets import KerasDatasetName, KerasSplit, keras_source
from vae_pipeline.data.sources import ImageSource, array_source, given_splits

_DIGITS_MAX_VALUE = 16


class _ReadOnlyDataset(AbstractDataset[None, Any]):
    def save(self, data: None) -> NoReturn:
        raise DatasetError(f"{type(self).__name__} is read-only")


class ReadOnlyFileDataset(_ReadOnlyDataset):
    """One file at a local path or any fsspec URL, as kedro-datasets take them;
    loads as its handle (:class:`StoredFile`), read by the node that uses it."""

    def __init__(
        self,
        *,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._file = StoredFile.of(filepath, credentials=credentials, fs_args=fs_args)
        self.metadata = metadata

    def load(self) -> StoredFile:
        return self._file

    def _exists(self) -> bool:
        return self._file.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._file.url}


class IDXDataset(ReadOnlyFileDataset):
    """One MNIST-format IDX file, raw or gzip-compressed.

    Example catalog entry::

        raw_idx_images:
          type: vae_pipeline.datasets.IDXDataset
          filepath: data/01_raw/idx/train-images-idx3-ubyte.gz  # or s3://...
    """


class IDXSplitsDataset(_ReadOnlyDataset):
    """IDX files that come as train, validation and test splits, kept as given
    (a :func:`given_splits` source). Catalog entry (as in conf/binarized_mnist)::

        raw_idx_splits:
          type: vae_pipeline.datasets.IDXSplitsDataset
          images:
            train: data/01_raw/idx_splits/train-images-idx3-ubyte.gz
            validation: data/01_raw/idx_splits/valid-images-idx3-ubyte.gz
            test: data/01_raw/idx_splits/test-images-idx3-ubyte.gz
          labels: {}  # optional, by split; a split whose file is absent is unlabelled
    """

    SPLITS = ("train", "validation", "test")

    def __init__(
        self,
        *,
        images: dict[str, str],
        labels: dict[str, str] | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        labels = labels or {}
        for name, paths in (("images", images), ("labels", labels)):
            unknown = set(paths) - set(self.SPLITS)
            missing = set(self.SPLITS) - set(paths) if name == "images" else set()
            if unknown or missing:
                raise DatasetError(
                    f"IDXSplitsDataset {name}: give one path for each of "
                    f"{', '.join(self.SPLITS)}"
                    + (f"; unknown {sorted(unknown)}" if unknown else "")
                    + (f"; missing {sorted(missing)}" if missing else "")
                )

        def handle(path: str) -> StoredFile:
            return StoredFile.of(path, credentials=credentials, fs_args=fs_args)

        self._images = {name: handle(images[name]) for name in self.SPLITS}
        self._labels = {name: handle(path) for name, path in labels.items()}
        self.metadata = metadata

    def load(self) -> ImageSource:
        # Whether a labels file exists is checked when the source is read: every
        # raw dataset is loaded on every run, and only the selected one is read.
        return given_splits(
            {
                name: idx_source(
                    self._images[name], self._labels.get(name), labels_optional=True
                )
                for name in self.SPLITS
            },
            kind="idx_splits",
        )

    def _exists(self) -> bool:
        return all(file.is_file() for file in self._images.values())

    def _describe(self) -> dict[str, Any]:
        return {
            "images": {name: str(file) for name, file in self._images.items()},
            "labels": {name: str(file) for name, file in self._labels.items()},
        }


class NPZImagesDataset(ReadOnlyFileDataset):
    """A NumPy ``.npz`` archive holding images ``x`` and optional labels ``y``
    (``data_ingestion.npz`` names the arrays)."""


class KerasImagesDataset(_ReadOnlyDataset):
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


class DigitsDataset(_ReadOnlyDataset):
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
