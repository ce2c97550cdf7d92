"""A versioned Kedro dataset of image arrays stored as ``.npy`` shards.

Saving consumes a stream of chunks, so an arbitrarily large split is written with
bounded memory. The shards are plain NPY files: NumPy memory-maps them, and tf.data
reads them natively with ``FixedLengthRecordDataset`` by skipping each file's
header. A ``manifest.json`` records shapes, counts and header sizes.

A save goes to a hidden temporary folder beside the dataset and is moved into place
only once every shard is written: a failed save leaves nothing behind. With
``data_version:`` (see :mod:`vae_pipeline.datasets.data_version`) a saved version
is read by other runs only once a data version record commits it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol, runtime_checkable

import numpy as np
from kedro.io import AbstractVersionedDataset, DatasetError, Version
from kedro.io.core import VersionNotFoundError

from vae_pipeline.datasets.data_version import committed_split_versions, writer
from vae_pipeline.datasets.storage import filesystem
from vae_pipeline.errors import InputDataError

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
WRITER = "writer.json"
CACHE_NAME = "vae-pipeline-cache"
FORMAT_NAME = "vae-pipeline-sharded-arrays"
IMAGE_DTYPE = np.dtype("<f4")
LABEL_DTYPE = np.dtype("<i8")


@runtime_checkable
class ArrayStream(Protocol):
    """What :class:`ShardedArrayDataset` saves: images streamed in chunks."""

    @property
    def num_examples(self) -> int: ...

    @property
    def image_shape(self) -> tuple[int, ...]: ...

    @property
    def has_labels(self) -> bool: ...

    def iter_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]: ...


def label_names_of(stream: Any) -> list[str] | None:
    """A stream's or split's class names by label, when it has any."""
    names = getattr(stream, "label_names", None)
    return list(names) if names else None


@dataclass(frozen=True)
class InMemoryArrays:
    """An :class:`ArrayStream` over arrays already in memory."""

    images: np.ndarray
    labels: np.ndarray | None = None
    chunk_size: int = 8192
    label_names: list[str] | None = None

    @property
    def num_examples(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    def iter_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        for start in range(0, len(self.images), self.chunk_size):
            stop = start + self.chunk_size
            labels = None if self.labels is None else self.labels[start:stop]
            yield self.images[start:stop], labels


@dataclass(frozen=True)
class Shard:
    """One shard: its files, number of examples and the images' NPY header size."""

    images: Path
    labels: Path | None
    count: int
    images_header_bytes: int


class ShardedArrays:
    """Loaded handle to a saved split; reads shards only when asked."""

    def __init__(self, directory: Path, manifest: dict[str, Any]) -> None:
        self.directory = directory
        self.manifest = manifest
        self.num_examples: int = manifest["num_examples"]
        self.image_shape: tuple[int, ...] = tuple(manifest["image_shape"])
        self.has_labels: bool = manifest["label_dtype"] is not None
        self.label_names: list[str] | None = manifest.get("label_names")
        # The same images and labels in the same order, whatever the version folder
        # (absent from manifests written before it was recorded).
        self.content_sha256: str | None = manifest.get("content_sha256")
        self.version: str | None = manifest.get("version")  # None when unversioned
        self.shards = [
            Shard(
                images=directory / shard["images"],
                labels=directory / shard["labels"] if shard["labels"] else None,
                count=shard["count"],
                images_header_bytes=shard["images_header_bytes"],
            )
            for shard in manifest["shards"]
        ]

    def __len__(self) -> int:
        return self.num_examples

    def __repr__(self) -> str:
        return (
            f"ShardedArrays({self.directory}, examples={self.num_examples}, "
            f"image_shape={self.image_shape}, shards={len(self.shards)})"
        )

    def iter_chunks(
        self, chunk_size: int = 8192
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Yield ``(images, labels)`` in saved order, at most ``chunk_size`` each."""
        for shard in self.shards:
            images = np.load(shard.images, mmap_mode="r")
            labels = None if shard.labels is None else np.load(shard.labels)
            for start in range(0, shard.count, chunk_size):
                stop = start + chunk_size
                yield (
                    np.array(images[start:stop]),
                    None if labels is None else labels[start:stop],
                )

    def select(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Images and labels at the given positions, read through memory maps.

        Args:
            indices: Positions in saved order; returned in ascending order.

        Returns:
            ``(images, labels)``; labels are ``None`` when unlabelled.
        """
        indices = np.unique(np.asarray(indices, dtype=np.int64))
        images, labels = [], []
        offset = 0
        for shard in self.shards:
            lo, hi = np.searchsorted(indices, [offset, offset + shard.count])
            local = indices[lo:hi] - offset
            if len(local):
                images.append(np.load(shard.images, mmap_mode="r")[local])
                if shard.labels is not None:
                    labels.append(np.load(shard.labels, mmap_mode="r")[local])
            offset += shard.count
        empty = np.empty((0, *self.image_shape), np.float32)
        return (
            np.concatenate(images) if images else empty,
            np.concatenate(labels) if self.has_labels and labels else None,
        )

    def images(self) -> np.ndarray:
        """All images in one array (for evaluation-sized splits)."""
        return np.concatenate([np.load(s.images) for s in self.shards])

    def labels(self) -> np.ndarray | None:
        """All labels in one array, or ``None`` when unlabelled."""
        if not self.has_labels:
            return None
        return np.concatenate([np.load(s.labels) for s in self.shards])


def check_same_version(splits: dict[str, ShardedArrays]) -> None:
    """Raise unless the versioned splits all come from one data version.

    A data version is the splits one run wrote together; training on a train split
    of one version and a validation split of another (say after a run died between
    writing them) would silently mix two datasets.

    Raises:
        InputDataError: Naming each split's version.
    """
    versions = {name: split.version for name, split in splits.items() if split.version}
    if len(set(versions.values())) > 1:
        found = ", ".join(f"{name} {version}" for name, version in versions.items())
        raise InputDataError(
            f"splits of different data versions ({found}): a data version is the "
            "splits one run wrote together; run data_ingestion again, or pick one "
            "version with --load-versions"
        )


def _as_stream(data: Any) -> ArrayStream:
    if isinstance(data, ArrayStream):
        return data
    if isinstance(data, np.ndarray):
        return InMemoryArrays(data)
    if isinstance(data, tuple) and len(data) == 2:  # noqa: PLR2004
        return InMemoryArrays(np.asarray(data[0]), data[1])
    raise DatasetError(
        "ShardedArrayDataset saves an ArrayStream, an array of images or an "
        f"(images, labels) tuple, not {type(data).__name__}"
    )


def _write_header(stream: IO[bytes], dtype: np.dtype, shape: tuple[int, ...]) -> int:
    header = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": shape,
    }
    np.lib.format.write_array_header_1_0(stream, header)
    return stream.tell()


