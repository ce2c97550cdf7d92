"""One file of a new batch, as the ``dataset`` of a ``PartitionedDataset``."""

from __future__ import annotations

from vae_pipeline.data.incoming import IncomingFile
from vae_pipeline.datasets.file import FileDataset


class IncomingFileDataset(FileDataset):
    """Read-only handle to one incoming file (:class:`IncomingFile`)."""

    def load(self) -> IncomingFile:
        return IncomingFile(self._file)
