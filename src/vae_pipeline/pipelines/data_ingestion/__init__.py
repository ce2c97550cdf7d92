"""Data-ingestion pipeline."""

from vae_pipeline.pipelines.data_ingestion.pipeline import (
    create_pipeline,
    track_data_version_node,
)

__all__ = ["create_pipeline", "track_data_version_node"]
