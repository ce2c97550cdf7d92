"""Image preparation, reused under a namespace by ingestion, retraining and scoring."""

from vae_pipeline.pipelines.prepare_images.pipeline import (
    create_pipeline,
    prepared,
    scaled,
)

__all__ = ["create_pipeline", "prepared", "scaled"]
