"""The tf.data input pipelines over a split's ``.npy`` shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from vae_pipeline.models.data import ShardFiles, evaluation_dataset, training_dataset


def saved_shards(folder: Path, images: np.ndarray, per_shard: int) -> ShardFiles:
    """``images`` as ``.npy`` shards of ``per_shard`` images each."""
    paths, headers = [], []
    for index, start in enumerate(range(0, len(images), per_shard)):
        shard = images[start : start + per_shard]
        path = folder / f"shard-{index}.npy"
        np.save(path, shard)
        paths.append(str(path))
        headers.append(path.stat().st_size - shard.nbytes)
    return ShardFiles(paths, headers, images.shape[1:], len(images))


@pytest.mark.parametrize("cache_limit_bytes", [1 << 30, 0], ids=["memory", "stream"])
def test_training_batches_repeat_without_end_each_pass_every_image_once(
    tmp_path, cache_limit_bytes
):
    """One iterator serves every epoch of a fit: the dataset never ends, and
    each pass over it holds every image once, in a new order."""
    images = np.arange(40, dtype=np.float32).reshape(40, 1, 1, 1)
    files = saved_shards(tmp_path, images, per_shard=15)
    dataset = training_dataset(
        files,
        batch_size=8,
        seed=3,
        shuffle_buffer=40,
        cache_limit_bytes=cache_limit_bytes,
    )
    assert dataset.cardinality() == tf.data.INFINITE_CARDINALITY
    batches = [batch.numpy().ravel() for batch in dataset.take(15)]  # 3 passes
    passes = [np.concatenate(batches[start : start + 5]) for start in (0, 5, 10)]
    for values in passes:
        assert sorted(values) == list(range(40))
    assert not np.array_equal(passes[0], passes[1])


def test_evaluation_batches_keep_the_saved_order_and_end(tmp_path):
    images = np.arange(20, dtype=np.float32).reshape(20, 1, 1, 1)
    files = saved_shards(tmp_path, images, per_shard=7)
    dataset = evaluation_dataset(files, batch_size=6, cache_limit_bytes=1 << 30)
    values = np.concatenate([batch.numpy().ravel() for batch in dataset])
    assert values.tolist() == list(range(20))
