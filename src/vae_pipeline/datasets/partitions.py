"""kedro-datasets' ``PartitionedDataset`` for folders that may be empty or absent:
raw image folders, ``incoming/`` and the files to score."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fsspec.utils import tokenize
from kedro.io import DatasetError
from kedro_datasets.partitions import PartitionedDataset

from vae_pipeline.errors import printable


class OptionalPartitionedDataset(PartitionedDataset):
    """kedro-datasets' ``PartitionedDataset`` that loads an absent or empty folder
    (object stores have no empty folders) as no partitions instead of failing,
    and refuses symbolic links by name unless ``follow_symlinks: true``: fsspec's
    ``find`` follows them, and would merge files from anywhere without a word."""

    def __init__(self, *, follow_symlinks: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._follow_symlinks = follow_symlinks

    def load(self) -> dict[str, Any]:
        partitions = self._list_partitions()
        if not partitions:
            return {}
        if not self._follow_symlinks and self._protocol in (None, "file"):
            _refuse_links(self._path, partitions)
        return super().load()

    def ukeys(self) -> dict[str, str]:
        """A hash of every partition's listing entry (size and times on a disk,
        size and ETag on object storage), by partition id, from one fresh listing
        (no request per file): two looks tell a folder still being written from
        one that has settled."""
        self._invalidate_caches()
        found = self._filesystem.find(
            self._normalized_path, detail=True, **self._load_args
        )
        return {
            self._path_to_partition(path): tokenize(info)
            for path, info in found.items()
            if path.endswith(self._filename_suffix)
        }


def _refuse_links(root: str, partitions: list[str]) -> None:
    """Fail on the first link between ``root`` and a partition file."""
    base = Path(root).absolute()
    for partition in partitions:
        current = base
        for name in Path(partition).absolute().relative_to(base).parts:
            current = current / name
            if current.is_symlink():  # DatasetError: Kedro adds no framing to it
                raise DatasetError(
                    f"{printable(str(current))}: a symbolic link (to "
                    f"{printable(os.readlink(current))}); copy the data in, or set "
                    "follow_symlinks: true on the catalog entry to read links"
                )
