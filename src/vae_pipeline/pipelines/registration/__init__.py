"""Registration: the evaluated model logged to MLflow, registered, reported and
aliased."""

from vae_pipeline.pipelines.registration.pipeline import (
    REPORT_FIGURES,
    create_pipeline,
    register_model_node,
    report_model_node,
)

__all__ = [
    "REPORT_FIGURES",
    "create_pipeline",
    "register_model_node",
    "report_model_node",
]
