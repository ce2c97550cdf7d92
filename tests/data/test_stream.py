"""ImageStream: lazy images and labels, taken, concatenated and re-chunked."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from vae_pipeline.data import ImageStream, Preparation, profile_source, split_stream
from vae_pipeline.data.sources import array_source

RNG = np.random.default_rng(5)


def read_all(stream: ImageStream) -> tuple[np.ndarray, np.ndarray | None, int]:
    chunks = list(stream.iter_chunks())
    labels = [c[1] for c in chunks]
    return (
        np.concatenate([c[0] for c in chunks]),
        None if labels[0] is None else np.concatenate(labels),
        max(len(c[0]) for c in chunks),
    )


def test_take_concatenate_and_chunked_compose_lazily():
    images = RNG.random((10, 2, 2, 1)).astype(np.float32)
    labels = np.arange(10)
    first = ImageStream.of(images[:6], labels[:6], label_names=list("abcdefghij"))
    second = ImageStream.of(images[6:], labels[6:])
    joined = ImageStream.concatenate([first, second]).take(np.array([1, 5, 6, 9]))
    assert joined.num_examples == 4
    assert joined.label_names == list("abcdefghij")
    got_images, got_labels, largest = read_all(joined.chunked(1))
    np.testing.assert_array_equal(got_images, images[[1, 5, 6, 9]])
    np.testing.assert_array_equal(got_labels, [1, 5, 6, 9])
    assert largest == 1


@pytest.mark.parametrize("binarize", ["none", "bernoulli"])
def test_a_prepared_source_takes_before_it_scales_with_the_same_result(binarize):
    raw = RNG.integers(0, 256, (23, 3, 3), dtype=np.uint8)
    source = array_source(raw, None, kind="test", description="test arrays")
    preparation = Preparation(
        chunk_size=4,
        pixel_max=None,
        label_names=None,
        binarize=binarize,
        binarize_threshold=0.5,
        seed=3,
    )
    profile = profile_source(source, preparation)
    stream = split_stream(source, profile, np.arange(23), preparation)
    positions = np.array([0, 4, 5, 17, 22])
    taken = stream.take(positions)
    assert taken.select is not None  # selected at the source, not filtered
    filtered = replace(stream, select=None).take(positions)
    np.testing.assert_array_equal(read_all(taken)[0], read_all(filtered)[0])
    assert read_all(taken)[0].shape == (5, 3, 3, 1)
    assert taken.chunked(2).take(np.array([1, 3])).chunk_size == 2
