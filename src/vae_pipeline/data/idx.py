"""MNIST's IDX format (raw or gzip-compressed), read in chunks and written.

Written here because neither NumPy nor Keras reads IDX files (``keras.datasets``
reads only its own cached copy of MNIST); the parsing is a 4-byte magic number
and the dimensions, then ``np.frombuffer``.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from vae_pipeline.data.files import StoredFile
from vae_pipeline.data.sources import (
    ImageSource,
    check_image_shape,
    images_per_read,
    read_exact,
    with_channel_axis,
)
from vae_pipeline.data.stream import Chunks
from vae_pipeline.errors import InputDataError

logger = logging.getLogger(__name__)

IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class IDXHeader:
    """Parsed header of an IDX file; ``item_bytes`` per item of the first axis."""

    dtype: np.dtype
    dims: tuple[int, ...]
    item_bytes: int


@contextlib.contextmanager
def _open(file: StoredFile) -> Iterator[IO[bytes]]:
    if not file.is_file():
        raise InputDataError(f"{file}: IDX file not found")
    with file.open() as stream:
        is_gzip = stream.read(2) == _GZIP_MAGIC
        stream.seek(0)
        if not is_gzip:
            yield stream
            return
        with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
            yield unzipped


def _parse_header(stream: IO[bytes], file: StoredFile, magic: int) -> IDXHeader:
    head = read_exact(stream, 4, file)
    if len(head) < 4:  # noqa: PLR2004
        raise InputDataError(f"{file}: empty or truncated IDX file")
    found, type_code, ndim = int.from_bytes(head, "big"), head[2], head[3]
    if head[:2] != b"\0\0" or type_code not in _IDX_DTYPES or ndim != magic & 0xFF:
        kind = "images" if magic == IDX_IMAGES_MAGIC else "labels"
        raise InputDataError(
            f"{file}: wrong IDX magic number {found} (0x{found:08x}); "
            f"expected {magic} for {kind}"
        )
    raw = read_exact(stream, 4 * ndim, file)
    if len(raw) < 4 * ndim:
        raise InputDataError(f"{file}: IDX header is truncated")
    dims = tuple(int.from_bytes(raw[4 * i : 4 * i + 4], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[type_code]
    if magic == IDX_IMAGES_MAGIC:
        check_image_shape(dims, dtype.itemsize, str(file))
    return IDXHeader(dtype, dims, math.prod(dims[1:]) * dtype.itemsize)


def _check_payload(file: StoredFile, header: IDXHeader, actual: int) -> None:
    declared = header.dims[0] * header.item_bytes
    if actual != declared:
        raise InputDataError(
            f"{file}: IDX header declares {'x'.join(map(str, header.dims))} "
            f"({declared} bytes of data) but the file holds {actual} bytes of data"
        )


def read_idx_header(file: StoredFile, magic: int) -> IDXHeader:
    """Parse the header and, for uncompressed files, check it against the size."""
    with _open(file) as stream:
        header = _parse_header(stream, file, magic)
        if not isinstance(stream, gzip.GzipFile):
            _check_payload(file, header, file.size() - 4 - 4 * len(header.dims))
    return header


def iter_idx(file: StoredFile, magic: int, chunk_size: int) -> Iterator[np.ndarray]:
    """Yield the items in chunks of at most ``chunk_size``; checks the size."""
    with _open(file) as stream:
        header = _parse_header(stream, file, magic)
        count, size = header.dims[0], header.item_bytes
        per_read = images_per_read(size, chunk_size)
        for start in range(0, count, per_read):
            take = min(per_read, count - start)
            data = read_exact(stream, take * size, file)
            if len(data) < take * size:
                _check_payload(file, header, start * size + len(data))
            yield np.frombuffer(data, header.dtype).reshape((take, *header.dims[1:]))
        extra = 0
        while block := read_exact(stream, 1 << 20, file):
            extra += len(block)
        if extra:
            _check_payload(file, header, count * size + extra)


def write_idx(
    path: str | os.PathLike[str],
    array: np.ndarray,
    *,
    compress: bool | None = None,
) -> Path:
    """Write images ``(N, H, W)`` or labels ``(N,)`` as an IDX file, gzipped when
    ``compress`` (by default, when the name ends in ``.gz``); returns the path."""
    path = Path(path)
    codes = {dtype.newbyteorder(">").str: code for code, dtype in _IDX_DTYPES.items()}
    big_endian = array.astype(array.dtype.newbyteorder(">"))
    code = codes.get(big_endian.dtype.str)
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(dim).to_bytes(4, "big") for dim in array.shape
    )
    compress = path.suffix == ".gz" if compress is None else compress
    opener = gzip.open if compress else open
    with opener(path, "wb") as stream:
        stream.write(header)
        stream.write(np.ascontiguousarray(big_endian).tobytes())
    return path


def idx_source(
    images: StoredFile,
    labels: StoredFile | None = None,
    *,
    labels_optional: bool = False,
) -> ImageSource:
    """MNIST-format images (magic 2051) with optional labels (magic 2049).

    With ``labels_optional``, a labels file that does not exist when the source
    is read makes it unlabelled (said in the log) instead of an error.
    """

    def read(chunk_size: int) -> Chunks:
        image_header = read_idx_header(images, IDX_IMAGES_MAGIC)
        if image_header.dims[0] == 0:
            raise InputDataError(f"{images}: IDX file holds no images")
        label_file = labels
        if labels_optional and label_file is not None and not label_file.is_file():
            logger.info("No IDX labels at %s: ingesting unlabelled", label_file)
            label_file = None
        label_chunks: Iterator[np.ndarray] | None = None
        if label_file is not None:
            count = read_idx_header(label_file, IDX_LABELS_MAGIC).dims[0]
            if count != image_header.dims[0]:
                raise InputDataError(
                    f"{label_file}: {count} labels for {image_header.dims[0]} "
                    f"images in {images}"
                )
            label_chunks = iter_idx(label_file, IDX_LABELS_MAGIC, chunk_size)
        for chunk in iter_idx(images, IDX_IMAGES_MAGIC, chunk_size):
            chunk_labels = None if label_chunks is None else next(label_chunks)
            yield with_channel_axis(chunk), chunk_labels
        for _ in label_chunks or ():  # drains the stream so its size is checked
            pass

    with_labels = "" if labels is None else f" with labels {labels}"
    if labels is not None and labels_optional:
        with_labels += " where that file exists"
    return ImageSource(read=read, kind="idx", description=f"IDX {images}{with_labels}")
