"""New raw data for retraining: a batch of files under ``incoming/``.

A batch of new data is a folder ``data/01_raw/incoming/<batch>/`` holding NPZ
archives, an IDX images file (with its labels file), or images (in one sub-folder
per class when labelled). Files are told apart by their content (SHA-256), not by
their names or their order, so batch folders may have any name and may grow.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from vae_pipeline.data.files import StoredFile
from vae_pipeline.errors import InputDataError, printable


@dataclass(frozen=True)
class IncomingFile:
    """A file of a new batch (on any fsspec filesystem); read only when its batch
    is ingested."""

    path: StoredFile
    sha256: str | None = None  # once computed

    def __post_init__(self) -> None:  # a local path or URL is accepted too
        object.__setattr__(self, "path", StoredFile.of(self.path))

    def content_sha256(self) -> str:
        """SHA-256 of the file's bytes, read block by block."""
        with self.path.open() as stream:
            return hashlib.file_digest(stream, "sha256").hexdigest()

    def load_image(self) -> Any:
        """The file as a PIL image (for image-folder batches)."""
        from PIL import Image

        with self.path.open() as stream, Image.open(stream) as image:
            image.load()
            return image


def batch_of(partition_id: str, *, folder: str) -> str:
    """The batch (first folder) of an incoming partition id under ``folder``."""
    parts = PurePosixPath(partition_id).parts
    if len(parts) < 2:  # noqa: PLR2004
        raise InputDataError(
            f"{folder}/{printable(partition_id)}: new data goes in a batch folder, "
            f"{folder}/<batch>/..."
        )
    return parts[0]


def partition_folder(
    partitions: Mapping[str, Callable[[], IncomingFile]] | Mapping[str, IncomingFile],
    *,
    default: str,
) -> str:
    """The folder or URL that PartitionedDataset's partitions are in, as the
    catalog set it (an environment's data root, a bucket), for messages;
    ``default`` when it holds nothing."""
    for partition_id, handle in partitions.items():
        file = handle if isinstance(handle, IncomingFile) else handle()
        folder = str(file.path)[: -len(partition_id) - 1]
        if "://" in folder or not os.path.isabs(folder):
            return folder
        relative = os.path.relpath(folder)  # from the project, where kedro runs
        return folder if relative.startswith("..") else relative
    return default


def is_hidden(partition_id: str) -> bool:
    """Dot-files and dot-folders (``.gitkeep``) are not data."""
    return any(part.startswith(".") for part in PurePosixPath(partition_id).parts)
