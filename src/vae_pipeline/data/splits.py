"""Images assigned to named splits at random, reproducibly: ingestion's train,
validation and test, and the validation and training parts of each new source
that retraining merges."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def split_indices(
    count: int,
    fractions: Mapping[str, float],
    *,
    rng: np.random.Generator,
    labels: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The sorted indices of each split of ``count`` images, in the order and
    proportions of ``fractions`` (which sum to 1), cut at the rounded cumulative
    counts. With ``labels``, every class is split in the same proportions
    (stratified)."""
    if labels is not None:
        # Each image's key is its random rank within its class, scaled to [0, 1):
        # cutting the images sorted by key at the split fractions gives every split
        # the same class proportions and exact overall sizes, even for small classes.
        keys = np.empty(count)
        for label in np.unique(labels):
            members = np.flatnonzero(labels == label)
            ranks = np.arange(len(members)) + rng.random(len(members))
            keys[rng.permutation(members)] = ranks / len(members)
        order = np.argsort(keys, kind="stable")
    else:
        order = rng.permutation(count)
    cuts = np.rint(np.cumsum(list(fractions.values())) * count).astype(int)
    return {
        name: np.sort(order[start:stop])
        for name, start, stop in zip(fractions, [0, *cuts[:-1]], cuts, strict=True)
    }
