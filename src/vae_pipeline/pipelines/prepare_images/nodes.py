"""Nodes of the image-preparation pipeline: validate sources, then scale them."""

from __future__ import annotations

import numpy as np

from vae_pipeline.data import (
    ImageStream,
    SourceProfile,
    check_one_shape,
    profile_source,
    split_stream,
)
from vae_pipeline.data.sources import ImageSource
from vae_pipeline.pipelines.data_ingestion.params import IngestionParams


def validate_sources(
    sources: dict[str, ImageSource], params: IngestionParams
) -> dict[str, SourceProfile]:
    """Validate every source in one streaming pass each; all must share one image
    shape.

    Args:
        sources: Image sources by name, nothing read yet.
        params: Ingestion parameters (how pixels are read).

    Returns:
        Each source's profile: counts, shape, labels and raw checksum.

    Raises:
        InputDataError: A source that is corrupt or out of range (one line naming
            the file), or sources of different image shapes.
    """
    preparation = params.preparation()
    profiles = {
        name: profile_source(source, preparation) for name, source in sources.items()
    }
    check_one_shape(profiles)
    return profiles


def scale_sources(
    sources: dict[str, ImageSource],
    profiles: dict[str, SourceProfile],
    params: IngestionParams,
) -> dict[str, ImageStream]:
    """Every source's images as model input: scaled to [0, 1] (and binarized, as
    configured), read chunk by chunk only when consumed.

    Args:
        sources: Validated image sources.
        profiles: Their profiles.
        params: Ingestion parameters (scaling, binarization, chunk size).

    Returns:
        A lazy stream of each source's images; ``take`` selects some of them.
    """
    preparation = params.preparation()
    return {
        name: split_stream(
            source, profiles[name], np.arange(profiles[name].num_images), preparation
        )
        for name, source in sources.items()
    }
