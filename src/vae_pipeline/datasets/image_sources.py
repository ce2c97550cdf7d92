"""Lazy image sources that stream raw images in bounded chunks.

Every raw-data dataset of the project loads as an :class:`ImageSource`: a cheap
handle that reads nothing until :meth:`ImageSource.iter_chunks` is iterated, and
then never more than ``chunk_size`` images at a time. Format-level problems (a
corrupt gzip stream, a wrong IDX magic number, a header that disagrees with the
file size, label and image counts that differ) raise :class:`InputDataError`
naming the file.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import math
import os
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal

import numpy as np

from vae_pipeline.datasets.storage import StoredFile
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
_READ_ERRORS = (EOFError, OSError, zlib.error)
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


def _with_channel_axis(images: np.ndarray) -> np.ndarray:
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
        self._images = _with_channel_axis(images)
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


# --------------------------------------------------------------------------- IDX


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


def _read_exact(stream: IO[bytes], size: int, path: StoredFile) -> bytes:
    try:
        data = stream.read(size)
    except _READ_ERRORS as exc:
        raise InputDataError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
    return data


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
        head = _read_exact(stream, 4, self.path)
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
        dims_raw = _read_exact(stream, 4 * ndim, self.path)
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
                data = _read_exact(stream, count * header.item_bytes, self.path)
                if len(data) < count * header.item_bytes:
                    self._check_payload_size(
                        header, read * header.item_bytes + len(data)
                    )
                array = np.frombuffer(data, dtype=header.dtype)
                yield array.reshape((count, *header.dims[1:]))
                read += count
            extra = 0
            while block := _read_exact(stream, 1 << 20, self.path):
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
            yield ImageChunk(_with_channel_axis(images), labels)
        if label_chunks is not None:
            for _ in label_chunks:  # drains the stream so its size is checked
                pass


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


# --------------------------------------------------------------------------- NPZ


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
        except (ValueError, *_READ_ERRORS) as exc:
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
                    data = _read_exact(member, count * item_bytes, self.path)
                    if len(data) != count * item_bytes:
                        raise InputDataError(f"{self.path}: array '{x}' is truncated")
                    images = np.frombuffer(data, dtype=dtype).reshape(
                        (count, *shape[1:])
                    )
                    chunk_labels = (
                        None if labels is None else labels[start : start + count]
                    )
                    yield ImageChunk(_with_channel_axis(images), chunk_labels)


# ------------------------------------------------------------------ image folders

ColorMode = Literal["grayscale", "rgb"]


class ImageFolderSource(ImageSource):
    """Images from a folder, one sub-folder per class when labelled.

    Built from the lazy partitions of kedro-datasets' ``PartitionedDataset`` over
    ``pillow.ImageDataset``: a mapping from partition id (the path relative to the
    folder) to a function that loads that image.
    """

    kind = "image_folder"

    def __init__(
        self,
        partitions: Mapping[str, Callable[[], Any]],
        *,
        folder: str,
        image_size: tuple[int, int] | None = None,
        color_mode: ColorMode = "grayscale",
        skip_invalid: bool = False,
    ) -> None:
        from PIL import Image

        Image.init()
        extensions = {ext.lower() for ext in Image.registered_extensions()}
        visible = {
            pid: load
            for pid, load in partitions.items()
            if not any(part.startswith(".") for part in PurePosixPath(pid).parts)
        }
        self._folder = folder
        self._image_ids = sorted(
            pid for pid in visible if PurePosixPath(pid).suffix.lower() in extensions
        )
        self._other_files = sorted(set(visible) - set(self._image_ids))
        self._loaders = {pid: visible[pid] for pid in self._image_ids}
        self._image_size = image_size
        self._mode = "L" if color_mode == "grayscale" else "RGB"
        self._skip_invalid = skip_invalid
        self._skipped: list[str] = []
        classes = sorted(
            {str(PurePosixPath(pid).parent) for pid in self._image_ids},
            key=lambda name: (0, int(name), "") if name.isdigit() else (1, 0, name),
        )
        self._labelled = bool(classes) and "." not in classes
        self._class_index = {name: index for index, name in enumerate(classes)}

    @property
    def description(self) -> str:
        return f"image folder {self._folder}"

    @property
    def label_names(self) -> list[str] | None:
        return list(self._class_index) if self._labelled else None

    @property
    def skipped(self) -> list[str]:
        return list(self._skipped)

    def _check_listing(self) -> None:
        if not self._image_ids and not self._other_files:
            raise InputDataError(f"{self._folder}: folder holds no images")
        if self._other_files and not self._skip_invalid:
            raise InputDataError(
                f"{self._folder}: not image files: {', '.join(self._other_files)} "
                "(remove them or set data_ingestion.image_folder.skip_invalid: true)"
            )
        if not self._image_ids:
            raise InputDataError(f"{self._folder}: folder holds no images")

    def _load(self, pid: str) -> np.ndarray | None:
        from PIL import Image

        try:
            image = self._loaders[pid]()
            image.load()
        except Exception:  # noqa: BLE001 (pillow raises many types for bad files)
            return None
        image = image.convert(self._mode)
        if self._image_size is not None:
            height, width = self._image_size
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
        return _with_channel_axis(np.asarray(image, dtype=np.uint8)[np.newaxis])[0]

    def iter_chunks(self, chunk_size: int) -> Iterator[ImageChunk]:
        self._check_listing()
        self._skipped = list(self._other_files)
        unreadable: list[str] = []
        reference: tuple[str, tuple[int, ...]] | None = None
        images: list[np.ndarray] = []
        labels: list[int] = []
        for pid in self._image_ids:
            array = self._load(pid)
            if array is None:
                unreadable.append(pid)
                continue
            if reference is None:
                reference = (pid, array.shape)
            elif array.shape != reference[1]:
                raise InputDataError(
                    f"{self._folder}/{pid}: image is {_size(array.shape)} but "
                    f"{reference[0]} is {_size(reference[1])}; set "
                    "data_ingestion.image_folder.image_size to resize them"
                )
            images.append(array)
            labels.append(self._class_index[str(PurePosixPath(pid).parent)])
            if len(images) == chunk_size:
                yield self._chunk(images, labels)
                images, labels = [], []
        if images:
            yield self._chunk(images, labels)
        if unreadable and not self._skip_invalid:
            raise InputDataError(
                f"{self._folder}: unreadable images: {', '.join(unreadable)} "
                "(remove them or set data_ingestion.image_folder.skip_invalid: true)"
            )
        self._skipped += unreadable
        if reference is None:
            raise InputDataError(f"{self._folder}: folder holds no readable images")

    def _chunk(self, images: list[np.ndarray], labels: list[int]) -> ImageChunk:
        label_array = np.asarray(labels, dtype=np.int64) if self._labelled else None
        return ImageChunk(np.stack(images), label_array)


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]}x{shape[2]}"


# ---------------------------------------------------------------- keras.datasets

KerasDatasetName = Literal["mnist", "fashion_mnist"]
KerasSplit = Literal["train", "test", "all"]


class KerasDatasetSource(ImageSource):
    """MNIST or Fashion-MNIST through ``keras.datasets``' own ``load_data``: from
    the Keras cache (``$KERAS_HOME/datasets``) when the files are there, otherwise
    downloaded, which needs internet access. Both are small enough to hold whole.
    """

    kind = "keras"

    def __init__(self, dataset: KerasDatasetName, split: KerasSplit = "all") -> None:
        self.dataset = dataset
        self.split = split

    @property
    def description(self) -> str:
        return f"keras.datasets.{self.dataset} ({self.split})"

    def iter_chunks(self, chunk_size: int) -> Iterator[ImageChunk]:
        import keras

        try:
            train, test = getattr(keras.datasets, self.dataset).load_data()
        except Exception as exc:
            raise InputDataError(
                f"{self.description}: keras.datasets could not load it, from its "
                f"cache or by download ({type(exc).__name__}: {exc})"
            ) from exc
        parts = {"train": train, "test": test}
        for split in ["train", "test"] if self.split == "all" else [self.split]:
            images, labels = parts[split]
            source = ArraySource(
                images, labels, kind=self.kind, description=self.description
            )
            yield from source.iter_chunks(chunk_size)
