"""Image data without Kedro's pipelines or catalog: how raw images become model
input."""

from vae_pipeline.data.prepare import (
    Preparation,
    SourceProfile,
    check_one_shape,
    profile_source,
    split_stream,
)
from vae_pipeline.data.stream import ImageStream

__all__ = [
    "ImageStream",
    "Preparation",
    "SourceProfile",
    "check_one_shape",
    "profile_source",
    "split_stream",
]
