"""Kedro datasets of the project: raw image sources and sharded model input."""

from vae_pipeline.datasets.data_version import DataVersionDataset
from vae_pipeline.datasets.model_input_versions import ModelInputVersionsDataset
from vae_pipeline.datasets.partitions import OptionalPartitionedDataset
from vae_pipeline.datasets.raw_datasets import (
    DigitsDataset,
    IDXDataset,
    IDXSplitsDataset,
    KerasImagesDataset,
    NPZImagesDataset,
)
from vae_pipeline.datasets.sharded_array_dataset import ShardedArrayDataset

__all__ = [
    "DataVersionDataset",
    "DigitsDataset",
    "IDXDataset",
    "IDXSplitsDataset",
    "KerasImagesDataset",
    "ModelInputVersionsDataset",
    "NPZImagesDataset",
    "OptionalPartitionedDataset",
    "ShardedArrayDataset",
]
