"""NumPy ``.npz`` archives, streamed from inside the archive.

The images array is read row block by row block from inside the archive, so
neither a compressed nor an uncompressed archive is ever loaded whole. (Not
``np.load``: its ``NpzFile`` reads a member whole, and ignores ``mmap_mode``; the
headers are read with NumPy's own ``np.lib.format``.)
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from vae_pipeline.data.files import StoredFile
from vae_pipeline.data.sources import (
    READ_ERRORS,
    ImageSource,
    check_image_shape,
    images_per_read,
    read_exact,
    with_channel_axis,
)
from vae_pipeline.data.stream import Chunks
from vae_pipeline.errors import InputDataError


@contextlib.contextmanager
def _open(file: StoredFile) -> Iterator[zipfile.ZipFile]:
    if not file.is_file():
        raise InputDataError(f"{file}: NPZ file not found")
    with file.open() as stream:
        try:
            archive = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:  # s3fs: ValueError
            raise InputDataError(f"{file}: not a readable NPZ archive ({exc})") from exc
        with archive:
            yield archive


def _header(member: IO[bytes], file: StoredFile, key: str) -> tuple[Any, np.dtype]:
    try:
        version = np.lib.format.read_magic(member)
        shape, fortran_order, dtype = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )(member)
    except (ValueError, *READ_ERRORS) as exc:
        raise InputDataError(f"{file}: array '{key}' is unreadable ({exc})") from exc
    if dtype.hasobject:
        raise InputDataError(f"{file}: array '{key}' holds Python objects")
    if fortran_order:
        raise InputDataError(
            f"{file}: array '{key}' is stored in Fortran order; save it with "
            "np.ascontiguousarray"
        )
    return shape, dtype


def _check_holds(
    archive: zipfile.ZipFile, member: IO[bytes], file: StoredFile, key: str, size: int
) -> None:
    """The array's data must be exactly what its header declares."""
    held = archive.getinfo(f"{key}.npy").file_size - member.tell()
    if held != size:
        raise InputDataError(
            f"{file}: array '{key}' declares {size} bytes of data but the archive "
            f"holds {held}"
        )


def _labels(
    archive: zipfile.ZipFile, file: StoredFile, y: str, count: int
) -> np.ndarray:
    with archive.open(f"{y}.npy") as member:
        shape, dtype = _header(member, file, y)
        if len(shape) != 1:
            raise InputDataError(f"{file}: '{y}' must be one-dimensional, got {shape}")
        if shape[0] != count:
            raise InputDataError(
                f"{file}: '{y}' has {shape[0]} labels for {count} images"
            )
        size = shape[0] * dtype.itemsize
        _check_holds(archive, member, file, y, size)
        data = read_exact(member, size, file)
        if len(data) != size:
            raise InputDataError(f"{file}: array '{y}' is truncated")
        return np.frombuffer(data, dtype)


def iter_npz(file: StoredFile, x: str, y: str, chunk_size: int) -> Chunks:
    """The images ``x`` (and labels ``y``, where the archive has them) in chunks."""
    with _open(file) as archive:
        names = set(archive.namelist())
        if f"{x}.npy" not in names:
            raise InputDataError(
                f"{file}: archive has no array '{x}' (found "
                f"{sorted(n.removesuffix('.npy') for n in names)}; "
                "data_ingestion.npz names the arrays)"
            )
        with archive.open(f"{x}.npy") as member:
            shape, dtype = _header(member, file, x)
            if len(shape) not in (3, 4):
                raise InputDataError(
                    f"{file}: '{x}' must have shape (N, H, W) or (N, H, W, C), "
                    f"got {shape}"
                )
            if shape[0] == 0:
                raise InputDataError(f"{file}: '{x}' holds no images")
            row_bytes = check_image_shape(shape, dtype.itemsize, f"{file} '{x}'")
            _check_holds(archive, member, file, x, shape[0] * row_bytes)
            # Labels are checked against x and the archive before they are loaded:
            # memory never follows a header that promises more than the file holds.
            has_labels = f"{y}.npy" in names
            labels = _labels(archive, file, y, shape[0]) if has_labels else None
            per_read = images_per_read(row_bytes, chunk_size)
            for start in range(0, shape[0], per_read):
                count = min(per_read, shape[0] - start)
                data = read_exact(member, count * row_bytes, file)
                if len(data) != count * row_bytes:
                    raise InputDataError(f"{file}: array '{x}' is truncated")
                images = np.frombuffer(data, dtype).reshape((count, *shape[1:]))
                yield (
                    with_channel_axis(images),
                    None if labels is None else labels[start : start + count],
                )


def npz_source(
    file: StoredFile, *, images_key: str = "x", labels_key: str = "y"
) -> ImageSource:
    """A NumPy archive with images of shape (N, H, W) or (N, H, W, C) and optional
    labels (N,), in the arrays ``images_key`` and ``labels_key``."""
    return ImageSource(
        read=lambda size: iter_npz(file, images_key, labels_key, size),
        kind="npz",
        description=f"NPZ {file}",
    )
