"""Keras VAE: layers, encoder and decoder, the model and its training helpers.

Nothing here imports Kedro: the models work on their own, in notebooks or scripts.
TensorFlow is imported here, quietly, and not by ``import vae_pipeline``: Airflow
parses the DAG and runs the incoming-batch trigger (:mod:`vae_pipeline.triggers`)
without loading it.
"""

import importlib.util
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

    Where TensorFlow is not installed (another Keras backend, e.g. JAX on a GPU
    host), there is nothing to import.
    """
    if importlib.util.find_spec("tensorflow") is None:
        return
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


_import_tensorflow_quietly()

from vae_pipeline.models.architectures import (  # noqa: E402
    Networks,
    build_decoder,
    build_encoder,
    build_vae,
)
from vae_pipeline.models.hierarchical import HierarchicalVAE  # noqa: E402
from vae_pipeline.models.layers import Sampling  # noqa: E402
from vae_pipeline.models.vae import (  # noqa: E402
    VAE,
    bernoulli_nll,
    gaussian_nll,
    kl_per_dimension,
)

__all__ = [
    "VAE",
    "HierarchicalVAE",
    "Networks",
    "Sampling",
    "bernoulli_nll",
    "build_decoder",
    "build_encoder",
    "build_vae",
    "gaussian_nll",
    "kl_per_dimension",
]
