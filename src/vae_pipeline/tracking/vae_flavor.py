"""The VAE as an MLflow model: the ``mlflow.keras`` flavor, and a pyfunc that
returns the latent means, log-variances and reconstructions.

``mlflow.keras``'s own pyfunc passes the VAE's dict of outputs through
``np.asarray``, which gives a 0-d object array; and its ``log_model`` cannot write
an input example (mlflow/mlflow#16183). This module saves the model with
``mlflow.keras.save_model``, so ``mlflow.keras.load_model`` loads it like any
Keras model, and points the ``python_function`` flavor at :func:`_load_pyfunc`.
Use it as the ``flavor`` of kedro-mlflow's ``MlflowModelTrackingDataset``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import mlflow
import numpy as np
from mlflow import pyfunc
from mlflow.models import Model, ModelSignature
from mlflow.models.model import MLMODEL_FILE_NAME, ModelInfo
from mlflow.types.schema import Schema, TensorSpec

from vae_pipeline.models import VAE

INPUT_NAME = "image"  # the encoder's input layer
OUTPUT_NAMES = ("z_mean", "z_log_var", "reconstruction")
_RUNTIME_PACKAGES = ("vae-pipeline", "keras", "tensorflow", "numpy", "mlflow")


@dataclass(frozen=True)
class ServableVAE:
    """A trained VAE and a few real images to log as its input example."""

    model: VAE
    input_example: np.ndarray


def model_signature(model: VAE) -> ModelSignature:
    """Tensor signature of the pyfunc: images in; means, log-variances and
    reconstructions out, batch dimension free."""
    image_shape = tuple(model.encoder.input_shape[1:])
    latent_dim = int(model.decoder.input_shape[-1])
    float32 = np.dtype("float32")
    return ModelSignature(
        inputs=Schema([TensorSpec(float32, (-1, *image_shape), INPUT_NAME)]),
        outputs=Schema(
            [
                TensorSpec(float32, (-1, latent_dim), "z_mean"),
                TensorSpec(float32, (-1, latent_dim), "z_log_var"),
                TensorSpec(float32, (-1, *image_shape), "reconstruction"),
            ]
        ),
    )


def default_pip_requirements() -> list[str]:
    """The packages the model needs to load, pinned to the versions it was saved
    with (vae-pipeline registers the Keras classes)."""
    requirements = []
    for package in _RUNTIME_PACKAGES:
        try:
            requirements.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            requirements.append(package)
    return requirements


def save_model(
    model: VAE | ServableVAE,
    path: str,
    *,
    mlflow_model: Model | None = None,
    pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Save the VAE as an MLflow model directory at ``path``.

    Args:
        model: The VAE, or the VAE with an input example.
        path: A directory that does not exist yet.
        mlflow_model: The MLmodel description to fill in (``Model.log`` passes one).
        pip_requirements: Overrides :func:`default_pip_requirements`.
        metadata: Free-form metadata stored in the MLmodel file.
    """
    vae, example = (
        (model.model, model.input_example)
        if isinstance(model, ServableVAE)
        else (model, None)
    )
    if os.path.exists(path):
        raise FileExistsError(f"MLflow model path already exists: {path}")
    os.makedirs(path)  # mlflow.keras writes the example before creating the folder
    mlflow_model = mlflow_model or Model()
    mlflow.keras.save_model(
        vae,
        path,
        mlflow_model=mlflow_model,
        signature=model_signature(vae),
        input_example=example,
        pip_requirements=pip_requirements or default_pip_requirements(),
        metadata=metadata,
    )
    mlflow_model.flavors[pyfunc.FLAVOR_NAME][pyfunc.MAIN] = __name__
    mlflow_model.save(os.path.join(path, MLMODEL_FILE_NAME))


def log_model(
    model: VAE | ServableVAE, name: str = "model", **kwargs: Any
) -> ModelInfo:
    """Log the VAE to the active MLflow run (see :func:`save_model`).

    Args:
        model: The VAE, or the VAE with an input example.
        name: The logged model's name.
        **kwargs: Passed to :meth:`mlflow.models.Model.log` and :func:`save_model`.

    Returns:
        The logged model's info; ``model_uri`` loads it back.
    """
    return Model.log(
        None, flavor=sys.modules[__name__], name=name, model=model, **kwargs
    )


def load_model(model_uri: str, dst_path: str | None = None) -> VAE:
    """Load the VAE itself (a Keras model) from any MLflow model URI."""
    return mlflow.keras.load_model(model_uri, dst_path=dst_path)


class VAEPredictor:
    """The pyfunc face of the VAE: deterministic encodings and reconstructions."""

    def __init__(self, model: VAE) -> None:
        self.model = model

    def get_raw_model(self) -> VAE:
        return self.model

    def predict(
        self, data: Any, params: dict[str, Any] | None = None
    ) -> dict[str, np.ndarray]:
        """Encode images and decode their posterior means.

        Args:
            data: Images, ``(n, *image_shape)`` floats in [0, 1], as an array or
                as ``{"image": array}``.
            params: Unused.

        Returns:
            ``z_mean`` and ``z_log_var`` of q(z|x), and ``reconstruction``, the
            mean of p(x|z) at ``z_mean``.
        """
        images = data[INPUT_NAME] if isinstance(data, dict) else data
        images = np.asarray(images, np.float32)
        z_mean, z_log_var = self.model.encode(images)
        return {
            "z_mean": z_mean,
            "z_log_var": z_log_var,
            "reconstruction": self.model.decode(z_mean),
        }


def _load_pyfunc(path: str) -> VAEPredictor:
    """Called by ``mlflow.pyfunc.load_model``."""
    wrapper = mlflow.keras.load._load_pyfunc(path)
    model = wrapper.get_raw_model()
    if not isinstance(model, VAE):
        raise TypeError(f"{path} does not hold a vae_pipeline VAE: {type(model)}")
    return VAEPredictor(model)
