"""The one way the project reads raw images: an :class:`ImageSource`.

Every raw format (:mod:`.idx`, :mod:`.npz`, :mod:`.image_folder`,
:mod:`.keras_datasets`, arrays in memory) loads as an :class:`ImageSource`: a cheap
handle that reads nothing until :meth:`ImageSource.iter_chunks` is iterated, and
then never more than ``chunk_size`` images at a time. Format-level problems (a
corrupt gzip stream, a wrong IDX magic number, a header that disagrees with the
file size, label and image counts that differ) raise :class:`InputDataError`
naming the file. No Kedro here: the catalog's datasets (``vae_pipeline.datasets``)
only build these.
"""

from __future__ import annotations

import math
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO

import numpy as np

from vae_pipeline.data.files import StoredFile
from vae_pipeline.errors import InputDataError

READ_ERRORS = (EOFError, OSError, zlib.error)
# A header is only a promise: memory while reading follows what it declares only
# up to these bounds, and past them the file is rejected before anything is read.
MAX_IMAGE_BYTES = 64 * 2**20  # one image (8192 x 8192 RGB uint8 is 192 MiB)
READ_BUDGET_BYTES = 64 * 2**20  # one read: fewer images than chunk_size if needed


def check_image_shape(shape: tuple[int, ...], itemsize: int, where: str) -> int:
    """Bytes per image of ``shape`` (first axis the count), or a one-line error.

    Args:
        shape: Declared shape, images along the first axis.
        itemsize: Bytes per value.
        where: The file (and array) named in errors.

    Returns:
        The bytes one image takes.

    Raises:
        InputDataError: An image dimension is zero, or one image would take more
            than :data:`MAX_IMAGE_BYTES`.
    """
    dims = "x".join(map(str, shape[1:]))
    if any(size == 0 for size in shape[1:]):
        raise InputDataError(f"{where}: declares zero-size images ({dims})")
    item_bytes = math.prod(shape[1:]) * itemsize
    if item_bytes > MAX_IMAGE_BYTES:
        raise InputDataError(
            f"{where}: declares images of {dims} ({item_bytes} bytes each), more "
            f"than the {MAX_IMAGE_BYTES // 2**20} MiB an image may take"
        )
    return item_bytes


def images_per_read(item_bytes: int, chunk_size: int) -> int:
    """How many images one read takes: ``chunk_size``, fewer for large images."""
    return max(1, min(chunk_size, READ_BUDGET_BYTES // max(item_bytes, 1)))


@dataclass(frozen=True)
class ImageChunk:
    """Consecutive raw images of a source.

    Attributes:
        images: Array of shape ``(n, height, width, channels)`` in the source's own
            dtype (unscaled).
        labels: Integer labels of shape ``(n,)``, or ``None`` for unlabelled data.
    """

    images: np.ndarray
    labels: np.ndarray | None


class ImageSource(ABC):
    """A lazily read collection of images, optionally labelled."""

    #: Short source name recorded in the ingestion summary.
    kind: str = "unknown"

    @property
    @abstractmethod
    def description(self) -> str:
        """Where the images come from, for messages and the summary."""

    @abstractmethod
    def iter_chunks(self, chunk_size: int) -> Iterator[ImageChunk]:
        """Yield the images in source order, at most ``chunk_size`` at a time."""

    @property
    def label_names(self) -> list[str] | None:
        """Names of the integer labels, where the source has them."""
        return None

    @property
    def skipped(self) -> list[str]:
        """Items the last full pass skipped as unreadable (image folders only)."""
        return []

    @property
    def split_sizes(self) -> dict[str, int] | None:
        """The images of each split, in source order, for a source that comes
        split (:class:`GivenSplitsSource`, counted by the last full pass); None
        for a source that ingestion splits itself."""
        return None


def with_channel_axis(images: np.ndarray) -> np.ndarray:
    return images[..., np.newaxis] if images.ndim == 3 else images  # noqa: PLR2004


class ArraySource(ImageSource):
    """Images already in memory (small embedded datasets)."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray | None,
        *,
        kind: str,
        description: str,
    ) -> None:
        if images.ndim not in (3, 4):
            raise InputDataError(
                f"{description}: images must have shape (N, H, W) or (N, H, W, C), "
                f"got {images.shape}"
            )
        if labels is not None and len(labels) != len(images):
            raise InputDataError(
                f"{description}: {len(labels)} labels for {len(images)} images"
            )
        self._images = with_channel_axis(images)
        self._labels = labels
        self.kind = kind
        self._description = description

    @property
    def description(self) -> str:
        return self._description

    def iter_chunks(self, chunk_size: int) -> Iterator[ImageChunk]:
        for start in range(0, len(self._images), chunk_size):
            stop = start + chunk_size
            labels = None if self._labels is None else self._labels[start:stop]
            yield ImageChunk(self._images[start:stop], labels)


def read_exact(stream: IO[bytes], size: int, path: StoredFile) -> bytes:
    try:
        data = stream.read(size)
    except READ_ERRORS as exc:
        raise InputDataError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
    return data


class GivenSplitsSource(ImageSource):
    """A source that comes as train, validation and test parts, kept as given.

    Its images are the parts' images one after the other; ingestion takes the
    splits from :attr:`split_sizes` rather than drawing them (statically
    binarized MNIST, for one, is published as 50,000 / 10,000 / 10,000).
    """

    def __init__(self, parts: Mapping[str, ImageSource], *, kind: str) -> None:
        self._parts = dict(parts)
        self.kind = kind
        self._sizes: dict[str, int] | None = None

    @property
    def description(self) -> str:
        return "; ".join(
            f"{name}: {part.description}" for name, part in self._parts.items()
        )

    @property
    def split_sizes(self) -> dict[str, int] | None:
        return self._sizes

    def iter_chunks(self, chunk_size: int) -> Iterator[ImageChunk]:
        sizes: dict[str, int] = {}
        labelled: bool | None = None
        for name, part in self._parts.items():
            sizes[name] = 0
            for chunk in part.iter_chunks(chunk_size):
                has_labels = chunk.labels is not None
                if labelled is None:
                    labelled = has_labels
                elif has_labels != labelled:
                    raise InputDataError(
                        f"{part.description}: the {name} split is "
                        f"{'' if has_labels else 'un'}labelled, the splits before "
                        "it are not: give labels for every split or for none"
                    )
                sizes[name] += len(chunk.images)
                yield chunk
        self._sizes = sizes
