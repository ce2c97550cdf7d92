"""Data versions: splits are read only once a record commits them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kedro.io import DatasetError, Version

from tests.conftest import kedro_cli
from vae_pipeline.data.versions import split_entry
from vae_pipeline.datasets import DataVersionDataset, ShardedArrayDataset
from vae_pipeline.datasets.data_version import DataVersionConflict

V1, V2, V3 = (f"2026-01-0{day}T00.00.00.000Z" for day in (1, 2, 3))


def split(root: Path, version: str | None = None) -> ShardedArrayDataset:
    return ShardedArrayDataset(
        filepath=str(root / "train"),
        version=Version(None, version),
        data_version=str(root / "data_version.json"),
    )


def records(root: Path, version: str | None = None) -> DataVersionDataset:
    return DataVersionDataset(
        filepath=str(root / "data_version.json"), version=Version(None, version)
    )


def write_version(root: Path, version: str, value: float, *, parent=None) -> None:
    dataset = split(root, version)
    dataset.save(np.full((2, 1, 1, 1), value, np.float32))
    entry = split_entry(dataset.load())
    records(root, version).save({"parent": parent, "splits": {"train": entry}})


def test_a_split_is_read_only_once_a_record_commits_it(tmp_path):
    write_version(tmp_path, V1, 1.0)
    uncommitted = split(tmp_path, V2)
    uncommitted.save(np.full((3, 1, 1, 1), 2.0, np.float32))
    assert uncommitted.load().num_examples == 3  # the run that wrote it reads it
    assert split(tmp_path).load().version == V1  # nobody else does
    records(tmp_path, V2).save({"splits": {"train": split_entry(uncommitted.load())}})
    assert split(tmp_path).load().version == V2
    assert records(tmp_path).load()["splits"]["train"]["num_examples"] == 3


def test_without_any_commit_there_is_nothing_to_load(tmp_path):
    split(tmp_path, V1).save(np.zeros((2, 1, 1, 1), np.float32))
    assert not split(tmp_path).exists()
    with pytest.raises(DatasetError, match=r"no committed data version has a 'train'"):
        split(tmp_path).load()
    with pytest.raises(DatasetError, match=r"no committed data version; run the"):
        records(tmp_path).load()


def test_a_record_built_on_a_stale_parent_commits_nothing(tmp_path):
    write_version(tmp_path, V1, 1.0)
    write_version(tmp_path, V2, 2.0, parent=V1)
    with pytest.raises(DataVersionConflict, match=rf"built on data version {V1}, but"):
        write_version(tmp_path, V3, 3.0, parent=V1)
    assert records(tmp_path).load()["version"] == V2
    assert split(tmp_path).load().version == V2
    committed = sorted(p.name for p in (tmp_path / "data_version.json").iterdir())
    assert committed == [".commit.lock", V1, V2]  # no temporary record left


def test_records_are_versioned_and_checked(tmp_path):
    with pytest.raises(DatasetError, match=r"set versioned: true"):
        DataVersionDataset(filepath=str(tmp_path / "data_version.json"))
    folder = tmp_path / "data_version.json" / V1
    folder.mkdir(parents=True)
    (folder / "data_version.json").write_text('{"format": "something else"}')
    with pytest.raises(DatasetError, match=r"not a vae-pipeline-data-version record"):
        records(tmp_path).load()


def test_kedro_run_names_a_corrupt_record_on_one_line(project_copy):
    """A record the data package refuses inside a dataset's load reads as the
    data package's one line, not Kedro's "Failed while loading" framing."""
    record = project_copy / "data/05_model_input/data_version.json" / V1
    record.mkdir(parents=True)
    (record / "data_version.json").write_text("{not json")
    result = kedro_cli(project_copy, "run", "--pipelines", "training")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: {record / 'data_version.json'}: not a readable")
