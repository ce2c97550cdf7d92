"""Latent-space comparison: the training node under three losses, side by side.

Each variant is ``params:training`` with the overrides under
``latent_comparison.<variant>`` merged in (a visible node), the training node on
those parameters and an encoding node, under a Kedro namespace per variant.
"""

from __future__ import annotations

import functools

from kedro.pipeline import Node, Pipeline

from vae_pipeline.pipelines.latent_comparison.nodes import (
    compare_latent_spaces,
    encode_test_split,
    train_variant,
    variant_training_params,
)

VARIANTS = ("reconstruction_only", "kl_only", "full_vae")


def create_pipeline(**kwargs) -> Pipeline:
    """Create the latent-comparison pipeline.

    Returns:
        Pipeline that trains the three variants on the same splits and draws
        ``latent_comparison_plot``.
    """
    return Pipeline(
        sum((_variant(name) for name in VARIANTS), Pipeline([]))
        + Pipeline(
            [
                Node(
                    func=compare_latent_spaces,
                    inputs=[f"{name}_test_latent_means" for name in VARIANTS]
                    + ["test_split"],
                    outputs="latent_comparison_plot",
                    name="compare_latent_spaces_node",
                )
            ]
        ),
        tags=["latent_comparison"],
    )


def _variant(name: str) -> Pipeline:
    """One variant under its namespace: merged parameters, training, encoding."""
    resolve = functools.update_wrapper(
        functools.partial(variant_training_params, variant=name),
        variant_training_params,
    )
    variant = Pipeline(
        [
            Node(
                func=resolve,
                inputs=["params:training", "params:overrides"],
                outputs="training_params",
                name="variant_training_params_node",
            ),
            Node(
                func=train_variant,
                inputs=["train_split", "validation_split", "training_params"],
                outputs=["vae_model", "training_history"],
                name="train_vae_node",
            ),
            Node(
                func=encode_test_split,
                inputs=["vae_model", "test_split"],
                outputs="test_latent_means",
                name="encode_test_split_node",
            ),
        ]
    )
    return Pipeline(
        variant,
        namespace=name,
        inputs={"train_split", "validation_split", "test_split"},
        outputs={"test_latent_means": f"{name}_test_latent_means"},
        parameters={
            "params:training": "params:training",
            "params:overrides": f"params:latent_comparison.{name}",
        },
    )
