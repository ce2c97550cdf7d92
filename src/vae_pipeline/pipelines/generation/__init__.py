"""Generation pipeline."""

from vae_pipeline.pipelines.generation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
