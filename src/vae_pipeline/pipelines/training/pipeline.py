"""Training pipeline: model-input splits in, a versioned Keras VAE out."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from vae_pipeline.pipelines.training.nodes import (
    metric_histories,
    release_checkpoint,
    train_model,
)


def release_checkpoint_node() -> Node:
    """Remove the training checkpoint once ``vae_model`` is saved (shared with
    retraining)."""
    return Node(
        func=release_checkpoint,
        inputs=["vae_model", "train_split", "validation_split", "params:training"],
        outputs=None,
        name="release_checkpoint_node",
    )


def create_pipeline(**kwargs) -> Pipeline:
    """Create the training pipeline.

    Returns:
        Pipeline that trains ``vae_model`` on ``train_split`` (early stopping on
        ``validation_split``) and records ``training_history`` (also as MLflow
        metrics, ``training_metrics``); the registration pipeline logs the model.
    """
    return Pipeline(
        [
            Node(
                func=train_model,
                inputs=[
                    "train_split",
                    "validation_split",
                    "params:training",
                    "champion_model",
                ],
                outputs=["vae_model", "training_history"],
                name="train_vae_node",
            ),
            release_checkpoint_node(),
            Node(
                func=metric_histories,
                inputs="training_history",
                outputs="training_metrics",
                name="track_training_metrics_node",
            ),
        ],
        tags=["training"],
    )