class _ShardWriter:
    def __init__(
        self,
        open_file: Callable[[str], IO[bytes]],
        *,
        num_examples: int,
        image_shape: tuple[int, ...],
        has_labels: bool,
        shard_size: int,
    ) -> None:
        self.open_file = open_file
        self.image_shape = image_shape
        self.has_labels = has_labels
        self.counts = [
            min(shard_size, num_examples - start)
            for start in range(0, num_examples, shard_size)
        ]
        self.shards: list[dict[str, Any]] = []
        self.digest = hashlib.sha256()  # of the images and labels, as written
        self._files: list[IO[bytes]] = []
        self._left_in_shard = 0

    def _open_next(self) -> None:
        self._close()
        index = len(self.shards)
        count = self.counts[index]
        images_name = f"images-{index:05d}.npy"
        images_file = self.open_file(images_name)
        header_bytes = _write_header(
            images_file, IMAGE_DTYPE, (count, *self.image_shape)
        )
        self._files = [images_file]
        labels_name = None
        if self.has_labels:
            labels_name = f"labels-{index:05d}.npy"
            labels_file = self.open_file(labels_name)
            _write_header(labels_file, LABEL_DTYPE, (count,))
            self._files.append(labels_file)
        self.shards.append(
            {
                "images": images_name,
                "labels": labels_name,
                "count": count,
                "images_header_bytes": header_bytes,
            }
        )
        self._left_in_shard = count

    def write(self, images: np.ndarray, labels: np.ndarray | None) -> None:
        images = np.ascontiguousarray(images, dtype=IMAGE_DTYPE)
        if labels is not None:
            labels = np.ascontiguousarray(labels, dtype=LABEL_DTYPE)
        offset = 0
        while offset < len(images):
            if self._left_in_shard == 0:
                if len(self.shards) == len(self.counts):
                    raise DatasetError("stream yielded more examples than it declared")
                self._open_next()
            take = min(self._left_in_shard, len(images) - offset)
            image_bytes = images[offset : offset + take].tobytes()
            self._files[0].write(image_bytes)
            self.digest.update(image_bytes)
            if labels is not None:
                label_bytes = labels[offset : offset + take].tobytes()
                self._files[1].write(label_bytes)
                self.digest.update(label_bytes)
            offset += take
            self._left_in_shard -= take

    def _close(self) -> None:
        for file in self._files:
            file.close()
        self._files = []

    def finish(self) -> None:
        self._close()
        if self._left_in_shard or len(self.shards) != len(self.counts):
            raise DatasetError("stream yielded fewer examples than it declared")


