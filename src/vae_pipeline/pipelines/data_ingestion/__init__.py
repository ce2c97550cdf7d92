"""Data-ingestion pipeline."""

from vae_pipeline.pipelines.data_ingestion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
