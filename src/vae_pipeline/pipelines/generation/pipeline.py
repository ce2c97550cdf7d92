"""Generation pipeline: new images from the trained VAE."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from vae_pipeline.pipelines.generation.nodes import (
    draw_latent_manifold,
    generate_prior_samples,
    interpolate_observations,
    rank_latent_dimensions,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the generation pipeline.

    Returns:
        Pipeline that decodes prior samples, the latent manifold and an
        interpolation from ``vae_model``.
    """
    return Pipeline(
        [
            Node(
                func=rank_latent_dimensions,
                inputs=["vae_model", "test_split"],
                outputs="latent_ranking",
                name="rank_latent_dimensions_node",
            ),
            Node(
                func=generate_prior_samples,
                inputs=["vae_model", "params:generation"],
                outputs=["generated_images", "prior_samples_plot"],
                name="generate_prior_samples_node",
            ),
            Node(
                func=draw_latent_manifold,
                inputs=["vae_model", "latent_ranking", "params:generation"],
                outputs="latent_manifold_plot",
                name="draw_latent_manifold_node",
            ),
            Node(
                func=interpolate_observations,
                inputs=["vae_model", "test_split", "params:generation"],
                outputs="interpolation_plot",
                name="interpolate_observations_node",
            ),
        ],
        tags=["generation"],
    )
