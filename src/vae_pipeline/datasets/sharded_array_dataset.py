"""A versioned Kedro dataset of image arrays as ``.npy`` shards
(:mod:`vae_pipeline.data.shards`), saved from a stream in bounded memory.

A save writes ``writer.json``, the shards and the manifest last, alike on a disk
and on object storage (which cannot rename): a failed save removes what it wrote,
and one killed leaves a version with no manifest, which no load picks. With
``data_version:`` a version is read by other runs once a record commits it.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from fsspec.implementations.cached import WholeFileCacheFileSystem
from kedro.io import AbstractVersionedDataset, DatasetError, Version
from kedro.io.core import VersionNotFoundError

from vae_pipeline.data.files import filesystem
from vae_pipeline.data.shards import (
    FORMAT_NAME,
    MANIFEST,
    WRITER,
    ShardedArrays,
    write_shards,
)
from vae_pipeline.data.stream import ImageStream
from vae_pipeline.datasets.data_version import committed_split_versions, writer

CACHE_NAME = "vae-pipeline-cache"


def _as_stream(data: Any) -> ImageStream:
    if isinstance(data, ImageStream):
        return data
    if isinstance(data, ShardedArrays):
        return data.stream()
    if isinstance(data, np.ndarray):
        return ImageStream.of(data)
    if isinstance(data, tuple) and len(data) == 2:  # noqa: PLR2004
        return ImageStream.of(np.asarray(data[0]), data[1])
    raise DatasetError(
        "ShardedArrayDataset saves an ImageStream, ShardedArrays, an array of "
        f"images or an (images, labels) tuple, not {type(data).__name__}"
    )


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
        self._storage = {"credentials": credentials, "fs_args": fs_args}
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._finished_versions,
        )
        self._shard_size = shard_size
        self._cache_dir = Path(cache_dir or Path(tempfile.gettempdir()) / CACHE_NAME)
        if data_version and not (
            "://" in data_version or PurePosixPath(data_version).is_absolute()
        ):
            data_version = self._url(PurePosixPath(path).parent / data_version)
        self._data_version = data_version
        self._saved_version: str | None = None
        self.metadata = metadata

    @property
    def _local(self) -> bool:
        return self._protocol == "file"

    def _url(self, path: PurePosixPath | str) -> str:
        return str(path) if self._local else f"{self._protocol}://{path}"

    def _finished_versions(self, pattern: str) -> list[str]:
        """The version folders of ``pattern`` whose save finished (a manifest)."""
        return [
            path.rpartition("/")[0] for path in self._fs.glob(f"{pattern}/{MANIFEST}")
        ]

    def _committed(self) -> Iterator[str]:
        assert self._data_version is not None
        return committed_split_versions(
            self._data_version, self._filepath.name, **self._storage
        )

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
        latest = next(self._committed(), None)
        if latest is None:
            raise VersionNotFoundError(
                f"{self._filepath}: no committed data version has a "
                f"'{self._filepath.name}' split; run the data_ingestion pipeline"
            )
        return latest

    def load(self) -> ShardedArrays:
        directory = str(self._get_load_path())
        try:
            content = self._fs.cat_file(f"{directory}/{MANIFEST}")
        except FileNotFoundError:
            raise DatasetError(
                f"{self._url(directory)}: no sharded arrays saved here"
            ) from None
        manifest = json.loads(content)
        if manifest.get("format") != FORMAT_NAME:
            raise DatasetError(f"{self._url(directory)}: not a {FORMAT_NAME} manifest")
        if self._local:
            return ShardedArrays(Path(directory), manifest)
        # Training reads local files (tf.data, NumPy's memory maps): each shard is
        # downloaded once into fsspec's whole-file cache, and again only when the
        # object in the bucket changes (check_files compares its checksum).
        cache = WholeFileCacheFileSystem(
            fs=self._fs, cache_storage=str(self._cache_dir), check_files=True
        )

        def local(name: str) -> Path:
            with cache.open(f"{directory}/{name}") as file:
                return Path(file.name)

        return ShardedArrays(PurePosixPath(directory), manifest, local=local)

    def save(self, data: Any) -> None:
        stream = _as_stream(data)
        version = self.resolve_save_version() or None
        target, by = self._save_target(), writer()
        # The writer first and the manifest last: a save cut short is a folder
        # with no manifest, which no load picks and which removal can attribute.
        try:
            self._fs.pipe_file(
                f"{target}/{WRITER}", json.dumps({"writer": by}).encode()
            )
            write_shards(
                lambda name: self._fs.open(f"{target}/{name}", "wb"),
                stream,
                shard_size=self._shard_size,
                version=version,
                writer=by,
            )
        except BaseException:
            with contextlib.suppress(OSError):
                self._fs.rm(target.rpartition("/")[0] if version else target, True)
            raise
        self._saved_version = version

    def _save_target(self) -> str:
        """The folder to save into, claimed for this run where it is versioned."""
        if not self._version:  # unversioned: overwritten in place
            if self._fs.exists(str(self._filepath)):
                self._fs.rm(str(self._filepath), recursive=True)
            return str(self._filepath)
        try:
            target = self._get_save_path()
            if self._local:  # the version's folder is claimed once, atomically
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
