"""tf.data input pipelines over the ``.npy`` shards of the model-input splits.

The shards are read with ``FixedLengthRecordDataset`` (skipping each file's NPY
header), so images stream from disk; splits small enough are cached in memory
after the first epoch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow as tf


@dataclass(frozen=True)
class ShardFiles:
    """Where a split's float32 images live: shard paths and their header sizes."""

    paths: Sequence[str]
    header_bytes: Sequence[int]
    image_shape: tuple[int, ...]
    num_examples: int

    @property
    def nbytes(self) -> int:
        return self.num_examples * math.prod(self.image_shape) * 4


def read_images(files: ShardFiles) -> tf.data.Dataset:
    """Stream a split's images from its shards, in saved order."""
    record_bytes = math.prod(files.image_shape) * 4
    shards = tf.data.Dataset.from_tensor_slices(
        (list(files.paths), tf.constant(list(files.header_bytes), tf.int64))
    )
    records = shards.flat_map(
        lambda path, header: tf.data.FixedLengthRecordDataset(
            path, record_bytes, header_bytes=header
        )
    )
    shape = files.image_shape
    images = records.map(
        lambda record: tf.reshape(tf.io.decode_raw(record, tf.float32), shape),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    # flat_map hides the size; stating it lets Keras know the steps per epoch.
    return images.apply(tf.data.experimental.assert_cardinality(files.num_examples))


def _bernoulli(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    noise = tf.random.stateless_uniform(tf.shape(images), seed=seed)
    return tf.cast(noise < images, tf.float32)


def training_dataset(
    files: ShardFiles,
    *,
    batch_size: int,
    seed: int,
    shuffle_buffer: int,
    cache_limit_bytes: int,
    dynamic_binarization: bool = False,
) -> tf.data.Dataset:
    """Shuffled training batches, the split repeated without end (one iterator
    serves every epoch of a fit); a fresh seeded binarization each pass if asked.

    A split smaller than ``cache_limit_bytes`` is read into memory once and each
    pass draws a full permutation of it; a larger one streams from its shards
    through a shuffle buffer.

    Args:
        files: The training split's shards.
        batch_size: Global batch size.
        seed: Seed of the shuffle and of the binarization draws.
        shuffle_buffer: Shuffle buffer size (images), for a split that streams.
        cache_limit_bytes: Hold the decoded split in memory when it is smaller.
        dynamic_binarization: Draw binary images x ~ Bernoulli(pixels) per pass.

    Returns:
        An endless dataset of image batches.
    """
    if files.nbytes <= cache_limit_bytes:
        # In memory, the images need not pass through a shuffle buffer (a copy of
        # every image per epoch, which on 2 cores took a third of the step time):
        # the indices are shuffled, all of them, and each batch is one gather.
        images = tf.concat(list(read_images(files).batch(8192)), axis=0)
        dataset = (
            tf.data.Dataset.range(files.num_examples)
            .shuffle(files.num_examples, seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
            .map(lambda index: tf.gather(images, index))
        )
    else:
        dataset = read_images(files).shuffle(
            min(shuffle_buffer, files.num_examples),
            seed=seed,
            reshuffle_each_iteration=True,
        )
        dataset = dataset.batch(batch_size)
    if dynamic_binarization:
        seeds = tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=True
        ).batch(2, drop_remainder=True)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            _bernoulli, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
    return _shard_by_batch(dataset.repeat().prefetch(tf.data.AUTOTUNE))


def evaluation_dataset(
    files: ShardFiles,
    *,
    batch_size: int,
    cache_limit_bytes: int,
    binarize_seed: int | None = None,
) -> tf.data.Dataset:
    """Batches in saved order; with ``binarize_seed``, one fixed binarization."""
    dataset = read_images(files).batch(batch_size)
    if binarize_seed is not None:
        seeds = tf.data.Dataset.random(seed=binarize_seed).batch(2, drop_remainder=True)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(_bernoulli)
    if files.nbytes <= cache_limit_bytes:
        dataset = dataset.cache()
    return _shard_by_batch(dataset.prefetch(tf.data.AUTOTUNE))


def _shard_by_batch(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Under a multi-worker strategy, each worker takes its share of every global
    batch (tf.data's DATA sharding): a split has fewer shard files than there
    may be workers, which FILE sharding (tf.data's default) cannot split."""
    options = tf.data.Options()
    policy = tf.data.experimental.AutoShardPolicy.DATA
    options.experimental_distribute.auto_shard_policy = policy
    return dataset.with_options(options)