class ShardedArrayDataset(AbstractVersionedDataset[Any, ShardedArrays]):
    """Image arrays (float32) and optional integer labels as ``.npy`` shards.

    Example catalog entry::

        train_split:
          type: vae_pipeline.datasets.ShardedArrayDataset
          filepath: data/05_model_input/train
          shard_size: 8192
          versioned: true
          data_version: data_version.json

    Args:
        filepath: The split's folder.
        shard_size: Examples per shard file.
        version: Kedro's load and save versions.
        data_version: The filepath of a ``DataVersionDataset``, relative to the
            folder that holds this split's folder unless absolute: the latest
            version is then the one its latest record names (or the one this
            dataset saved in this run), never an uncommitted one.
        metadata: Free-form metadata (kedro-viz layers).
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
            glob_function=self._fs.glob,
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
        return ShardedArrays(self._cached(directory, content), manifest)

    def _cached(self, directory: str, manifest: bytes) -> Path:
        """A local copy of a remote split, downloaded once (shard by shard, so
        memory stays bounded); tf.data and NumPy's memory maps read it there."""
        url = self._url(directory)
        local = self._cache_dir / hashlib.sha256(url.encode()).hexdigest()[:20]
        if (local / MANIFEST).is_file() and (local / MANIFEST).read_bytes() == manifest:
            return local
        partial = local.with_name(f".{local.name}-{os.getpid()}-{uuid.uuid4().hex}")
        partial.mkdir(parents=True)
        try:
            for name in json.loads(manifest)["shards"]:
                for key in ("images", "labels"):
                    if name[key]:
                        self._fs.get_file(
                            f"{directory}/{name[key]}", partial / name[key]
                        )
            (partial / MANIFEST).write_bytes(manifest)
            shutil.rmtree(local, ignore_errors=True)
            os.replace(partial, local)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        logger.info("Downloaded %s to %s", url, local)
        return local

    def _save_path(self) -> PurePosixPath:
        try:
            return self._get_save_path()
        except DatasetError:
            if not self._version:
                raise
            raise self._version_taken() from None

    def _version_taken(self) -> DatasetError:
        # Kedro names all of a run's saved versions by the run's start time, to the
        # millisecond: two runs started together would write the same version.
        return DatasetError(
            f"{self._url(self._filepath)}: version {self.resolve_save_version()} is "
            "being saved by another run started in the same millisecond; run again"
        )

    def save(self, data: Any) -> None:
        stream = _as_stream(data)
        if not self._local:
            self._save_remote(stream)
            return
        target = Path(self._save_path())
        staging = target.parents[1] if self._version else target.parent
        staging.mkdir(parents=True, exist_ok=True)
        partial = staging / f".{target.name}-{os.getpid()}-{uuid.uuid4().hex}.partial"
        partial.mkdir()
        try:
            self._write(
                lambda name: (partial / name).open("wb"),
                stream,
                version=self.resolve_save_version() or None,
            )
            if self._version:
                try:  # the version's folder is claimed once, atomically
                    target.parent.mkdir()
                except FileExistsError:
                    raise self._version_taken() from None
            elif target.exists():  # unversioned overwrite
                shutil.rmtree(target)
            os.replace(partial, target)
            self._saved_version = self.resolve_save_version() or None
        finally:
            shutil.rmtree(partial, ignore_errors=True)

    def _save_remote(self, stream: ArrayStream) -> None:
        """On object storage, where nothing renames: the shards go straight to the
        version's folder, ``writer.json`` first and the manifest last; readers
        see the version once a data version record commits it."""
        target = str(self._save_path())
        self._fs.pipe_file(
            f"{target}/{WRITER}", json.dumps({"writer": writer()}).encode()
        )
        self._write(
            lambda name: self._fs.open(f"{target}/{name}", "wb"),
            stream,
            version=self.resolve_save_version() or None,
        )
        self._saved_version = self.resolve_save_version() or None

    def _write(
        self,
        open_file: Callable[[str], IO[bytes]],
        stream: ArrayStream,
        *,
        version: str | None,
    ) -> None:
        image_shape = tuple(int(d) for d in stream.image_shape)
        shards = _ShardWriter(
            open_file,
            num_examples=int(stream.num_examples),
            image_shape=image_shape,
            has_labels=bool(stream.has_labels),
            shard_size=self._shard_size,
        )
        try:
            for images, labels in stream.iter_chunks():
                if tuple(images.shape[1:]) != image_shape:
                    raise DatasetError(
                        f"chunk of shape {images.shape[1:]} in a stream of "
                        f"{image_shape} images"
                    )
                shards.write(images, labels if shards.has_labels else None)
        finally:
            shards._close()  # noqa: SLF001
        shards.finish()
        manifest = {
            "format": FORMAT_NAME,
            "format_version": 1,
            "num_examples": int(stream.num_examples),
            "image_shape": list(image_shape),
            "image_dtype": IMAGE_DTYPE.str,
            "label_dtype": LABEL_DTYPE.str if shards.has_labels else None,
            "label_names": label_names_of(stream) if shards.has_labels else None,
            "content_sha256": shards.digest.hexdigest(),
            "version": version,
            "writer": writer(),
            "shards": shards.shards,
        }
        with open_file(MANIFEST) as file:  # last: a split without one is unfinished
            file.write(json.dumps(manifest, indent=2).encode())

    def _exists(self) -> bool:
        try:
            path = self._get_load_path()
        except DatasetError:
            return False
        return bool(self._fs.isfile(f"{path}/{MANIFEST}"))
