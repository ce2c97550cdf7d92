"""Latent-space comparison pipeline."""

from vae_pipeline.pipelines.latent_comparison.pipeline import create_pipeline

__all__ = ["create_pipeline"]
