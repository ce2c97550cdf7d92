"""Data versions: the model-input splits a run wrote, committed together by one
small record written last, as table formats commit (Delta Lake's log, Iceberg's
metadata files)::

    data/05_model_input/data_version.json/<V>/data_version.json
    {"version": V, "parent": ..., "splits": {"train": {"version": V, ...}, ...},
     "summary": {...}, "incoming": {"<batch>/<file>": "<sha256>", ...}}

Splits given ``data_version:`` load the versions the latest record names, so
what a run wrote before its commit is never read. A record is one small object,
whole or absent, on a disk (written aside and renamed) as on object storage (one
PUT). The parent check runs under a local lock on a disk; object stores offer
fsspec no lock, so there serialize the runs (the Airflow DAG allows one).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import DatasetError, Version
from kedro.io.core import VersionNotFoundError
from kedro_datasets.json import JSONDataset

from vae_pipeline.locks import FileLock

FORMAT_NAME = "vae-pipeline-data-version"

logger = logging.getLogger(__name__)


class DataVersionConflict(DatasetError):  # noqa: N818 (reads as the state it is)
    """Another run committed a data version on top of the same parent first."""


def writer() -> dict[str, Any]:
    """Who writes a version: host and pid, to tell an abandoned one later."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


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
        return self._read(str(path))

    def _read(self, path: str) -> dict[str, Any]:
        """One commit record, checked to be one."""
        try:
            record = json.loads(self._fs.cat_file(path))
        except OSError as error:
            raise DatasetError(
                f"{path}: data version record unreadable ({error})"
            ) from None
        except ValueError as error:
            raise DatasetError(
                f"{path}: not a readable data version record ({error})"
            ) from None
        if not isinstance(record, dict) or record.get("format") != FORMAT_NAME:
            raise DatasetError(f"{path}: not a {FORMAT_NAME} record")
        return record

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
        if self._protocol != "file":
            self._check_parent(record.get("parent"))
            self._fs.pipe_file(
                str(self._get_save_path()), json.dumps(record, indent=2).encode()
            )
            self._log_commit(record)
            return
        target = Path(self._get_save_path())
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        temporary.write_text(json.dumps(record, indent=2), "utf-8")
        # The check and the commit under one lock, which dies with its process.
        with FileLock(Path(self._filepath) / ".commit.lock", parameter="data_version"):
            try:
                self._check_parent(record.get("parent"))
            except DataVersionConflict:
                temporary.unlink()
                target.parent.rmdir()
                raise
            os.replace(temporary, target)  # the commit: one file, whole or absent
        self._log_commit(record)

    @staticmethod
    def _log_commit(record: dict[str, Any]) -> None:
        """Say what was committed, once it is (never before the parent check)."""
        parent = record.get("parent")
        merged = len(record.get("incoming", {}))
        logger.info(
            "Data version %s committed%s",
            record["version"],
            f" on top of {parent} ({merged} incoming files merged so far)"
            if parent
            else "",
        )

    def _check_parent(self, parent: str | None) -> None:
        latest = self.latest_version()
        if parent is not None and latest != parent:
            raise DataVersionConflict(
                f"{self._filepath.parent}: this run built on data version "
                f"{parent}, but another run committed {latest} meanwhile; "
                "nothing of this run is committed or registered: run it again"
            )

    def latest_version(self) -> str | None:
        """The latest committed version, None before the first."""
        versions = self._get_versions()
        return PurePosixPath(versions[0]).parent.name if versions else None

    def records(self) -> Iterator[dict[str, Any]]:
        """Every committed record, newest first, each read when it is reached."""
        for path in self._get_versions():
            yield self._read(path)


def committed_split_versions(
    records_path: str, split: str, **storage: dict[str, Any] | None
) -> Iterator[str]:
    """The versions of ``split`` that the records at ``records_path`` name, newest
    first, read lazily (the latest costs one record); ``storage`` holds the
    ``credentials`` and ``fs_args`` of its filesystem."""
    records = DataVersionDataset(
        filepath=records_path, version=Version(None, None), **storage
    ).records()
    return (
        record["splits"][split]["version"]
        for record in records
        if split in record.get("splits", {})
    )


def split_entry(split: Any) -> dict[str, Any]:
    """What a record says of one split: its version, size and content hash."""
    if not getattr(split, "version", None):
        raise DatasetError(
            f"{split}: only a versioned split can be part of a data version"
        )
    return {
        "version": split.version,
        "num_examples": len(split),
        "content_sha256": split.content_sha256,
    }
