"""Registration: the evaluated model logged to MLflow, registered, reported and
aliased."""

from vae_pipeline.pipelines.registration.pipeline import (
    create_pipeline,
    register_model_node,
    report_model_node,
)

__all__ = ["create_pipeline", "register_model_node", "report_model_node"]
