"""The VAE as an MLflow model: the ``mlflow.keras`` flavor, whose pyfunc is
:class:`~vae_pipeline.serving.VAEPredictor` (what a served model answers).

``mlflow.keras``'s own pyfunc passes the VAE's dict of outputs through
``np.asarray``, which gives a 0-d object array; and its ``log_model`` cannot write
an input example (mlflow/mlflow#16183). This module saves the model with
``mlflow.keras.save_model``, so ``mlflow.keras.load_model`` loads it like any
Keras model, and points the ``python_function`` flavor at :func:`_load_pyfunc`.
Use it as the ``flavor`` of kedro-mlflow's ``MlflowModelTrackingDataset``.

A saved model needs no vae-pipeline installed: the package's source travels
with it (in the model's ``code/`` folder, as MLflow's ``code_paths`` put it; only its
Kedro-free modules, ``models``, ``serving`` and this one, are imported when it
loads), and its requirements pin keras,
tensorflow, numpy, scikit-learn and mlflow to the versions it was saved with.
So ``mlflow models serve -m models:/vae_pipeline@champion --env-manager local``
works wherever those are installed, and ``mlflow models build-docker`` has what
it needs. The version also keeps its :class:`LatentReference`: the training
images' latent means (for nearest-neighbour search) and their log-likelihoods
(for the outlier threshold).
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
from mlflow import pyfunc
from mlflow.models import Model, ModelSignature
from mlflow.models.model import MLMODEL_FILE_NAME, ModelInfo
from mlflow.types.schema import ParamSchema, ParamSpec, Schema, TensorSpec

import vae_pipeline
from vae_pipeline.serving import (
    INPUT_NAME,
    MAX_IMAGES,
    PARAMS,
    LatentReference,
    VAEPredictor,
)

if TYPE_CHECKING:  # the models import TensorFlow: see load_model
    from vae_pipeline.models import VAE

OUTPUT_NAMES = ("z_mean", "z_log_var", "reconstruction", "log_likelihood")
_RUNTIME_PACKAGES = ("keras", "tensorflow", "numpy", "scikit-learn", "mlflow")
REFERENCE_FOLDER = "reference"  # in the MLflow model directory
CODE_FOLDER = "code"


@dataclass(frozen=True)
class ServableVAE:
    """A trained VAE, a few real images to log as its input example, and what
    it keeps of its training data."""

    model: VAE
    input_example: np.ndarray
    reference: LatentReference | None = None


def model_signature(model: VAE) -> ModelSignature:
    """Tensor signature of the pyfunc: means, log-variances, reconstructions and
    log-likelihoods out, batch dimension free; the request parameters of
    :data:`PARAMS`.

    The inputs (images of :func:`model_metadata`'s ``image_shape``) are checked
    by :meth:`VAEPredictor.images` rather than by an input schema: MLflow's
    schema errors quote the whole request, and a bad request should get one
    short line.
    """
    image_shape, latent_dim = model.image_shape, model.latent_dim
    float32 = np.dtype("float32")
    return ModelSignature(
        outputs=Schema(
            [
                TensorSpec(float32, (-1, latent_dim), "z_mean"),
                TensorSpec(float32, (-1, latent_dim), "z_log_var"),
                TensorSpec(float32, (-1, *image_shape), "reconstruction"),
                TensorSpec(np.dtype("float64"), (-1,), "log_likelihood"),
            ]
        ),
        params=ParamSchema(
            [ParamSpec(name, "long", default) for name, default in PARAMS.items()]
            # 0: the version's own quantile (registration.outlier_quantile)
            + [ParamSpec("outlier_quantile", "double", 0.0)]
        ),
    )


def model_metadata(model: VAE) -> dict[str, Any]:
    """What a client needs to know of the inputs, in the MLmodel file."""
    return {
        "input": INPUT_NAME,
        "image_shape": list(model.image_shape),
        "pixel_range": [0.0, 1.0],
        "max_images_per_request": MAX_IMAGES,
        "likelihood": model.likelihood,
        "prior": model.prior,
    }


def default_pip_requirements() -> list[str]:
    """The packages the model needs to load, pinned to the versions it was saved
    with; the project's own code travels with the model (``code_paths``)."""
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
    signature = model_signature(vae)
    image_spec = TensorSpec(np.dtype("float32"), (-1, *vae.image_shape), INPUT_NAME)
    mlflow.keras.save_model(
        vae,
        path,
        mlflow_model=mlflow_model,
        # mlflow.keras insists on an input schema; the pyfunc goes without one
        # (see model_signature), so it is set back below.
        signature=ModelSignature(Schema([image_spec]), signature.outputs),
        input_example=example,
        pip_requirements=pip_requirements or default_pip_requirements(),
        metadata={**model_metadata(vae), **(metadata or {})},
    )
    # mlflow.keras.save_model takes no code_paths: the package goes where pyfunc
    # flavors keep theirs, ``code/``, which pyfunc puts on sys.path when loading.
    shutil.copytree(
        os.path.dirname(vae_pipeline.__file__),
        os.path.join(path, CODE_FOLDER, "vae_pipeline"),
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    mlflow_model.signature = signature
    mlflow_model.flavors[pyfunc.FLAVOR_NAME][pyfunc.MAIN] = __name__
    mlflow_model.flavors[pyfunc.FLAVOR_NAME][pyfunc.CODE] = CODE_FOLDER
    mlflow_model.save(os.path.join(path, MLMODEL_FILE_NAME))
    if isinstance(model, ServableVAE) and model.reference is not None:
        model.reference.save(os.path.join(path, REFERENCE_FOLDER))


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
    # Imported here, not at the top: it imports TensorFlow, which Kedro's CLI
    # would then load for every command through the project's hooks (3.4 s).
    import vae_pipeline.models  # noqa: F401 (registers the VAE's Keras classes)

    return mlflow.keras.load_model(model_uri, dst_path=dst_path)


def _load_pyfunc(path: str) -> VAEPredictor:
    """Called by ``mlflow.pyfunc.load_model`` with the model's folder."""
    from vae_pipeline.models import VAE

    model = load_model(path)  # the Keras flavor's public loader, on the same folder
    if not isinstance(model, VAE):
        raise TypeError(f"{path} does not hold a vae_pipeline VAE: {type(model)}")
    reference = LatentReference.load(Path(path) / REFERENCE_FOLDER)
    return VAEPredictor(model, reference)
