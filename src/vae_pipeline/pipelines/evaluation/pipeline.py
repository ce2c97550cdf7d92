"""Evaluation pipeline: latent metrics and figures of the trained VAE."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from vae_pipeline.pipelines.evaluation.nodes import (
    compute_evaluation_metrics,
    metrics_for_tracking,
    plot_latent_distributions,
    plot_latent_scatter,
    plot_reconstructions,
    plot_training_curves,
    summarize_test_latents,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the evaluation pipeline.

    Returns:
        Pipeline that scores ``vae_model`` on ``test_split`` into
        ``evaluation_metrics`` and draws the evaluation figures.
    """
    return Pipeline(
        [
            Node(
                func=summarize_test_latents,
                inputs=["vae_model", "test_split", "params:evaluation"],
                outputs="test_latents",
                name="summarize_test_latents_node",
            ),
            Node(
                func=compute_evaluation_metrics,
                inputs=[
                    "vae_model",
                    "test_latents",
                    "train_split",
                    "test_split",
                    "params:evaluation",
                ],
                outputs="evaluation_metrics",
                name="compute_evaluation_metrics_node",
            ),
            Node(
                func=metrics_for_tracking,
                inputs="evaluation_metrics",
                outputs="test_metrics",
                name="track_evaluation_metrics_node",
            ),
            Node(
                func=plot_latent_scatter,
                inputs=["test_latents", "test_split"],
                outputs="latent_scatter_plot",
                name="plot_latent_scatter_node",
            ),
            Node(
                func=plot_latent_distributions,
                inputs=["test_latents", "test_split", "params:evaluation"],
                outputs="latent_distributions_plot",
                name="plot_latent_distributions_node",
            ),
            Node(
                func=plot_reconstructions,
                inputs=["vae_model", "test_split", "params:evaluation"],
                outputs="reconstructions_plot",
                name="plot_reconstructions_node",
            ),
            Node(
                func=plot_training_curves,
                inputs="training_history",
                outputs="training_curves_plot",
                name="plot_training_curves_node",
            ),
        ],
        tags=["evaluation"],
    )
