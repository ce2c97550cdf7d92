"""Image sources from a set of files (NPZ, IDX, image files): a retraining's new
batch, or the files scoring scores."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import PurePosixPath
from typing import Protocol

import numpy as np

from vae_pipeline.data.idx import idx_source
from vae_pipeline.data.image_folder import image_folder_source
from vae_pipeline.data.incoming import IncomingFile
from vae_pipeline.data.npz import npz_source
from vae_pipeline.data.sources import ImageSource
from vae_pipeline.data.stream import Chunks
from vae_pipeline.errors import InputDataError, printable

_IDX_IMAGES = re.compile(r"images-idx3-ubyte(\.gz)?$")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class ImageFolderOptions(Protocol):
    """How image files are decoded (``data_ingestion.image_folder``)."""

    image_size: list[int] | None
    color_mode: str
    skip_invalid: bool


class NPZArrayNames(Protocol):
    """The arrays of NPZ archives (``data_ingestion.npz``)."""

    images: str
    labels: str


def numeric_label_source(source: ImageSource, where: str) -> ImageSource:
    """An image folder's class indices turned back into its numeric folder names."""
    names = source.label_names or []
    if not all(name.isdigit() for name in names):
        raise InputDataError(
            f"{where}: class folders must be numeric labels "
            f"(0, 1, ...) to merge with the training data, got {names}"
        )
    numbers = np.array([int(name) for name in names], dtype=np.int64)

    def read(chunk_size: int) -> Chunks:
        for images, labels in source.read(chunk_size):
            yield images, None if labels is None else numbers[labels]

    return replace(source, read=read, label_names=None)


def file_sources(
    files: Mapping[str, IncomingFile],
    *,
    where: str,
    prefix: str,
    image_folder: ImageFolderOptions,
    npz: NPZArrayNames,
    numeric_labels: bool,
) -> dict[str, ImageSource]:
    """The image sources a set of files holds, by ``<prefix>/<file>``, nothing
    read yet: one per NPZ archive or IDX images file (its labels file beside it),
    and one for all the image files, decoded as ``image_folder`` says. With
    ``numeric_labels``, class folders must be numeric labels (to join numerically
    labelled data). Files that are not image data, or IDX labels without their
    images, raise :class:`InputDataError` naming them under ``where``.
    """
    sources: dict[str, ImageSource] = {}
    images: dict[str, IncomingFile] = {}
    label_files = {name for name in files if "labels-idx1-ubyte" in name}
    unpaired_labels = set(label_files)
    for name, file in sorted(files.items()):
        suffix = PurePosixPath(name).suffix.lower()
        if suffix == ".npz":
            sources[f"{prefix}/{name}"] = npz_source(
                file.path, images_key=npz.images, labels_key=npz.labels
            )
        elif _IDX_IMAGES.search(name):
            labels_name = _IDX_IMAGES.sub(
                lambda match: f"labels-idx1-ubyte{match.group(1) or ''}", name
            )
            labels = files.get(labels_name)
            unpaired_labels.discard(labels_name)
            sources[f"{prefix}/{name}"] = idx_source(
                file.path, labels.path if labels else None
            )
        elif suffix in _IMAGE_SUFFIXES:
            images[name] = file
        elif name not in label_files:
            raise InputDataError(
                f"{where}/{printable(name)}: not new data (NPZ, IDX images and "
                "labels, or image files)"
            )
    if unpaired_labels:
        raise InputDataError(
            f"{where}/{sorted(unpaired_labels)[0]}: IDX labels without their "
            "images file"
        )
    if images:
        folder = image_folder_source(
            {name: file.load_image for name, file in images.items()},
            folder=where,
            image_size=tuple(image_folder.image_size)
            if image_folder.image_size
            else None,
            color_mode=image_folder.color_mode,
            skip_invalid=image_folder.skip_invalid,
        )
        sources[f"{prefix}/images"] = (
            numeric_label_source(folder, where) if numeric_labels else folder
        )
    return sources
