"""MNIST's IDX files in the catalog."""

from __future__ import annotations

from vae_pipeline.datasets.file import FileDataset


class IDXDataset(FileDataset):
    """One MNIST-format IDX file, raw or gzip-compressed, read by
    :func:`vae_pipeline.data.idx.idx_source`.

    Example catalog entry::

        raw_idx_images:
          type: vae_pipeline.datasets.IDXDataset
          filepath: data/01_raw/idx/train-images-idx3-ubyte.gz  # or s3://...
    """
