"""NumPy archives of images in the catalog."""

from __future__ import annotations

from vae_pipeline.datasets.file import FileDataset


class NPZImagesDataset(FileDataset):
    """A NumPy ``.npz`` archive holding images ``x`` and optional labels ``y``
    (``data_ingestion.npz`` names the arrays), read by
    :func:`vae_pipeline.data.npz.npz_source`."""
