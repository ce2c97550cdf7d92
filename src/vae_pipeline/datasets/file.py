"""One file of raw data, handed to the node that reads it."""

from __future__ import annotations

from typing import Any

from vae_pipeline.data.files import StoredFile
from vae_pipeline.datasets.read_only import ReadOnlyDataset


class FileDataset(ReadOnlyDataset):
    """One file at a local path or any fsspec URL, as kedro-datasets take them;
    loads as its handle (:class:`StoredFile`), read by the node that uses it."""

    def __init__(
        self,
        *,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._file = StoredFile.of(filepath, credentials=credentials, fs_args=fs_args)
        self.metadata = metadata

    def load(self) -> StoredFile:
        return self._file

    def _exists(self) -> bool:
        return self._file.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._file.url}
