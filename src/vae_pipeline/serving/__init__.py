"""The served model: request checks and answers, and the training reference."""

from vae_pipeline.serving.predictor import (
    INPUT_NAME,
    MAX_IMAGES,
    PARAMS,
    BadRequest,
    VAEPredictor,
    bad_request,
)
from vae_pipeline.serving.reference import LatentReference

__all__ = [
    "INPUT_NAME",
    "MAX_IMAGES",
    "PARAMS",
    "BadRequest",
    "LatentReference",
    "VAEPredictor",
    "bad_request",
]
