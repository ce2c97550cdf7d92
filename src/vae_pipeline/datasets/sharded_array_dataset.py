"""A versioned Kedro dataset of image arrays as ``.npy`` shards, saved from a
stream in bounded memory (:mod:`vae_pipeline.data.shards`). With
``data_version:`` a version is read by other runs once a record commits it
(:mod:`vae_pipeline.data.versions`)."""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractVersionedDataset, DatasetError, Version
from kedro.io.core import VersionNotFoundError

from vae_pipeline.data.files import filesystem
from vae_pipeline.data.shards import MANIFEST, ShardedArrays, open_split, save_split
from vae_pipeline.data.versions import committed_split_versions

CACHE_NAME = "vae-pipeline-cache"


class ShardedArrayDataset(AbstractVersionedDataset[Any, ShardedArrays]):
    """Image arrays (float32) and optional integer labels as ``.npy`` shards.

    Example catalog entry::

        train_split:
          type: vae_pipeline.datasets.ShardedArrayDataset
          filepath: data/05_model_input/train
          shard_size: 8192
          versioned: true
          data_version: data_version.json

    ``data_version`` is the filepath of a ``DataVersionDataset``, relative to
    the split's parent folder unless absolute: the latest version is then the one
    its latest record names (or the one saved in this run), never an uncommitted
    one. A split on object storage is read through fsspec's whole-file cache in
    ``cache_dir``.
    """

    def __init__(
        self,
        *,
        filepath: str,
        shard_size: int = 8192,
        version: Version | None = None,
        data_version: str | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        cache_dir: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if shard_size < 1:
            raise DatasetError(
                f"ShardedArrayDataset: shard_size must be >= 1, got {shard_size}"
            )
        self._fs, self._protocol, path = filesystem(
            filepath, credentials=credentials, fs_args=fs_args
        )
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=lambda pattern: [  # the versions whose save finished
                found.rpartition("/")[0]
                for found in self._fs.glob(f"{pattern}/{MANIFEST}")
            ],
        )
        self._shard_size = shard_size
        self._cache_dir = Path(cache_dir or Path(tempfile.gettempdir()) / CACHE_NAME)
        if data_version and "://" in data_version:  # on this filesystem
            data_version = data_version.split("://", 1)[1]
        elif data_version:  # relative to the split's folder unless absolute
            data_version = str(PurePosixPath(path).parent / data_version)
        self._data_version = data_version
        self._saved_version: str | None = None
        self.metadata = metadata

    def _url(self, path: PurePosixPath | str) -> str:
        return str(path) if self._protocol == "file" else f"{self._protocol}://{path}"

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "shard_size": self._shard_size,
            "version": self._version,
            "data_version": self._data_version,
        }

    def _fetch_latest_load_version(self) -> str:
        if self._data_version is None:
            return super()._fetch_latest_load_version()
        if self._saved_version is not None:  # this run's own, not committed yet
            return self._saved_version
        committed = committed_split_versions(
            self._fs, self._data_version, self._filepath.name
        )
        if (latest := next(committed, None)) is None:
            raise VersionNotFoundError(
                f"{self._filepath}: no committed data version has a "
                f"'{self._filepath.name}' split; run the data_ingestion pipeline"
            )
        return latest

    def load(self) -> ShardedArrays:
        folder = str(self._get_load_path())
        cache = None if self._protocol == "file" else self._cache_dir
        return open_split(self._fs, folder, url=self._url(folder), cache_dir=cache)

    def save(self, data: Any) -> None:
        version = self.resolve_save_version() or None
        folder = self._claim()
        claimed = folder.rpartition("/")[0] if version else folder
        save_split(
            self._fs,
            folder,
            data,
            shard_size=self._shard_size,
            version=version,
            claimed=claimed,
        )
        self._saved_version = version

    def _claim(self) -> str:
        """The folder to save into, claimed for this run where it is versioned."""
        if not self._version:  # unversioned: overwritten in place
            if self._fs.exists(str(self._filepath)):
                self._fs.rm(str(self._filepath), recursive=True)
            return str(self._filepath)
        try:
            target = self._get_save_path()
            if self._protocol == "file":  # the version is claimed once, atomically
                Path(target).parents[1].mkdir(parents=True, exist_ok=True)
                Path(target).parent.mkdir()
        except (DatasetError, FileExistsError):
            # Kedro names all of a run's saved versions by the run's start time, to
            # the millisecond: two runs started together would write the same one.
            raise DatasetError(
                f"{self._url(self._filepath)}: version {self.resolve_save_version()}"
                " is being saved by another run started in the same millisecond; "
                "run again"
            ) from None
        return str(target)

    def _exists(self) -> bool:
        try:
            path = self._get_load_path()
        except DatasetError:
            return False
        return bool(self._fs.isfile(f"{path}/{MANIFEST}"))
