"""Scheduled retraining: new partitions in, a challenger trained, maybe promoted."""

from vae_pipeline.pipelines.retraining.pipeline import create_pipeline

__all__ = ["create_pipeline"]
