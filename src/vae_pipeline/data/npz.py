"""NumPy ``.npz`` archives, streamed from inside the archive."""

from __future__ import annotations

import contextlib
import os
import zipfile
from collections.abc import Iterator
from typing import IO

import numpy as np

from vae_pipeline.data.files import StoredFile
from vae_pipeline.data.sources import (
    READ_ERRORS,
    ImageChunk,
    ImageSource,
    check_image_shape,
    images_per_read,
    read_exact,
    with_channel_axis,
)
from vae_pipeline.errors import InputDataError


class NPZSource(ImageSource):
    """A NumPy archive with images of shape (N, H, W) or (N, H, W, C) and optional
    labels (N,), in the arrays ``images_key`` and ``labels_key`` (``x``, ``y``).

    ``x`` is streamed row block by row block from inside the archive, so neither a
    compressed nor an uncompressed archive is ever loaded whole. (Not ``np.load``:
    its ``NpzFile`` reads a member whole, and ignores ``mmap_mode``; the headers
    are read with NumPy's own ``np.lib.format``.)
    """

    kind = "npz"

    def __init__(
        self,
        path: str | os.PathLike[str] | StoredFile,
        *,
        images_key: str = "x",
        labels_key: str = "y",
    ) -> None:
        self.path = StoredFile.of(path)
        self.images_key = images_key
        self.labels_key = labels_key

    @property
    def description(self) -> str:
        return f"NPZ {self.path}"

    @contextlib.contextmanager
    def _open(self) -> Iterator[zipfile.ZipFile]:
        if not self.path.is_file():
            raise InputDataError(f"{self.path}: NPZ file not found")
        with self.path.open() as stream:
            try:
                archive = zipfile.ZipFile(stream)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:  # s3fs: ValueError
                raise InputDataError(
                    f"{self.path}: not a readable NPZ archive ({exc})"
                ) from exc
            with archive:
                yield archive

    def _read_header(
        self, member: IO[bytes], key: str
    ) -> tuple[tuple[int, ...], np.dtype]:
        try:
            version = np.lib.format.read_magic(member)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran_order, dtype = read_header(member)
        except (ValueError, *READ_ERRORS) as exc:
            raise InputDataError(
                f"{self.path}: array '{key}' is unreadable ({exc})"
            ) from exc
        if dtype.hasobject:
            raise InputDataError(f"{self.path}: array '{key}' holds Python objects")
        if fortran_order:
            raise InputDataError(
                f"{self.path}: array '{key}' is stored in Fortran order; save it with "
                "np.ascontiguousarray"
            )
        return shape, dtype

    def _check_holds(
        self, archive: zipfile.ZipFile, key: str, header_bytes: int, data_bytes: int
    ) -> None:
        """The array's data must be exactly what its header declares."""
        held = archive.getinfo(f"{key}.npy").file_size - header_bytes
        if held != data_bytes:
            raise InputDataError(
                f"{self.path}: array '{key}' declares {data_bytes} bytes of data but "
                f"the archive holds {held}"
            )

    def _labels(self, archive: zipfile.ZipFile, num_images: int) -> np.ndarray:
        y = self.labels_key
        with archive.open(f"{y}.npy") as member:
            shape, dtype = self._read_header(member, y)
            if len(shape) != 1:
                raise InputDataError(
                    f"{self.path}: '{y}' must be one-dimensional, got {shape}"
                )
            if shape[0] != num_images:
                raise InputDataError(
                    f"{self.path}: '{y}' has {shape[0]} labels for {num_images} images"
                )
            self._check_holds(archive, y, member.tell(), shape[0] * dtype.itemsize)
        with archive.open(f"{y}.npy") as member:
            return np.lib.format.read_array(member, allow_pickle=False)

    def iter_chunks(self, chunk_size: int) -> Iterator[ImageChunk]:
        x = self.images_key
        with self._open() as archive:
            names = set(archive.namelist())
            if f"{x}.npy" not in names:
                raise InputDataError(
                    f"{self.path}: archive has no array '{x}' (found "
                    f"{sorted(n.removesuffix('.npy') for n in names)}; "
                    "data_ingestion.npz names the arrays)"
                )
            with archive.open(f"{x}.npy") as member:
                shape, dtype = self._read_header(member, x)
                if len(shape) not in (3, 4):
                    raise InputDataError(
                        f"{self.path}: '{x}' must have shape (N, H, W) or "
                        f"(N, H, W, C), got {shape}"
                    )
                if shape[0] == 0:
                    raise InputDataError(f"{self.path}: '{x}' holds no images")
                item_bytes = check_image_shape(
                    shape, dtype.itemsize, f"{self.path} '{x}'"
                )
                self._check_holds(archive, x, member.tell(), shape[0] * item_bytes)
                # Labels are checked against x and the archive before they are
                # loaded: memory never follows a header that promises more than
                # the file holds.
                has_labels = f"{self.labels_key}.npy" in names
                labels = self._labels(archive, shape[0]) if has_labels else None
                per_read = images_per_read(item_bytes, chunk_size)
                for start in range(0, shape[0], per_read):
                    count = min(per_read, shape[0] - start)
                    data = read_exact(member, count * item_bytes, self.path)
                    if len(data) != count * item_bytes:
                        raise InputDataError(f"{self.path}: array '{x}' is truncated")
                    images = np.frombuffer(data, dtype=dtype).reshape(
                        (count, *shape[1:])
                    )
                    chunk_labels = (
                        None if labels is None else labels[start : start + count]
                    )
                    yield ImageChunk(with_channel_axis(images), chunk_labels)
