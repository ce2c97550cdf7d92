"""Retraining pipeline: new files in, a challenger registered, the merged data
committed, and the champion alias moved only for a better model."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from vae_pipeline.pipelines import (
    data_ingestion,
    evaluation,
    prepare_images,
    registration,
    training,
)
from vae_pipeline.pipelines.retraining.nodes import (
    admit_incoming,
    check_incoming_drift,
    collect_incoming_sources,
    commit_merged_data,
    decide_promotion,
    merge_training_data,
    promote_model,
    quarantine_refused,
    retrain_vae,
    score_for_promotion,
    select_new_files,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the retraining pipeline.

    Returns:
        Pipeline that merges the files of ``incoming_files`` that
        ``current_data_version`` has not merged into the training data (once
        the drift gate admits them; refused batches go to
        ``quarantined_batches``), trains
        and evaluates a challenger against ``champion_model``, registers it,
        commits the merged data as ``data_version``, writes the version's
        ``model_report`` and moves ``model_aliases`` by ``promotion_decision``.
    """
    ingest = Pipeline(
        [
            data_ingestion.remove_abandoned_data_node(),
            Node(
                func=select_new_files,
                inputs=[
                    "incoming_files",
                    "current_data_version",
                    "current_model_aliases",
                    "params:registration",
                ],
                outputs="new_incoming_files",
                name="select_new_files_node",
            ),
            Node(
                func=collect_incoming_sources,
                inputs=["new_incoming_files", "params:data_ingestion"],
                outputs=["incoming_sources", "incoming_profiles", "unreadable_batches"],
                name="collect_incoming_sources_node",
            ),
            prepare_images.scaled(
                "incoming",
                sources="incoming_sources",
                profiles="incoming_profiles",
                images="incoming_images",
            ),
            Node(
                func=check_incoming_drift,
                inputs=[
                    "champion_model",
                    "incoming_images",
                    "unreadable_batches",
                    "params:retraining",
                ],
                outputs=["drift_decision", "drift_metrics", "drift_histogram_plot"],
                name="check_incoming_drift_node",
            ),
            Node(
                func=quarantine_refused,
                inputs="drift_decision",
                outputs="quarantined_batches",
                name="quarantine_refused_node",
            ),
            Node(
                func=admit_incoming,
                inputs=[
                    "drift_decision",
                    "quarantined_batches",
                    "incoming_images",
                    "incoming_profiles",
                ],
                outputs=["admitted_images", "admitted_profiles"],
                name="admit_incoming_node",
            ),
            Node(
                func=merge_training_data,
                inputs=[
                    "current_train_split",
                    "current_validation_split",
                    "admitted_images",
                    "admitted_profiles",
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
                func=score_for_promotion,
                inputs=[
                    "vae_model",
                    "champion_model",
                    "validation_split",
                    "params:evaluation",
                ],
                outputs="promotion_scores",
                name="score_for_promotion_node",
            ),
            registration.release(
                decide=Node(
                    func=decide_promotion,
                    inputs=["promotion_scores", "params:retraining"],
                    outputs=["promotion_decision", "promotion_metrics"],
                    name="decide_promotion_node",
                ),
                commit=Pipeline(
                    [
                        Node(
                            func=commit_merged_data,
                            inputs=[
                                "current_data_version",
                                "train_split",
                                "validation_split",
                                "new_incoming_files",
                                "retraining_summary",
                                "registered_model",
                            ],
                            outputs="data_version",
                            name="commit_data_version_node",
                        ),
                        data_ingestion.track_data_version_node(),
                    ]
                ),
                move_aliases=promote_model,
                figures=(*registration.REPORT_FIGURES, "drift_histogram"),
            ),
        ]
    )
    tracking = Pipeline(
        [
            training.create_pipeline().only_nodes("track_training_metrics_node"),
            training.release_checkpoint_node(),
        ]
    )
    return Pipeline(
        ingest + tracking + evaluation.create_pipeline() + promote,
        tags=["retraining"],
    )
