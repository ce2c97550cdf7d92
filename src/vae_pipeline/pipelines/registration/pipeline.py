"""Registration pipeline: the evaluated model in, a registered version out."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from vae_pipeline.pipelines import generation
from vae_pipeline.pipelines.registration.nodes import (
    decide_first_champion,
    first_champion,
    release_model,
    report_model_version,
)

# The figures of a version's report, by argument name: what evaluation drew for
# the model this run registers, and its prior samples.
REPORT_FIGURES = (
    "training_curves",
    "latent_scatter",
    "latent_distributions",
    "reconstructions",
    "prior_samples",
)


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


def report_model_node(*, figures: tuple[str, ...] = REPORT_FIGURES) -> Node:
    """The node that writes the registered version's report page (shared with
    retraining, whose report shows the drift gate's figure too)."""
    return Node(
        func=report_model_version,
        inputs={
            "registered_model": "registered_model",
            "evaluation_metrics": "evaluation_metrics",
            "data_version": "data_version",
            "promotion_decision": "promotion_decision",
        }
        | {name: f"{name}_plot" for name in figures},
        outputs="model_report",
        name="report_model_node",
    )


def create_pipeline(**kwargs) -> Pipeline:
    """Create the registration pipeline.

    Returns:
        Pipeline that logs ``vae_model`` to the MLflow run, registers it
        (``registered_model``), writes its report page (``model_report``) and
        makes the first version champion (``model_aliases``).
    """
    return Pipeline(
        [
            Node(
                func=decide_first_champion,
                inputs=["current_model_aliases", "params:registration"],
                outputs="promotion_decision",
                name="decide_first_champion_node",
            ),
            register_model_node(),
            generation.create_pipeline().only_nodes("generate_prior_samples_node"),
            report_model_node(),
            Node(
                func=first_champion,
                inputs=[
                    "registered_model",
                    "promotion_decision",
                    "params:registration",
                ],
                outputs="model_aliases",
                name="assign_first_champion_node",
            ),
        ],
        tags=["registration"],
    )
