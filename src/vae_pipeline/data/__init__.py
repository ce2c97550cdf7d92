"""Image data without Kedro's pipelines or catalog: how raw images become model
input."""

from vae_pipeline.data.prepare import (
    Preparation,
    SourceProfile,
    SplitStream,
    profile_source,
    split_stream,
)

__all__ = [
    "Preparation",
    "SourceProfile",
    "SplitStream",
    "profile_source",
    "split_stream",
]
