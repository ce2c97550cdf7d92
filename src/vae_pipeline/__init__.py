"""vae-pipeline: Variational Autoencoders with Kedro, Keras 3 and MLflow."""

from __future__ import annotations

import logging


class _UpstreamNoise(logging.Filter):
    """kedro-mlflow 2.0.3 defines ``KedroPipelineModel(PythonModel)`` without type
    hints on ``predict``, and MLflow warns about it when kedro-mlflow is imported,
    on every ``kedro run``, under a ``simplefilter("once")`` of its own that no
    warnings filter can override. It is not this project's model (that is
    :mod:`vae_pipeline.tracking.vae_flavor`) and a user cannot act on it, so the
    record is dropped where Kedro logs warnings (``py.warnings``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Add type hints to the `predict` method" not in record.getMessage()


logging.getLogger("py.warnings").addFilter(_UpstreamNoise())

__version__ = "0.1.0"
