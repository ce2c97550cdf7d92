"""What killed runs left uncommitted in the model-input layer: listed with their
writers, picked by ``abandoned_data`` when the writer died, removed on save."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
from kedro.io import DatasetError, Version

from tests.conftest import dead_pid
from vae_pipeline.data.versions import split_entry
from vae_pipeline.datasets import (
    DataVersionDataset,
    ModelInputVersionsDataset,
    ShardedArrayDataset,
)
from vae_pipeline.pipelines.data_ingestion.nodes import abandoned_data

V1, V2, V3, V4 = (f"2026-01-0{day}T00.00.00.000Z" for day in (1, 2, 3, 4))


def save_split(root: Path, version: str, *, writer: dict | None = None) -> None:
    dataset = ShardedArrayDataset(
        filepath=str(root / "train"),
        version=Version(None, version),
        data_version=str(root / "data_version.json"),
    )
    dataset.save(np.zeros((1, 1, 1, 1), np.float32))
    if writer is not None:  # as if that process had written it
        manifest = root / "train" / version / "train" / "manifest.json"
        content = json.loads(manifest.read_text())
        content["writer"] |= writer
        manifest.write_text(json.dumps(content))
    if version == V1:  # committed
        records = DataVersionDataset(
            filepath=str(root / "data_version.json"), version=Version(None, V1)
        )
        records.save({"splits": {"train": split_entry(dataset.load())}})


def versions(root: Path) -> ModelInputVersionsDataset:
    return ModelInputVersionsDataset(
        filepath=str(root),
        splits=["train", "validation", "test"],
        data_version="data_version.json",
    )


def test_versions_whose_writer_died_uncommitted_are_removed(tmp_path):
    save_split(tmp_path, V1)
    save_split(tmp_path, V2, writer={"pid": dead_pid()})
    save_split(tmp_path, V3)  # this process: alive, it may still commit
    save_split(tmp_path, V4, writer={"host": "elsewhere", "pid": dead_pid()})
    listed = {Path(entry["path"]).name: entry for entry in versions(tmp_path).load()}
    assert {name: entry["writer_alive"] for name, entry in listed.items()} == {
        V2: False,
        V3: True,
        V4: None,  # another machine's process cannot be checked from here
    }
    removed = abandoned_data(list(listed.values()))
    assert removed == [str(tmp_path / "train" / V2)]
    versions(tmp_path).save(removed)
    left = sorted(path.name for path in (tmp_path / "train").iterdir())
    assert left == [V1, V3, V4]


def test_saves_cut_short_are_removed_when_their_writer_died(tmp_path):
    """A save killed before its manifest leaves its ``writer.json``."""
    folders = {}
    for version, pid in ((V2, dead_pid()), (V3, os.getpid())):
        folders[version] = tmp_path / "train" / version / "train"
        folders[version].mkdir(parents=True)
        writer = {"writer": {"host": socket.gethostname(), "pid": pid}}
        (folders[version] / "writer.json").write_text(json.dumps(writer))
        (folders[version] / "images-00000.npy").write_bytes(b"\0" * 64)
    dataset = versions(tmp_path)
    dataset.save(abandoned_data(dataset.load()))
    assert not folders[V2].parent.exists()
    assert folders[V3].exists()


def test_only_versions_of_the_splits_are_removed(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DatasetError, match=r"elsewhere: not a version of the splits"):
        versions(tmp_path).save([str(tmp_path / "elsewhere")])
    assert (tmp_path / "elsewhere").is_dir()
