"""The base of the datasets that only read: raw sources and incoming files."""

from __future__ import annotations

from typing import Any, NoReturn

from kedro.io import AbstractDataset, DatasetError


class ReadOnlyDataset(AbstractDataset[None, Any]):
    """A dataset a pipeline reads and never writes: saving it is an error."""

    def save(self, data: None) -> NoReturn:
        raise DatasetError(f"{type(self).__name__} is read-only")
