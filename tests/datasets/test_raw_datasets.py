"""The raw datasets refuse a bad catalog entry when the catalog is built."""

from __future__ import annotations

import re

import pytest
from kedro.io import DatasetError

from vae_pipeline.datasets import IDXSplitsDataset, KerasImagesDataset


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"dataset": "cifar10"},
            "unknown dataset 'cifar10' (expected 'mnist' or 'fashion_mnist')",
        ),
        (
            {"split": "validation"},
            "unknown split 'validation' (expected 'train', 'test' or 'all')",
        ),
    ],
)
def test_keras_images_name_what_they_accept(options, message):
    with pytest.raises(DatasetError, match=re.escape(f"KerasImagesDataset: {message}")):
        KerasImagesDataset(**options)


def test_idx_splits_want_a_file_for_each_split():
    with pytest.raises(DatasetError, match=r"images: .*; missing \['test'\]$"):
        IDXSplitsDataset(images={"train": "a.gz", "validation": "b.gz"})
    with pytest.raises(DatasetError, match=r"labels: .*; unknown \['valid'\]$"):
        IDXSplitsDataset(
            images={"train": "a", "validation": "b", "test": "c"},
            labels={"valid": "d"},
        )
