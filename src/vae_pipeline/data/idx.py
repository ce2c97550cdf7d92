"""MNIST's IDX format (raw or gzip-compressed), read in chunks and written.

Written here because neither NumPy nor Keras reads IDX files (``keras.datasets``
reads only its own cached copy of MNIST); the parsing is a 4-byte magic number
and the dimensions, then ``np.frombuffer``.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from vae_pipeline.data.files import StoredFile
from vae_pipeline.data.sources import (
    ImageChunk,
    ImageSource,
    check_image_shape,
    images_per_read,
    read_exact,
    with_channel_axis,
)
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
    """Parsed header of an IDX file."""

    magic: int
    dtype: np.dtype
    dims: tuple[int, ...]
    header_bytes: int

    @property
    def item_bytes(self) -> int:
        """Bytes per item along the first dimension."""
        return int(np.prod(self.dims[1:], dtype=np.int64)) * self.dtype.itemsize

    @property
    def payload_bytes(self) -> int:
        return self.dims[0] * self.item_bytes


@contextlib.contextmanager
def _open_maybe_gzip(path: StoredFile) -> Iterator[IO[bytes]]:
    with path.open() as stream:
        is_gzip = stream.read(2) == _GZIP_MAGIC
        stream.seek(0)
        if not is_gzip:
            yield stream
            return
        with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
            yield unzipped


class IDXFile:
    """Handle to one IDX file (raw or gzip-compressed) on any fsspec filesystem;
    reads nothing when built."""

    def __init__(self, path: str | os.PathLike[str] | StoredFile) -> None:
        self.path = StoredFile.of(path)

    def exists(self) -> bool:
        return self.path.is_file()

    def _check_exists(self) -> None:
        if not self.exists():
            raise InputDataError(f"{self.path}: IDX file not found")

    def _parse_header(self, stream: IO[bytes], expected_magic: int) -> IDXHeader:
        header = self._parse_header_fields(stream, expected_magic)
        if expected_magic == IDX_IMAGES_MAGIC:
            check_image_shape(header.dims, header.dtype.itemsize, str(self.path))
        return header

    def _parse_header_fields(self, stream: IO[bytes], expected_magic: int) -> IDXHeader:
        kind = "images" if expected_magic == IDX_IMAGES_MAGIC else "labels"
        head = read_exact(stream, 4, self.path)
        if len(head) < 4:  # noqa: PLR2004
            raise InputDataError(f"{self.path}: empty or truncated IDX file")
        magic = int.from_bytes(head, "big")
        type_code, ndim = head[2], head[3]
        expected_ndim = expected_magic & 0xFF
        if head[:2] != b"\0\0" or type_code not in _IDX_DTYPES or ndim != expected_ndim:
            raise InputDataError(
                f"{self.path}: wrong IDX magic number {magic} (0x{magic:08x}); "
                f"expected {expected_magic} for {kind}"
            )
        dims_raw = read_exact(stream, 4 * ndim, self.path)
        if len(dims_raw) < 4 * ndim:
            raise InputDataError(f"{self.path}: IDX header is truncated")
        dims = tuple(
            int.from_bytes(dims_raw[4 * i : 4 * i + 4], "big") for i in range(ndim)
        )
        return IDXHeader(magic, _IDX_DTYPES[type_code], dims, 4 + 4 * ndim)

    def read_header(self, expected_magic: int) -> IDXHeader:
        """Parse the header and, for uncompressed files, check it against the size."""
        self._check_exists()
        with _open_maybe_gzip(self.path) as stream:
            header = self._parse_header(stream, expected_magic)
            if not isinstance(stream, gzip.GzipFile):
                actual = self.path.size() - header.header_bytes
                self._check_payload_size(header, actual)
        return header

    def _check_payload_size(self, header: IDXHeader, actual: int) -> None:
        if actual != header.payload_bytes:
            shape = "x".join(map(str, header.dims))
            raise InputDataError(
                f"{self.path}: IDX header declares {shape} "
                f"({header.payload_bytes} bytes of data) but the file holds "
                f"{actual} bytes of data"
            )

    def iter_items(self, expected_magic: int, chunk_size: int) -> Iterator[np.ndarray]:
        """Yield the items in chunks of at most ``chunk_size``; checks the size."""
        self._check_exists()
        with _open_maybe_gzip(self.path) as stream:
            header = self._parse_header(stream, expected_magic)
            read = 0
            per_read = images_per_read(header.item_bytes, chunk_size)
            while read < header.dims[0]:
                count = min(per_read, header.dims[0] - read)
                data = read_exact(stream, count * header.item_bytes, self.path)
                if len(data) < count * header.item_bytes:
                    self._check_payload_size(
                        header, read * header.item_bytes + len(data)
                    )
                array = np.frombuffer(data, dtype=header.dtype)
                yield array.reshape((count, *header.dims[1:]))
                read += count
            extra = 0
            while block := read_exact(stream, 1 << 20, self.path):
                extra += len(block)
            if extra:
                self._check_payload_size(header, header.payload_bytes + extra)


def write_idx(
    path: str | os.PathLike[str],
    array: np.ndarray,
    *,
    compress: bool | None = None,
) -> Path:
    """Write an array as an IDX file (gzip-compressed when the name ends in .gz).

    Args:
        path: Destination file.
        array: uint8 images (N, H, W) or labels (N,), or another IDX dtype.
        compress: Force gzip on or off; by default from the ``.gz`` suffix.

    Returns:
        The path written.
    """
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


class IDXSource(ImageSource):
    """MNIST-format images (magic 2051) with optional labels (magic 2049).

    With ``labels_optional``, a labels file that does not exist when the source
    is read makes it unlabelled (said in the log) instead of an error.
    """

    kind = "idx"

    def __init__(
        self,
        images: IDXFile,
        labels: IDXFile | None = None,
        *,
        labels_optional: bool = False,
    ) -> None:
        self._images = images
        self._labels = labels
        self._labels_optional = labels_optional

    @property
    def description(self) -> str:
        if self._labels is None:
            return f"IDX {self._images.path}"
        return f"IDX {self._images.path} with labels {self._labels.path}"

    def iter_chunks(self, chunk_size: int) -> Iterator[ImageChunk]:
        image_header = self._images.read_header(IDX_IMAGES_MAGIC)
        if image_header.dims[0] == 0:
            raise InputDataError(f"{self._images.path}: IDX file holds no images")
        if (
            self._labels_optional
            and self._labels is not None
            and not self._labels.exists()
        ):
            logger.info("No IDX labels at %s: ingesting unlabelled", self._labels.path)
            self._labels = None
        label_chunks: Iterator[np.ndarray] | None = None
        if self._labels is not None:
            label_header = self._labels.read_header(IDX_LABELS_MAGIC)
            if label_header.dims[0] != image_header.dims[0]:
                raise InputDataError(
                    f"{self._labels.path}: {label_header.dims[0]} labels for "
                    f"{image_header.dims[0]} images in {self._images.path}"
                )
            label_chunks = self._labels.iter_items(IDX_LABELS_MAGIC, chunk_size)
        for images in self._images.iter_items(IDX_IMAGES_MAGIC, chunk_size):
            labels = None if label_chunks is None else next(label_chunks)
            yield ImageChunk(with_channel_axis(images), labels)
        if label_chunks is not None:
            for _ in label_chunks:  # drains the stream so its size is checked
                pass
