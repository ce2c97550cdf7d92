"""New raw data for retraining: one file of a partition under ``incoming/``.

Used as the ``dataset`` of kedro-datasets' ``PartitionedDataset``: a batch of new
data is a folder ``data/01_raw/incoming/<batch>/`` holding NPZ archives, an IDX
images file (with its labels file), or images (in one sub-folder per class when
labelled). Files are told apart by their content (SHA-256), not by their names
or their order, so batch folders may have any name and may grow.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from vae_pipeline.datasets.raw_datasets import ReadOnlyFileDataset
from vae_pipeline.datasets.storage import StoredFile, filesystem
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


class IncomingFileDataset(ReadOnlyFileDataset):
    """Read-only handle to one incoming file; see the module docstring."""

    def load(self) -> IncomingFile:
        return IncomingFile(self._file)


REASON_FILE = ".quarantine-reason.txt"  # hidden: ignored if the batch comes back


class QuarantineDataset(AbstractDataset[dict[str, str], dict[str, str]]):
    """Batches that the drift gate refused, moved aside out of ``incoming/``.

    Saving ``{batch: reason}`` writes each reason into the batch's folder, then
    moves the folder from ``incoming`` to ``filepath``: one rename on a local
    disk, so a refused batch is never half in both; object by object on object
    storage, where a move cut short is finished by the next refusal. Loading gives
    ``{batch: folder}`` of every batch in quarantine. To release one, move its
    folder back to ``incoming/`` and name it in ``retraining.drift.admit``.

    Example catalog entry::

        quarantined_batches:
          type: vae_pipeline.datasets.incoming.QuarantineDataset
          filepath: data/01_raw/quarantine
          incoming: data/01_raw/incoming
    """

    def __init__(
        self,
        *,
        filepath: str,
        incoming: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._fs, protocol, path = filesystem(
            filepath, credentials=credentials, fs_args=fs_args
        )
        _, _, self._incoming = filesystem(incoming, credentials=credentials)
        self._root = path
        self._local = protocol == "file"
        self._url = path if self._local else f"{protocol}://{path}"
        self.metadata = metadata

    def load(self) -> dict[str, str]:
        if not self._fs.isdir(self._root):
            return {}
        names = (PurePosixPath(f).name for f in self._fs.ls(self._root, detail=False))
        return {name: f"{self._url}/{name}" for name in sorted(names)}

    def save(self, data: dict[str, str]) -> None:
        for batch, reason in data.items():
            source = f"{self._incoming}/{batch}"
            target = f"{self._root}/{batch}"
            self._fs.pipe_file(f"{source}/{REASON_FILE}", reason.encode())
            if not self._local:
                # Object stores rename nothing: each object is copied, then
                # deleted. A move cut short leaves the batch in incoming, and the
                # next run's refusal finishes it.
                for path in self._fs.find(source):
                    self._fs.mv(path, target + path[len(source) :])
                continue
            if self._fs.exists(target):
                raise DatasetError(
                    f"{self._url}/{batch}: a batch of that name is in quarantine "
                    "already; rename one of them"
                )
            self._fs.makedirs(self._root, exist_ok=True)
            self._fs.mv(source, target, recursive=True)  # one rename

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._url, "incoming": self._incoming}
