"""Registration: the evaluated model logged to MLflow, registered, reported and
aliased."""

from vae_pipeline.pipelines.registration.pipeline import (
    REPORT_FIGURES,
    create_pipeline,
    release,
)

__all__ = ["REPORT_FIGURES", "create_pipeline", "release"]
