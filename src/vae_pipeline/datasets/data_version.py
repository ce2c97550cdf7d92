"""The catalog's side of data versions (:mod:`vae_pipeline.data.versions`): the
commit records as kedro-datasets' ``JSONDataset``, always versioned. A record is
one small object, whole or absent, on a disk (written aside and renamed) as on
object storage (one PUT). The parent check runs under a local lock on a disk;
object stores offer fsspec no lock, so there serialize the runs (the Airflow DAG
allows one).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import DatasetError, Version
from kedro.io.core import VersionNotFoundError
from kedro_datasets.json import JSONDataset

from vae_pipeline.data.shards import writer
from vae_pipeline.data.versions import FORMAT_NAME, read_record
from vae_pipeline.locks import FileLock

logger = logging.getLogger(__name__)


class DataVersionConflict(DatasetError):  # noqa: N818 (reads as the state it is)
    """Another run committed a data version on top of the same parent first."""


class DataVersionDataset(JSONDataset):
    """The commit records of the data versions: kedro-datasets' ``JSONDataset``,
    always versioned, whose load checks a record and whose save commits one under
    the run's save version::

        data_version:
          type: vae_pipeline.datasets.DataVersionDataset
          filepath: data/05_model_input/data_version.json
          versioned: true
    """

    def __init__(
        self,
        *,
        filepath: str,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if version is None:
            raise DatasetError(
                f"DataVersionDataset '{filepath}': set versioned: true (a record is "
                "saved under the run's save version, that of the splits it commits)"
            )
        super().__init__(
            filepath=filepath,
            version=version,
            credentials=credentials,
            fs_args=fs_args,
            metadata=metadata,
        )

    def load(self) -> dict[str, Any]:
        try:
            path = self._get_load_path()
        except VersionNotFoundError:
            raise DatasetError(
                f"{self._filepath.parent}: no committed data version; run the "
                "data_ingestion pipeline first"
            ) from None
        return read_record(self._fs, str(path))

    def save(self, data: dict[str, Any]) -> None:
        """Commit a record; one with a ``parent`` commits only while its parent is
        still the latest version (optimistic concurrency, as table formats do:
        of two runs that built on the same version, the second to commit fails
        and commits nothing)."""
        record = {
            "format": FORMAT_NAME,
            "version": self.resolve_save_version(),
            **data,
            "writer": writer(),
        }
        text, target = json.dumps(record, indent=2), Path(self._get_save_path())
        if self._protocol != "file":  # one PUT, whole or absent
            self._check_parent(record.get("parent"))
            self._fs.pipe_file(str(target), text.encode())
        else:  # the check and the commit under one lock, which dies with its process
            folder = Path(self._filepath)
            folder.mkdir(parents=True, exist_ok=True)
            with FileLock(folder / ".commit.lock", parameter="data_version"):
                self._check_parent(record.get("parent"))
                target.parent.mkdir(exist_ok=True)
                temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
                temporary.write_text(text, "utf-8")
                os.replace(temporary, target)  # the commit: one file, whole or absent
        parent, merged = record.get("parent"), len(record.get("incoming", {}))
        logger.info(
            "Data version %s committed%s",
            record["version"],
            f" on top of {parent} ({merged} incoming files merged so far)"
            if parent
            else "",
        )

    def _check_parent(self, parent: str | None) -> None:
        versions = self._get_versions()  # newest first
        latest = PurePosixPath(versions[0]).parent.name if versions else None
        if parent is not None and latest != parent:
            raise DataVersionConflict(
                f"{self._filepath.parent}: this run built on data version "
                f"{parent}, but another run committed {latest} meanwhile; "
                "nothing of this run is committed or registered: run it again"
            )
