"""Kedro datasets of the project, one class per module: thin adapters that turn a
catalog entry into a reader or writer of :mod:`vae_pipeline.data`."""

from vae_pipeline.datasets.data_version import DataVersionDataset
from vae_pipeline.datasets.digits import DigitsDataset
from vae_pipeline.datasets.idx import IDXDataset
from vae_pipeline.datasets.idx_splits import IDXSplitsDataset
from vae_pipeline.datasets.incoming_file import IncomingFileDataset
from vae_pipeline.datasets.keras_images import KerasImagesDataset
from vae_pipeline.datasets.model_input_versions import ModelInputVersionsDataset
from vae_pipeline.datasets.npz_images import NPZImagesDataset
from vae_pipeline.datasets.partitions import OptionalPartitionedDataset
from vae_pipeline.datasets.quarantine import QuarantineDataset
from vae_pipeline.datasets.sharded_array_dataset import ShardedArrayDataset

__all__ = [
    "DataVersionDataset",
    "DigitsDataset",
    "IDXDataset",
    "IDXSplitsDataset",
    "IncomingFileDataset",
    "KerasImagesDataset",
    "ModelInputVersionsDataset",
    "NPZImagesDataset",
    "OptionalPartitionedDataset",
    "QuarantineDataset",
    "ShardedArrayDataset",
]
