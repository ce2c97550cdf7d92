"""Data versions: the model-input splits a run wrote, committed together by one
small record written last, as table formats commit (Delta Lake's log, Iceberg's
metadata files)::

    data/05_model_input/data_version.json/<V>/data_version.json
    {"version": V, "parent": ..., "splits": {"train": {"version": V, ...}, ...},
     "summary": {...}, "incoming": {"<batch>/<file>": "<sha256>", ...}}

Splits load the versions the latest record names, so what a run wrote before its
commit is never read; what no record names was left by a killed run, and
:func:`uncommitted_split_versions` finds it for the node that removes it.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from fsspec import AbstractFileSystem

from vae_pipeline.data.shards import MANIFEST, WRITER, ShardedArrays
from vae_pipeline.errors import InputDataError
from vae_pipeline.locks import process_alive

FORMAT_NAME = "vae-pipeline-data-version"


def split_entry(split: ShardedArrays) -> dict[str, Any]:
    """What a record says of one split: its version, size and content hash."""
    if not split.version:
        raise InputDataError(
            f"{split}: only a versioned split can be part of a data version"
        )
    return {
        "version": split.version,
        "num_examples": len(split),
        "content_sha256": split.content_sha256,
    }


def read_record(fs: AbstractFileSystem, path: str) -> dict[str, Any]:
    """One commit record, checked to be one."""
    try:
        record = json.loads(fs.cat_file(path))
    except (OSError, ValueError) as error:
        raise InputDataError(
            f"{path}: not a readable data version record ({error})"
        ) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT_NAME:
        raise InputDataError(f"{path}: not a {FORMAT_NAME} record")
    return record


def record_paths(fs: AbstractFileSystem, records: str) -> list[str]:
    """The records under ``records`` (``<records>/<V>/<name>``), newest first, as
    Kedro lists the versions of a versioned dataset."""
    name = PurePosixPath(records).name
    return sorted(fs.glob(f"{records}/*/{name}"), reverse=True)


def committed_split_versions(
    fs: AbstractFileSystem, records: str, split: str
) -> Iterator[str]:
    """The versions of ``split`` that the records name, newest first, each record
    read when it is reached (the latest costs one)."""
    for path in record_paths(fs, records):
        if version := _split_version(read_record(fs, path), split):
            yield version


def _split_version(record: dict[str, Any], split: str) -> str | None:
    return record.get("splits", {}).get(split, {}).get("version")


def _split_writer(fs: AbstractFileSystem, folder: str) -> dict[str, Any] | None:
    """Who wrote a split's version folder: its manifest says, or the
    ``writer.json`` a save writes first."""
    for name in (MANIFEST, WRITER):
        try:
            content = json.loads(fs.cat_file(f"{folder}/{name}"))
        except (OSError, ValueError):
            continue
        if isinstance(content, dict) and isinstance(content.get("writer"), dict):
            return content["writer"]
    return None


def uncommitted_split_versions(
    fs: AbstractFileSystem, root: str, splits: list[str], records: str
) -> list[dict[str, Any]]:
    """The version folders of the splits under ``root`` that no record commits,
    as ``{"path", "split", "writer": {"host", "pid"} or None, "writer_alive"}``
    (``writer_alive`` None where this machine cannot tell: another host's
    process, or no writer recorded). Every record is read once."""
    present = [split for split in splits if fs.isdir(f"{root}/{split}")]
    every = (
        [read_record(fs, path) for path in record_paths(fs, records)] if present else []
    )
    found = []
    host = socket.gethostname()
    for split in present:
        committed = {_split_version(record, split) for record in every}
        for folder in fs.ls(f"{root}/{split}", detail=False):
            name = PurePosixPath(folder).name
            if name.startswith(".") or name in committed:
                continue
            by = _split_writer(fs, f"{folder}/{split}")
            pid = (by or {}).get("pid")
            here = by is not None and by.get("host") == host and isinstance(pid, int)
            alive = process_alive(pid) if here else None
            found.append(
                {"path": folder, "split": split, "writer": by, "writer_alive": alive}
            )
    return found
