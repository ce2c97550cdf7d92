"""Registration pipeline: the evaluated model in, a registered version out."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from vae_pipeline.pipelines.registration.nodes import first_champion, release_model


def register_model_node() -> Node:
    """The node that logs and registers the evaluated model (shared with
    retraining, which moves the aliases by its own decision)."""
    return Node(
        func=release_model,
        inputs=[
            "vae_model",
            "train_split",
            "validation_split",
            "evaluation_metrics",
            "params:registration",
        ],
        outputs="registered_model",
        name="register_model_node",
    )


def create_pipeline(**kwargs) -> Pipeline:
    """Create the registration pipeline.

    Returns:
        Pipeline that logs ``vae_model`` to the MLflow run, registers it
        (``registered_model``) and makes the first version champion
        (``model_aliases``).
    """
    return Pipeline(
        [
            register_model_node(),
            Node(
                func=first_champion,
                inputs=[
                    "registered_model",
                    "current_model_aliases",
                    "params:registration",
                ],
                outputs="model_aliases",
                name="assign_first_champion_node",
            ),
        ],
        tags=["registration"],
    )
