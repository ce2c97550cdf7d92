"""Folders of image files (PNG, JPEG, ...), decoded by Pillow."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any, Literal

import numpy as np

from vae_pipeline.data.sources import ImageChunk, ImageSource, with_channel_axis
from vae_pipeline.errors import InputDataError

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
        return with_channel_axis(np.asarray(image, dtype=np.uint8)[np.newaxis])[0]

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
