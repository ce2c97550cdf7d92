"""Scoring pipeline: new images scored by a registered model."""

from vae_pipeline.pipelines.scoring.pipeline import create_pipeline

__all__ = ["create_pipeline"]
