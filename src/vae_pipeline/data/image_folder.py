"""Folders of image files (PNG, JPEG, ...), decoded by Pillow."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any, Literal

import numpy as np

from vae_pipeline.data.incoming import is_hidden
from vae_pipeline.data.sources import ImageSource, with_channel_axis
from vae_pipeline.data.stream import Chunk, Chunks
from vae_pipeline.errors import InputDataError

ColorMode = Literal["grayscale", "rgb"]


def image_folder_source(
    partitions: Mapping[str, Callable[[], Any]],
    *,
    folder: str,
    image_size: tuple[int, int] | None = None,
    color_mode: ColorMode = "grayscale",
    skip_invalid: bool = False,
) -> ImageSource:
    """Images from a folder, one sub-folder per class when labelled.

    Built from the lazy partitions of kedro-datasets' ``PartitionedDataset`` over
    ``pillow.ImageDataset``: a mapping from partition id (the path relative to the
    folder) to a function that loads that image.
    """
    from PIL import Image

    Image.init()
    extensions = {ext.lower() for ext in Image.registered_extensions()}
    visible = [pid for pid in partitions if not is_hidden(pid)]
    image_ids = sorted(
        pid for pid in visible if PurePosixPath(pid).suffix.lower() in extensions
    )
    other_files = sorted(set(visible) - set(image_ids))
    classes = sorted(
        {str(PurePosixPath(pid).parent) for pid in image_ids},
        key=lambda name: (0, int(name), "") if name.isdigit() else (1, 0, name),
    )
    labelled = bool(classes) and "." not in classes
    class_index = {name: index for index, name in enumerate(classes)}
    mode = "L" if color_mode == "grayscale" else "RGB"
    skipped: list[str] = []
    how = "(remove them or set data_ingestion.image_folder.skip_invalid: true)"

    def chunk(images: list[np.ndarray], labels: list[int]) -> Chunk:
        return np.stack(images), np.asarray(labels, np.int64) if labelled else None

    def read(chunk_size: int) -> Chunks:
        if other_files and not skip_invalid:
            raise InputDataError(
                f"{folder}: not image files: {', '.join(other_files)} {how}"
            )
        if not image_ids:
            raise InputDataError(f"{folder}: folder holds no images")
        skipped[:] = other_files
        unreadable: list[str] = []
        reference: tuple[str, tuple[int, ...]] | None = None
        images: list[np.ndarray] = []
        labels: list[int] = []
        for pid in image_ids:
            array = _decode(partitions[pid], mode, image_size)
            if array is None:
                unreadable.append(pid)
                continue
            if reference is None:
                reference = (pid, array.shape)
            elif array.shape != reference[1]:
                raise InputDataError(
                    f"{folder}/{pid}: image is {_size(array.shape)} but "
                    f"{reference[0]} is {_size(reference[1])}; set "
                    "data_ingestion.image_folder.image_size to resize them"
                )
            images.append(array)
            labels.append(class_index[str(PurePosixPath(pid).parent)])
            if len(images) == chunk_size:
                yield chunk(images, labels)
                images, labels = [], []
        if images:
            yield chunk(images, labels)
        if unreadable and not skip_invalid:
            raise InputDataError(
                f"{folder}: unreadable images: {', '.join(unreadable)} {how}"
            )
        skipped.extend(unreadable)
        if reference is None:
            raise InputDataError(f"{folder}: folder holds no readable images")

    return ImageSource(
        read=read,
        kind="image_folder",
        description=f"image folder {folder}",
        label_names=list(class_index) if labelled else None,
        skipped=skipped,
    )


def _decode(
    load: Callable[[], Any], mode: str, image_size: tuple[int, int] | None
) -> np.ndarray | None:
    """One image file as ``(height, width, channels)`` uint8, or None when
    unreadable."""
    from PIL import Image

    try:
        image = load()
        image.load()
    except Exception:  # noqa: BLE001 (pillow raises many types for bad files)
        return None
    image = image.convert(mode)
    if image_size is not None and image.size != image_size[::-1]:
        image = image.resize(image_size[::-1], Image.Resampling.BILINEAR)
    return with_channel_axis(np.asarray(image, dtype=np.uint8)[np.newaxis])[0]


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]}x{shape[2]}"
