"""What killed runs left in the model-input layer without committing it, and its
removal: ``remove_abandoned_data_node`` (at the start of ingestion and
retraining) decides which to remove; this dataset lists them and removes them."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from vae_pipeline.data.files import filesystem
from vae_pipeline.data.versions import uncommitted_split_versions


class ModelInputVersionsDataset(AbstractDataset[list[str], list[dict[str, Any]]]):
    """The split versions no data version commits: loading lists them as
    :func:`~vae_pipeline.data.versions.uncommitted_split_versions` does, each
    ``path`` a URL; saving a list of such paths removes them, and refuses a path
    outside the splits' folders.

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
        self._records = str(self._root / data_version)
        self.metadata = metadata

    def _url(self, path: PurePosixPath | str) -> str:
        return str(path) if self._protocol == "file" else f"{self._protocol}://{path}"

    def load(self) -> list[dict[str, Any]]:
        found = uncommitted_split_versions(
            self._fs, str(self._root), self._splits, self._records
        )
        return [{**entry, "path": self._url(entry["path"])} for entry in found]

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
            "data_version": self._url(self._records),
        }
