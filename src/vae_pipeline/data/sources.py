"""The one way raw images are read: an :class:`ImageSource`, one per format
(:mod:`.idx`, :mod:`.npz`, :mod:`.image_folder`, :mod:`.keras_datasets`, arrays).

A source reads nothing until it is read, then a chunk at a time. Unlike an
:class:`~vae_pipeline.data.stream.ImageStream` it is raw and unchecked: its size,
shape and scale are known once :func:`~vae_pipeline.data.prepare.profile_source`
has validated it. Format problems raise :class:`InputDataError` naming the file.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO

import numpy as np

from vae_pipeline.data.files import StoredFile
from vae_pipeline.data.stream import Chunks, ImageStream
from vae_pipeline.errors import InputDataError

READ_ERRORS = (EOFError, OSError, zlib.error)
# A header is only a promise: memory while reading follows what it declares only
# up to these bounds, and past them the file is rejected before anything is read.
MAX_IMAGE_BYTES = 64 * 2**20  # one image (8192 x 8192 RGB uint8 is 192 MiB)
READ_BUDGET_BYTES = 64 * 2**20  # one read: fewer images than chunk_size if needed


@dataclass(frozen=True, kw_only=True)
class ImageSource:
    """Raw images of one source, optionally labelled, read only when ``read``.

    ``read`` maps a chunk size to ``(images, labels)`` chunks in source order,
    images ``(n, height, width, channels)`` in the source's dtype. ``kind`` and
    ``description`` name it in messages and the summary; ``skipped`` (unreadable
    items) and ``split_sizes`` (of a source that comes split) are filled by the
    last full pass.
    """

    read: Callable[[int], Chunks]
    kind: str
    description: str
    label_names: list[str] | None = None
    skipped: list[str] = field(default_factory=list)
    split_sizes: dict[str, int] = field(default_factory=dict)


def check_image_shape(shape: tuple[int, ...], itemsize: int, where: str) -> int:
    """Bytes per image of a declared ``shape`` (first axis the count); an
    :class:`InputDataError` naming ``where`` for zero-size or oversized images."""
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


def with_channel_axis(images: np.ndarray) -> np.ndarray:
    return images[..., np.newaxis] if images.ndim == 3 else images  # noqa: PLR2004


def read_exact(stream: IO[bytes], size: int, path: StoredFile) -> bytes:
    try:
        data = stream.read(size)
    except READ_ERRORS as exc:
        raise InputDataError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
    return data


def array_source(
    images: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    kind: str,
    description: str,
) -> ImageSource:
    """Images already in memory (small embedded datasets), ``(N, H, W)`` or
    ``(N, H, W, C)``."""
    if images.ndim not in (3, 4):
        raise InputDataError(
            f"{description}: images must have shape (N, H, W) or (N, H, W, C), "
            f"got {images.shape}"
        )
    if labels is not None and len(labels) != len(images):
        raise InputDataError(
            f"{description}: {len(labels)} labels for {len(images)} images"
        )
    arrays = ImageStream.of(with_channel_axis(images), labels)
    return ImageSource(read=arrays.read, kind=kind, description=description)


def given_splits(parts: Mapping[str, ImageSource], *, kind: str) -> ImageSource:
    """A source that comes as train, validation and test parts, kept as given
    (binarized MNIST's 50,000 / 10,000 / 10,000): the parts one after the other,
    their sizes in :attr:`ImageSource.split_sizes`."""
    sizes: dict[str, int] = {}

    def read(chunk_size: int) -> Chunks:
        labelled: bool | None = None
        for name, part in parts.items():
            sizes[name] = 0
            for images, labels in part.read(chunk_size):
                if labelled is None:
                    labelled = labels is not None
                elif (labels is not None) != labelled:
                    raise InputDataError(
                        f"{part.description}: the {name} split is "
                        f"{'un' if labelled else ''}labelled, the splits before "
                        "it are not: give labels for every split or for none"
                    )
                sizes[name] += len(images)
                yield images, labels

    description = "; ".join(f"{name}: {p.description}" for name, p in parts.items())
    return ImageSource(read=read, kind=kind, description=description, split_sizes=sizes)
