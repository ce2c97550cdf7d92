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
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol, runtime_checkable

import numpy as np
from kedro.io import AbstractVersionedDataset, DatasetError, Version
from kedro.io.core import VersionNotFoundError, get_protocol_and_path

from vae_pipeline.datasets.data_version import committed_split_versions, writer
from vae_pipeline.errors import InputDataError
from vae_pipeline.locks import process_alive

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
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


def _remove_abandoned_partials(staging: Path, name: str) -> None:
    """Remove the temporary folders of saves whose process is gone (``kill -9``,
    a lost machine): they are never visible as a version, but they take space.
    A save in progress in another live process keeps its folder."""
    for partial in staging.glob(f".{name}-*-*.partial"):
        pid = partial.name[len(name) + 2 :].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(partial, ignore_errors=True)


def _abandoned_by(folder: Path, manifest_name: str) -> int | None:
    """The pid of the dead process of this host that wrote a version folder."""
    try:
        manifest = json.loads((folder / manifest_name / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    written_by = manifest.get("writer") or {}
    pid = written_by.get("pid")
    if written_by.get("host") != socket.gethostname() or not isinstance(pid, int):
        return None  # another machine's process: it cannot be checked from here
    return None if process_alive(pid) else pid


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
        directory: Path,
        *,
        num_examples: int,
        image_shape: tuple[int, ...],
        has_labels: bool,
        shard_size: int,
    ) -> None:
        self.directory = directory
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
        images_file = (self.directory / images_name).open("wb")
        header_bytes = _write_header(
            images_file, IMAGE_DTYPE, (count, *self.image_shape)
        )
        self._files = [images_file]
        labels_name = None
        if self.has_labels:
            labels_name = f"labels-{index:05d}.npy"
            labels_file = (self.directory / labels_name).open("wb")
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
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath, version)
        if protocol != "file":
            raise DatasetError(
                f"ShardedArrayDataset writes to the local filesystem only, got "
                f"'{filepath}'"
            )
        if shard_size < 1:
            raise DatasetError(
                f"ShardedArrayDataset: shard_size must be >= 1, got {shard_size}"
            )
        super().__init__(filepath=PurePosixPath(path), version=version)
        self._shard_size = shard_size
        self._data_version = (
            str(PurePosixPath(path).parent / data_version)
            if data_version and not PurePosixPath(data_version).is_absolute()
            else data_version
        )
        self._saved_version: str | None = None
        self.metadata = metadata

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
        committed = committed_split_versions(self._data_version, self._filepath.name)
        if not committed:
            raise VersionNotFoundError(
                f"{self._filepath}: no committed data version has a "
                f"'{self._filepath.name}' split; run the data_ingestion pipeline"
            )
        return committed[0]

    def _remove_abandoned_versions(self) -> None:
        """Remove the versions that no record commits and whose writer died (a
        ``kill -9`` or a failure before the commit). A version being written by a
        live process, or by another machine, is left alone."""
        if self._data_version is None or not Path(self._filepath).is_dir():
            return
        committed = set(
            committed_split_versions(self._data_version, self._filepath.name)
        )
        for folder in Path(self._filepath).iterdir():
            if folder.name.startswith(".") or folder.name in committed:
                continue
            pid = _abandoned_by(folder, self._filepath.name)
            if pid is not None:
                shutil.rmtree(folder, ignore_errors=True)
                logger.info(
                    "Removed %s: written by process %s, which died before "
                    "committing it",
                    folder,
                    pid,
                )

    def load(self) -> ShardedArrays:
        directory = Path(self._get_load_path())
        manifest_path = directory / MANIFEST
        if not manifest_path.is_file():
            raise DatasetError(f"{directory}: no sharded arrays saved here")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT_NAME:
            raise DatasetError(f"{manifest_path}: not a {FORMAT_NAME} manifest")
        return ShardedArrays(directory, manifest)

    def save(self, data: Any) -> None:
        stream = _as_stream(data)
        target = Path(self._get_save_path())
        staging = target.parents[1] if self._version else target.parent
        staging.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_partials(staging, target.name)
        self._remove_abandoned_versions()
        partial = staging / f".{target.name}-{os.getpid()}-{uuid.uuid4().hex}.partial"
        partial.mkdir()
        try:
            self._write(partial, stream, version=self.resolve_save_version() or None)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():  # unversioned overwrite
                shutil.rmtree(target)
            os.replace(partial, target)
            self._saved_version = self.resolve_save_version() or None
        finally:
            shutil.rmtree(partial, ignore_errors=True)

    def _write(
        self, directory: Path, stream: ArrayStream, *, version: str | None
    ) -> None:
        image_shape = tuple(int(d) for d in stream.image_shape)
        shards = _ShardWriter(
            directory,
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
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2), "utf-8")

    def _exists(self) -> bool:
        try:
            path = Path(self._get_load_path())
        except DatasetError:
            return False
        return (path / MANIFEST).is_file()
