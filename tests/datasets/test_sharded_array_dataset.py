"""ShardedArrayDataset: streamed, versioned, atomic saves of image arrays."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from kedro.io import DatasetError, Version

from tests.conftest import written_files
from vae_pipeline.data import ImageStream
from vae_pipeline.datasets import ShardedArrayDataset

RNG = np.random.default_rng(3)


def test_round_trip_across_shards(tmp_path):
    images = RNG.random((25, 4, 3, 1)).astype(np.float32)
    labels = RNG.integers(0, 5, 25)
    dataset = ShardedArrayDataset(filepath=str(tmp_path / "train"), shard_size=10)
    dataset.save(ImageStream.of(images, labels, chunk_size=7))
    loaded = dataset.load()
    assert [shard.count for shard in loaded.shards] == [10, 10, 5]
    np.testing.assert_array_equal(loaded.images(), images)
    np.testing.assert_array_equal(loaded.labels(), labels)
    chunks = list(loaded.stream().chunked(4).iter_chunks())
    assert max(len(c[0]) for c in chunks) == 4
    np.testing.assert_array_equal(np.concatenate([c[0] for c in chunks]), images)


def test_shards_are_plain_npy_with_recorded_header_sizes(tmp_path):
    images = RNG.random((6, 2, 2, 1)).astype(np.float32)
    dataset = ShardedArrayDataset(filepath=str(tmp_path / "x"), shard_size=4)
    dataset.save(images)
    loaded = dataset.load()
    for shard in loaded.shards:
        raw = shard.images.read_bytes()
        body = np.frombuffer(raw[shard.images_header_bytes :], dtype="<f4")
        assert body.size == shard.count * 4
        np.testing.assert_array_equal(np.load(shard.images).reshape(-1), body)
    assert not loaded.has_labels and loaded.labels() is None


def test_versions_accumulate_and_latest_loads(tmp_path):
    first = ShardedArrayDataset(
        filepath=str(tmp_path / "v"), version=Version(None, "2026-01-01T00.00.00.000Z")
    )
    first.save(np.zeros((2, 1, 1, 1), np.float32))
    second = ShardedArrayDataset(
        filepath=str(tmp_path / "v"), version=Version(None, "2026-01-02T00.00.00.000Z")
    )
    second.save(np.ones((3, 1, 1, 1), np.float32))
    killed = tmp_path / "v" / "2026-01-03T00.00.00.000Z" / "v"  # no manifest
    killed.mkdir(parents=True)
    (killed / "writer.json").write_text("{}")
    latest = ShardedArrayDataset(
        filepath=str(tmp_path / "v"), version=Version(None, None)
    ).load()
    assert latest.num_examples == 3
    pinned = ShardedArrayDataset(
        filepath=str(tmp_path / "v"), version=Version("2026-01-01T00.00.00.000Z", None)
    ).load()
    assert pinned.num_examples == 2
    manifest = json.loads((latest.directory / "manifest.json").read_text())
    assert manifest["format"] == "vae-pipeline-sharded-arrays"


def test_two_runs_saving_one_version_one_refuses_in_one_line(tmp_path):
    """Kedro names a run's versions by its start time to the millisecond, so two
    runs started together save the same version: the second is refused, whether
    the first finished or is still saving, and keeps nothing of its own."""
    version = Version(None, "2026-01-01T00.00.00.000Z")
    images = np.ones((3, 1, 1, 1), np.float32)
    ShardedArrayDataset(filepath=str(tmp_path / "v"), version=version).save(images)
    second = ShardedArrayDataset(filepath=str(tmp_path / "v"), version=version)
    with pytest.raises(
        DatasetError,
        match=r"v: version 2026-01-01T00.00.00.000Z is "
        "being saved by another run started in the same millisecond",
    ):
        second.save(np.zeros((2, 1, 1, 1), np.float32))
    assert second.load().num_examples == 3

    saving = tmp_path / "w" / version.save / "w"  # another run's save, unfinished
    saving.mkdir(parents=True)
    (saving / "writer.json").write_text("{}")
    racing = ShardedArrayDataset(filepath=str(tmp_path / "w"), version=version)
    with pytest.raises(DatasetError, match="being saved by another run"):
        racing.save(images)
    assert written_files(tmp_path / "w") == [saving / "writer.json"]


def _failing(size: int) -> Iterator[tuple[np.ndarray, None]]:
    yield np.zeros((8, 2, 2, 1), np.float32), None
    raise OSError("disk went away")


def _short(size: int) -> Iterator[tuple[np.ndarray, None]]:
    yield np.zeros((8, 2, 2, 1), np.float32), None


def _declaring(read, count: int = 20) -> ImageStream:
    return ImageStream(
        read=read, num_examples=count, image_shape=(2, 2, 1), has_labels=False
    )


@pytest.mark.parametrize(
    ("stream", "error"),
    [
        (_declaring(_failing), "disk went away"),
        (_declaring(_short), "fewer examples"),
        (_declaring(_short, 6), "more examples"),
    ],
)
def test_failed_save_leaves_nothing(tmp_path, stream, error):
    dataset = ShardedArrayDataset(
        filepath=str(tmp_path / "split"), version=Version(None, None), shard_size=5
    )
    with pytest.raises((OSError, DatasetError), match=error):
        dataset.save(stream)
    assert written_files(tmp_path) == []
    assert not dataset.exists()


def test_any_fsspec_filesystem_holds_splits_read_through_a_local_cache(tmp_path):
    images = RNG.random((9, 2, 2, 1)).astype(np.float32)
    labels = RNG.integers(0, 3, 9)
    remote = ShardedArrayDataset(
        filepath="memory://bucket/train",
        shard_size=4,
        version=Version(None, "2026-01-01T00.00.00.000Z"),
        cache_dir=str(tmp_path / "cache"),
    )
    remote.save(ImageStream.of(images, labels))
    loaded = remote.load()
    local = [shard.images for shard in loaded.shards]
    assert all(path.is_relative_to(tmp_path / "cache") for path in local)
    downloaded = [path.stat().st_mtime_ns for path in local]
    np.testing.assert_array_equal(loaded.images(), images)
    np.testing.assert_array_equal(loaded.labels(), labels)
    again = ShardedArrayDataset(
        filepath="memory://bucket/train",
        version=Version(None, None),
        cache_dir=str(tmp_path / "cache"),
    ).load()
    assert [shard.images for shard in again.shards] == local  # downloaded once
    assert [path.stat().st_mtime_ns for path in local] == downloaded
    np.testing.assert_array_equal(again.images(), images)


def test_a_remote_split_saved_again_is_downloaded_again(tmp_path):
    dataset = ShardedArrayDataset(
        filepath="memory://bucket/unversioned", cache_dir=str(tmp_path / "cache")
    )
    first, second = RNG.random((2, 6, 2, 2, 1)).astype(np.float32)
    dataset.save(first)
    np.testing.assert_array_equal(dataset.load().images(), first)
    dataset.save(second)
    np.testing.assert_array_equal(dataset.load().images(), second)


def test_rejects_bad_data(tmp_path):
    with pytest.raises(DatasetError, match="not list"):
        ShardedArrayDataset(filepath=str(tmp_path / "x")).save([1, 2, 3])


def test_select_reads_chosen_rows_across_shards(tmp_path):
    images = RNG.random((23, 2, 2, 1)).astype(np.float32)
    labels = np.arange(23)
    dataset = ShardedArrayDataset(filepath=str(tmp_path / "s"), shard_size=5)
    dataset.save((images, labels))
    chosen, chosen_labels = dataset.load().select(np.array([21, 3, 4, 10, 3]))
    np.testing.assert_array_equal(chosen, images[[3, 4, 10, 21]])
    np.testing.assert_array_equal(chosen_labels, [3, 4, 10, 21])
