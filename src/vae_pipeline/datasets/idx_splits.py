"""IDX files that come split into train, validation and test."""

from __future__ import annotations

from typing import Any

from kedro.io import DatasetError

from vae_pipeline.data.files import StoredFile
from vae_pipeline.data.idx import idx_source
from vae_pipeline.data.sources import ImageSource, given_splits
from vae_pipeline.datasets.read_only import ReadOnlyDataset


class IDXSplitsDataset(ReadOnlyDataset):
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
