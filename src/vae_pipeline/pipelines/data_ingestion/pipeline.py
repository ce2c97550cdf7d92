"""Data-ingestion pipeline: raw images in, versioned sharded splits out."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from vae_pipeline.pipelines import prepare_images
from vae_pipeline.pipelines.data_ingestion.nodes import (
    abandoned_data,
    build_model_input,
    commit_data_version,
    data_version_input,
    select_source,
    split_dataset,
)


def track_data_version_node() -> Node:
    """Log the committed data version as an MLflow dataset input (shared with
    retraining)."""
    return Node(
        func=data_version_input,
        inputs="data_version",
        outputs="data_version_input",
        name="track_data_version_node",
    )


def remove_abandoned_data_node() -> Node:
    """Remove what killed or failed runs left uncommitted in the model-input
    layer, first (shared with retraining, the other pipeline that writes it)."""
    return Node(
        func=abandoned_data,
        inputs="model_input_versions",
        outputs="abandoned_model_input",
        name="remove_abandoned_data_node",
    )


def create_pipeline(**kwargs) -> Pipeline:
    """Create the data-ingestion pipeline.

    Returns:
        Pipeline that validates, scales and splits the configured image source
        into ``train_split``, ``validation_split``, ``test_split`` and
        ``ingestion_summary``, then commits them as one ``data_version``.
    """
    return Pipeline(
        [
            remove_abandoned_data_node(),
            Node(
                func=select_source,
                inputs={
                    "params": "params:data_ingestion",
                    "digits": "raw_digits",
                    "idx_images": "raw_idx_images",
                    "idx_labels": "raw_idx_labels",
                    "idx_splits": "raw_idx_splits",
                    "npz": "raw_npz",
                    "image_folder": "raw_image_folder",
                    "keras": "raw_keras",
                },
                outputs="raw_sources",
                name="select_source_node",
            ),
            prepare_images.prepared(
                "ingestion",
                sources="raw_sources",
                profiles="raw_profiles",
                images="raw_images",
            ),
            Node(
                func=split_dataset,
                inputs=["raw_profiles", "params:data_ingestion"],
                outputs="split_plan",
                name="split_dataset_node",
            ),
            Node(
                func=build_model_input,
                inputs=[
                    "raw_images",
                    "raw_profiles",
                    "split_plan",
                    "params:data_ingestion",
                ],
                outputs=[
                    "train_split",
                    "validation_split",
                    "test_split",
                    "ingestion_summary",
                ],
                name="build_model_input_node",
            ),
            Node(
                func=commit_data_version,
                inputs=[
                    "train_split",
                    "validation_split",
                    "test_split",
                    "ingestion_summary",
                ],
                outputs="data_version",
                name="commit_data_version_node",
            ),
            track_data_version_node(),
        ],
        tags=["data_ingestion"],
    )
