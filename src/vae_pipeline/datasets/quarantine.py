"""Where the drift gate puts the batches it refuses."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from vae_pipeline.data.files import filesystem

REASON_FILE = ".quarantine-reason.txt"  # hidden: ignored if the batch comes back


class QuarantineDataset(AbstractDataset[dict[str, str], dict[str, str]]):
    """Batches the drift gate refused, moved out of ``incoming/``: saving
    ``{batch: reason}`` writes each reason into the batch's folder and moves the
    folder to ``filepath`` (one rename on a disk; object by object on object
    storage); loading gives ``{batch: folder}``.

    Example catalog entry::

        quarantined_batches:
          type: vae_pipeline.datasets.QuarantineDataset
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
