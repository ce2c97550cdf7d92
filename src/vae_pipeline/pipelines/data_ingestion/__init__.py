"""Data-ingestion pipeline."""

from vae_pipeline.pipelines.data_ingestion.pipeline import (
    create_pipeline,
    remove_abandoned_data_node,
    track_data_version_node,
)

__all__ = ["create_pipeline", "remove_abandoned_data_node", "track_data_version_node"]
