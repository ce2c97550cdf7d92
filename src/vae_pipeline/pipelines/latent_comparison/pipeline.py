"""Latent-space comparison: the training node under three losses, side by side.

Each variant is the training node plus an encoding node, under a Kedro
namespace whose ``params:training`` is ``latent_comparison.<variant>``.
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from vae_pipeline.pipelines import training
from vae_pipeline.pipelines.latent_comparison.nodes import (
    compare_latent_spaces,
    encode_test_split,
)

VARIANTS = ("reconstruction_only", "kl_only", "full_vae")


def create_pipeline(**kwargs) -> Pipeline:
    """Create the latent-comparison pipeline.

    Returns:
        Pipeline that trains the three variants on the same splits and draws
        ``latent_comparison_plot``.
    """
    variant = training.create_pipeline().only_nodes("train_vae_node") + Pipeline(
        [
            Node(
                func=encode_test_split,
                inputs=["vae_model", "test_split"],
                outputs="test_latent_means",
                name="encode_test_split_node",
            )
        ]
    )
    variants = [
        Pipeline(
            variant,
            namespace=name,
            inputs={"train_split", "validation_split", "test_split"},
            outputs={"test_latent_means": f"{name}_test_latent_means"},
            parameters={"params:training": f"params:latent_comparison.{name}"},
        )
        for name in VARIANTS
    ]
    comparison = Pipeline(
        [
            Node(
                func=compare_latent_spaces,
                inputs=[f"{name}_test_latent_means" for name in VARIANTS]
                + ["test_split"],
                outputs="latent_comparison_plot",
                name="compare_latent_spaces_node",
            )
        ]
    )
    return Pipeline(
        sum(variants, Pipeline([])) + comparison, tags=["latent_comparison"]
    )
