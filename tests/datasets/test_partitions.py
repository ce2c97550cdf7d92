"""Folders of files (incoming batches, image folders, files to score): links are
refused unless the catalog opts in, and file names print on one line."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from kedro.io import DatasetError

from tests.conftest import typed_params
from vae_pipeline.data.incoming import IncomingFile
from vae_pipeline.datasets.partitions import OptionalPartitionedDataset
from vae_pipeline.errors import printable
from vae_pipeline.pipelines.data_ingestion.params import IngestionParams
from vae_pipeline.pipelines.retraining.nodes import collect_incoming_sources


def incoming(root: Path, **options) -> OptionalPartitionedDataset:
    return OptionalPartitionedDataset(
        path=str(root),
        dataset={"type": "vae_pipeline.datasets.IncomingFileDataset"},
        **options,
    )


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    np.savez(folder / "secret.npz", x=np.zeros((2, 4, 4), dtype=np.float32))
    return folder


@pytest.mark.parametrize("link", ["file", "folder"])
def test_a_link_to_files_outside_is_refused_by_name(tmp_path, outside, link):
    root = tmp_path / "incoming"
    (root / "batch").mkdir(parents=True)
    np.savez(root / "batch" / "real.npz", x=np.zeros((2, 4, 4), dtype=np.float32))
    if link == "file":
        (root / "batch" / "linked.npz").symlink_to(outside / "secret.npz")
        named = root / "batch" / "linked.npz"
    else:
        (root / "linked-batch").symlink_to(outside, target_is_directory=True)
        named = root / "linked-batch"
    with pytest.raises(DatasetError) as error:
        incoming(root).load()
    message = str(error.value)
    assert message.startswith(f"{named}: a symbolic link (to {outside}")
    assert "follow_symlinks: true" in message and "\n" not in message
    # The documented opt-in reads them.
    loaded = incoming(root, follow_symlinks=True).load()
    assert len(loaded) == 2


def test_file_names_with_a_newline_log_on_one_line(tmp_path, caplog):
    name = "batch/evil\nINFO forged line.npz"
    path = tmp_path / name
    path.parent.mkdir(parents=True)
    np.savez(path, x=np.zeros((2, 4, 4), dtype=np.float32))
    caplog.set_level(logging.INFO)
    sources, _, unreadable = collect_incoming_sources(
        {name: IncomingFile(path)}, typed_params(IngestionParams, "data_ingestion")
    )
    assert list(sources) == [name] and unreadable == {}
    [line] = [r.getMessage() for r in caplog.records if "New data" in r.getMessage()]
    assert "\n" not in line
    assert line == "New data: batch/evil\\nINFO forged line.npz"
    assert printable("tab\there") == "tab\\there"
