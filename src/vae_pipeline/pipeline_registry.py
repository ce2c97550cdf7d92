"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

DEFAULT_PIPELINES = (
    "data_ingestion",
    "training",
    "evaluation",
    "registration",
    "generation",
)


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    ``kedro run`` with no ``--pipelines`` runs ingestion, training, evaluation,
    registration and generation on the model it trains; ``kedro run --pipelines
    generation`` runs generation on a registered model (``registered_vae_model``);
    ``latent_comparison`` trains three more models and runs on demand.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    # A building block, not a pipeline to run: ingestion, retraining and scoring
    # each contain it under a namespace of their own.
    pipelines.pop("prepare_images", None)
    if "generation" in pipelines:
        default_generation = pipelines["generation"]
        # On its own, generation runs on a registered model (the champion by default).
        pipelines["generation"] = Pipeline(
            default_generation, inputs={"vae_model": "registered_vae_model"}
        )
    # Kedro loads only the pipelines a run asks for (all of them for the default).
    pipelines["__default__"] = sum(
        (
            default_generation if name == "generation" else pipelines[name]
            for name in DEFAULT_PIPELINES
            if name in pipelines
        ),
        Pipeline([]),
    )
    return pipelines
