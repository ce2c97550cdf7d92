"""What runs left in the model-input layer without committing it, and its removal.

A split's version becomes visible only when a data version record commits it
(:mod:`vae_pipeline.datasets.data_version`). A run killed before its commit
leaves version folders that no record names, finished or cut short (no
manifest): nobody reads them, but they take space. ``remove_abandoned_data_node``
(at the start of ingestion and retraining) decides which to remove; this dataset
lists them and removes them.
"""

from __future__ import annotations

import json
import socket
from pathlib import PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from vae_pipeline.data.files import filesystem
from vae_pipeline.data.shards import MANIFEST, WRITER
from vae_pipeline.datasets.data_version import committed_split_versions
from vae_pipeline.locks import process_alive


class ModelInputVersionsDataset(AbstractDataset[list[str], list[dict[str, Any]]]):
    """The split versions no data version commits: loading lists them as
    ``{"path", "split", "writer": {"host", "pid"} or None, "writer_alive"}``
    (``writer_alive`` None where it cannot be checked from here: another machine's
    process, or no record); saving a list of such paths removes them, and refuses
    a path outside the splits' folders.

    Example catalog entry::

        model_input_versions:
          type: vae_pipeline.datasets.ModelInputVersionsDataset
          filepath: data/05_model_input
          splits: [train, validation, test]
          data_version: data_version.json
    """

    def __init__(
        self,
        *,
        filepath: str,
        splits: list[str],
        data_version: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._fs, self._protocol, path = filesystem(
            filepath, credentials=credentials, fs_args=fs_args
        )
        self._root = PurePosixPath(path)
        self._splits = list(splits)
        self._records = self._url(self._root / data_version)
        self._storage = {"credentials": credentials, "fs_args": fs_args}
        self.metadata = metadata

    def _url(self, path: PurePosixPath | str) -> str:
        return str(path) if self._protocol == "file" else f"{self._protocol}://{path}"

    def _writer(self, folder: str, split: str) -> dict[str, Any] | None:
        for name in (MANIFEST, WRITER):
            try:
                content = json.loads(self._fs.cat_file(f"{folder}/{split}/{name}"))
            except (OSError, ValueError):
                continue
            if isinstance(content, dict) and isinstance(content.get("writer"), dict):
                return content["writer"]
        return None

    def load(self) -> list[dict[str, Any]]:
        found = []
        host = socket.gethostname()
        for split in self._splits:
            root = f"{self._root}/{split}"
            if not self._fs.isdir(root):
                continue
            committed = set(
                committed_split_versions(self._records, split, **self._storage)
            )
            for folder in self._fs.ls(root, detail=False):
                name = PurePosixPath(folder).name
                if name.startswith(".") or name in committed:
                    continue
                writer = self._writer(folder, split)
                pid = (writer or {}).get("pid")
                checkable = writer is not None and writer.get("host") == host
                alive = (
                    process_alive(pid) if checkable and isinstance(pid, int) else None
                )
                found.append(
                    {
                        "path": self._url(folder),
                        "split": split,
                        "writer": writer,
                        "writer_alive": alive,
                    }
                )
        return found

    def save(self, data: list[str]) -> None:
        roots = [f"{self._url(self._root / split)}/" for split in self._splits]
        for path in data:
            if not any(path.startswith(root) for root in roots):
                raise DatasetError(f"{path}: not a version of the splits {roots}")
        for path in data:
            self._fs.rm(path, recursive=True)

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._url(self._root),
            "splits": self._splits,
            "data_version": self._records,
        }
