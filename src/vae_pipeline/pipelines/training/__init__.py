"""Training pipeline."""

from vae_pipeline.pipelines.training.pipeline import (
    create_pipeline,
    release_checkpoint_node,
)

__all__ = ["create_pipeline", "release_checkpoint_node"]
