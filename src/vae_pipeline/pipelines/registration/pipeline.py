"""Registration pipeline: the evaluated model in, a registered version out.

:func:`release` is the one sub-pipeline that changes the registry, for the default
run and for retraining alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kedro.pipeline import Node, Pipeline

from vae_pipeline.pipelines import generation
from vae_pipeline.pipelines.registration.nodes import (
    abandoned_versions,
    assign_first_champion,
    decide_first_champion,
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


def release(
    *,
    decide: Node,
    move_aliases: Callable[..., dict[str, Any]],
    commit: Pipeline | None = None,
    figures: tuple[str, ...] = REPORT_FIGURES,
) -> Pipeline:
    """Remove, decide, register, commit, report, then move the aliases.

    The rule, whatever the pipeline: **an alias moves last, and only to a
    version whose run finished everything else.**

    1. ``remove_abandoned_versions_node``: the versions killed runs registered
       that no alias holds are deleted (what an alias holds never is);
    2. ``decide`` gives ``promotion_decision``: which alias the new version gets;
    3. ``register_model_node`` logs and registers the version (no alias yet, so
       nothing serves it);
    4. ``commit`` (retraining: the merged data, naming that version) and the
       version's report page;
    5. ``move_aliases`` (``<its name>_node``) gives ``model_aliases`` by the
       decision, once the data version and the report are written (its inputs:
       ``registered_model``, ``promotion_decision``, ``data_version``,
       ``model_report``, ``params:registration``).

    A node that fails at any step leaves the registry as the run found it: the
    version is deleted and the aliases put back
    (:class:`vae_pipeline.tracking.hooks.TrackingHooks`, since Kedro runs no node
    after a failure). A run killed before step 5 leaves at most a version with no
    alias, which step 1 of the next release removes; one killed after it leaves a
    released version, which stays.
    """
    return Pipeline(
        [
            Node(
                func=abandoned_versions,
                inputs="model_versions",
                outputs="abandoned_model_versions",
                name="remove_abandoned_versions_node",
            ),
            decide,
            Node(
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
            ),
            commit or Pipeline([]),
            generation.create_pipeline().only_nodes("generate_prior_samples_node"),
            Node(
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
            ),
            Node(
                func=move_aliases,
                inputs=[
                    "registered_model",
                    "promotion_decision",
                    "data_version",
                    "model_report",
                    "params:registration",
                ],
                outputs="model_aliases",
                name=f"{move_aliases.__name__}_node",
            ),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    """Create the registration pipeline.

    Returns:
        Pipeline that logs ``vae_model`` to the MLflow run, registers it
        (``registered_model``), writes its report page (``model_report``) and
        makes the first version champion (``model_aliases``), by :func:`release`.
    """
    return Pipeline(
        release(
            decide=Node(
                func=decide_first_champion,
                inputs=["current_model_aliases", "params:registration"],
                outputs="promotion_decision",
                name="decide_first_champion_node",
            ),
            move_aliases=assign_first_champion,
        ),
        tags=["registration"],
    )
