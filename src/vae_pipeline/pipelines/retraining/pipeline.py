"""Retraining pipeline: new partitions in, a challenger registered and maybe
promoted (the promotion itself happens once the run has succeeded, in
``vae_pipeline.tracking.hooks``)."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from vae_pipeline.pipelines import evaluation, training
from vae_pipeline.pipelines.retraining.nodes import (
    collect_incoming_sources,
    decide_promotion,
    merge_training_data,
    retrain_vae,
    score_champion,
    validate_incoming_sources,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the retraining pipeline.

    Returns:
        Pipeline that merges ``incoming_partitions`` into the training data,
        trains and evaluates a challenger against ``champion_model`` and writes
        ``promotion_decision``.
    """
    ingest = Pipeline(
        [
            Node(
                func=collect_incoming_sources,
                inputs=["incoming_partitions", "params:data_ingestion"],
                outputs="incoming_sources",
                name="collect_incoming_sources_node",
            ),
            Node(
                func=validate_incoming_sources,
                inputs=[
                    "incoming_sources",
                    "current_train_split",
                    "params:data_ingestion",
                ],
                outputs="incoming_profiles",
                name="validate_incoming_sources_node",
            ),
            Node(
                func=merge_training_data,
                inputs=[
                    "current_train_split",
                    "current_validation_split",
                    "incoming_sources",
                    "incoming_profiles",
                    "params:data_ingestion",
                    "params:retraining",
                ],
                outputs=["train_split", "validation_split", "retraining_summary"],
                name="merge_training_data_node",
            ),
            Node(
                func=retrain_vae,
                inputs=[
                    "train_split",
                    "validation_split",
                    "params:training",
                    "champion_model",
                    "params:retraining",
                ],
                outputs=["vae_model", "training_history"],
                name="retrain_vae_node",
            ),
        ]
    )
    promote = Pipeline(
        [
            Node(
                func=score_champion,
                inputs=["champion_model", "test_split", "params:evaluation"],
                outputs="champion_score",
                name="score_champion_node",
            ),
            Node(
                func=decide_promotion,
                inputs=[
                    "evaluation_metrics",
                    "champion_score",
                    "params:retraining",
                ],
                outputs=["promotion_decision", "promotion_metrics"],
                name="decide_promotion_node",
            ),
        ]
    )
    tracking = training.create_pipeline().only_nodes(
        "track_training_metrics_node", "prepare_servable_model_node"
    )
    return Pipeline(
        ingest + tracking + evaluation.create_pipeline() + promote,
        tags=["retraining"],
    )
