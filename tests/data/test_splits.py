"""Random splits: exact sizes, every image once, classes in proportion."""

from __future__ import annotations

import numpy as np

from vae_pipeline.data.splits import split_indices

FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def test_every_image_lands_in_one_split_of_its_rounded_size():
    parts = split_indices(1001, FRACTIONS, rng=np.random.default_rng(0))
    assert [len(part) for part in parts.values()] == [801, 100, 100]
    assert all((np.diff(part) > 0).all() for part in parts.values())  # sorted
    np.testing.assert_array_equal(
        np.sort(np.concatenate(list(parts.values()))), np.arange(1001)
    )


def test_a_seed_gives_the_same_split_and_another_seed_another():
    first, again, other = (
        split_indices(500, FRACTIONS, rng=np.random.default_rng(seed))
        for seed in (3, 3, 4)
    )
    assert all(np.array_equal(first[n], again[n]) for n in FRACTIONS)
    assert not np.array_equal(first["test"], other["test"])


def test_labels_split_every_class_in_the_same_proportions():
    labels = np.repeat([0, 1, 2], [700, 200, 100])
    parts = split_indices(1000, FRACTIONS, rng=np.random.default_rng(1), labels=labels)
    for name, fraction in FRACTIONS.items():
        counts = np.bincount(labels[parts[name]], minlength=3)
        np.testing.assert_allclose(counts, fraction * np.array([700, 200, 100]), atol=1)
