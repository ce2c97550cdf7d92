"""vae-pipeline: Variational Autoencoders with Kedro, Keras 3 and MLflow."""

from __future__ import annotations

import logging
import os


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow without its C++ start-up chatter on the user's console.

    TensorFlow 2.21 writes CUDA probing lines (``I0000 ... Could not find cuda
    drivers``, ``E0000 ... failed call to cuInit``) and absl's "before
    InitializeLog" notice straight to file descriptor 2 while it is imported,
    before ``TF_CPP_MIN_LOG_LEVEL`` or absl flags can apply; later C++ errors
    such as tf.data's ``NodeDef mentions attribute use_unbounded_threadpool`` are
    version-skew notices with no effect. Errors that matter surface as Python
    exceptions. ``TF_CPP_MIN_LOG_LEVEL`` set to anything but 3 (0 shows
    everything) turns all of this off; 3, also what child processes inherit from
    here, keeps it.
    """
    if os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3") != "3":
        import tensorflow  # noqa: F401

        return
    try:
        saved = os.dup(2)
    except OSError:  # no standard error to silence
        import tensorflow  # noqa: F401

        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


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
_import_tensorflow_quietly()

__version__ = "0.1.0"
