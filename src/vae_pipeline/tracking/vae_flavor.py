"""The VAE as an MLflow model: the ``mlflow.keras`` flavor, and a pyfunc that
scores images (posterior, reconstruction, importance-weighted log-likelihood,
an outlier flag, the nearest training images) and samples the prior.

``mlflow.keras``'s own pyfunc passes the VAE's dict of outputs through
``np.asarray``, which gives a 0-d object array; and its ``log_model`` cannot write
an input example (mlflow/mlflow#16183). This module saves the model with
``mlflow.keras.save_model``, so ``mlflow.keras.load_model`` loads it like any
Keras model, and points the ``python_function`` flavor at :func:`_load_pyfunc`.
Use it as the ``flavor`` of kedro-mlflow's ``MlflowModelTrackingDataset``.

A saved model needs no vae-pipeline installed: the package's source travels
with it (in the model's ``code/`` folder, as MLflow's ``code_paths`` put it; only its
Kedro-free modules, ``models`` and
this one, are imported when it loads), and its requirements pin keras,
tensorflow, numpy, scikit-learn and mlflow to the versions it was saved with.
So ``mlflow models serve -m models:/vae_pipeline@champion --env-manager local``
works wherever those are installed, and ``mlflow models build-docker`` has what
it needs. The version also keeps its :class:`LatentReference`: the training
images' latent means (for nearest-neighbour search) and their log-likelihoods
(for the outlier threshold).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow import pyfunc
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.models.model import MLMODEL_FILE_NAME, ModelInfo
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types.schema import ParamSchema, ParamSpec, Schema, TensorSpec

import vae_pipeline
from vae_pipeline.models import VAE

INPUT_NAME = "image"  # the encoder's input layer
OUTPUT_NAMES = ("z_mean", "z_log_var", "reconstruction", "log_likelihood")
_RUNTIME_PACKAGES = ("keras", "tensorflow", "numpy", "scikit-learn", "mlflow")
REFERENCE_FOLDER = "reference"  # in the MLflow model directory
CODE_FOLDER = "code"
# What one request may ask for: bounds on the work (and memory) of a predict call.
MAX_IMAGES = 4096
MAX_DECODER_ROWS = 2_000_000  # images x importance samples
MAX_IWAE_SAMPLES = 10_000
MAX_PRIOR_SAMPLES = 1024
MAX_NEIGHBORS = 100
# Request parameters (``params`` in MLflow's REST protocol), with their defaults.
PARAMS = {"iwae_samples": 100, "prior_samples": 0, "neighbors": 0, "seed": 0}


@dataclass(frozen=True)
class LatentReference:
    """What a model version keeps of its training images.

    Attributes:
        latent_means: Posterior means of (up to) the first N training images.
        image_ids: Their indices in the training split.
        data_version: The data version of that split.
        log_likelihoods: IWAE log-likelihoods of a random sample of training
            images, with ``iwae_samples`` samples: the distribution that outlier
            thresholds are quantiles of.
        iwae_samples: K of those estimates.
        outlier_quantile: A served image is an outlier when its negative
            log-likelihood exceeds this quantile of the training images'.
    """

    latent_means: np.ndarray
    image_ids: np.ndarray
    data_version: str | None
    log_likelihoods: np.ndarray
    iwae_samples: int
    outlier_quantile: float

    def outlier_threshold(self, quantile: float | None = None) -> float:
        """The negative log-likelihood above which an image is an outlier."""
        q = self.outlier_quantile if quantile is None else quantile
        return float(np.quantile(-self.log_likelihoods, q))

    def save(self, folder: str | os.PathLike[str]) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "latent_means.npy", self.latent_means)
        np.save(folder / "image_ids.npy", self.image_ids)
        np.save(folder / "log_likelihoods.npy", self.log_likelihoods)
        (folder / "reference.json").write_text(
            json.dumps(
                {
                    "data_version": self.data_version,
                    "iwae_samples": self.iwae_samples,
                    "outlier_quantile": self.outlier_quantile,
                },
                indent=2,
            )
        )

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> LatentReference | None:
        folder = Path(folder)
        if not (folder / "reference.json").is_file():
            return None  # a version saved before references were kept
        settings = json.loads((folder / "reference.json").read_text())
        return cls(
            latent_means=np.load(folder / "latent_means.npy"),
            image_ids=np.load(folder / "image_ids.npy"),
            log_likelihoods=np.load(folder / "log_likelihoods.npy"),
            **settings,
        )


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
    image_shape = tuple(model.encoder.input_shape[1:])
    latent_dim = int(model.decoder.input_shape[-1])
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
    return mlflow.keras.load_model(model_uri, dst_path=dst_path)


class BadRequest(MlflowException):
    """A request the model cannot answer: HTTP 400 with this one-line message.

    MLflow 3.17's scoring server rewrites the message of an ``MlflowException``
    raised by ``predict`` to ``"Failed to predict data '<the whole request>'.
    Error: ..."`` (mlflow/pyfunc/scoring_server/__init__.py, ``invocations``):
    megabytes over many lines for a batch of images. The message here is set
    once and kept, so the client reads what is wrong and nothing else.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._one_line

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_one_line"):
            self._one_line = value


def bad_request(message: str) -> BadRequest:
    """An error MLflow's scoring server answers with HTTP 400 and this message."""
    return BadRequest(message)


def _integer(params: dict[str, Any], name: str, low: int, high: int) -> int:
    value = params.get(name, PARAMS[name])
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise bad_request(f"params.{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise bad_request(f"params.{name} must lie in [{low}, {high}], got {value}")
    return int(value)


class VAEPredictor:
    """The pyfunc face of the VAE: what a served model answers per image."""

    def __init__(self, model: VAE, reference: LatentReference | None = None) -> None:
        self.model = model
        self.reference = reference
        self._neighbors = None
        if reference is not None:
            from sklearn.neighbors import NearestNeighbors

            self._neighbors = NearestNeighbors().fit(reference.latent_means)

    def get_raw_model(self) -> VAE:
        return self.model

    def images(self, data: Any) -> np.ndarray:
        """The request's images, checked: the model's image shape, finite
        values in [0, 1], at most :data:`MAX_IMAGES`."""
        images = data[INPUT_NAME] if isinstance(data, dict) else data
        if hasattr(images, "to_numpy"):  # a DataFrame: one flattened image a row
            images = images.to_numpy()
        try:
            images = np.asarray(images, dtype=np.float32)
        except (TypeError, ValueError):
            raise bad_request("images must be arrays of numbers") from None
        shape = self.model.image_shape
        if images.ndim == 2 and images.shape[1:] == (int(np.prod(shape)),):  # noqa: PLR2004
            images = images.reshape(-1, *shape)
        if images.shape[1:] != shape:
            raise bad_request(
                f"images must have shape (n, {', '.join(map(str, shape))}), got "
                f"{images.shape}"
            )
        if not 1 <= len(images) <= MAX_IMAGES:
            raise bad_request(
                f"a request takes 1 to {MAX_IMAGES} images, got {len(images)}"
            )
        if not np.isfinite(images).all():
            raise bad_request("images hold NaN or infinite values")
        if images.min() < 0 or images.max() > 1:
            raise bad_request(
                f"pixel values must lie in [0, 1], got [{images.min():g}, "
                f"{images.max():g}]"
            )
        return images

    def predict(
        self, data: Any, params: dict[str, Any] | None = None
    ) -> dict[str, np.ndarray]:
        """Score images; optionally find their nearest training images and
        sample the prior.

        Args:
            data: Images, ``(n, *image_shape)`` floats in [0, 1] (or one flattened
                image per row), as an array, a DataFrame or ``{"image": array}``.
            params: ``iwae_samples`` (K of the log-likelihood estimate, 100),
                ``neighbors`` (how many nearest training images, 0),
                ``prior_samples`` (images decoded from the prior, 0), ``seed``
                and ``outlier_quantile`` (0: the version's own).

        Returns:
            ``z_mean`` and ``z_log_var`` of q(z|x); ``reconstruction``, the mean
            of p(x|z) at ``z_mean``; ``log_likelihood``, the IWAE estimate of
            log p(x) in nats; with a reference, ``outlier`` (the negative
            log-likelihood above the reference's threshold) and
            ``outlier_threshold`` (that threshold, one value); with
            ``neighbors``, ``neighbor_ids`` (indices in the training split) and
            ``neighbor_distances``; with ``prior_samples``, ``prior_samples``.

        Raises:
            MlflowException: A bad request (HTTP 400 when served), with a
                one-line message.
        """
        params = params or {}
        images = self.images(data)
        samples = _integer(params, "iwae_samples", 1, MAX_IWAE_SAMPLES)
        if len(images) * samples > MAX_DECODER_ROWS:
            raise bad_request(
                f"images x params.iwae_samples must be at most {MAX_DECODER_ROWS}, "
                f"got {len(images)} x {samples}"
            )
        neighbors = _integer(params, "neighbors", 0, MAX_NEIGHBORS)
        prior = _integer(params, "prior_samples", 0, MAX_PRIOR_SAMPLES)
        seed = _integer(params, "seed", 0, 2**31 - 1)
        if neighbors and self._neighbors is None:
            raise bad_request("this model version keeps no training latents")
        z_mean, z_log_var = self.model.encode(images)
        outputs = {
            "z_mean": z_mean,
            "z_log_var": z_log_var,
            "reconstruction": self.model.decode(z_mean),
            "log_likelihood": self.model.log_likelihood(
                images, num_samples=samples, seed=seed
            ),
        }
        quantile = params.get("outlier_quantile") or None
        if quantile is not None and not 0 < quantile < 1:
            raise bad_request(
                f"params.outlier_quantile must lie in (0, 1), got {quantile}"
            )
        if self.reference is not None:
            threshold = self.reference.outlier_threshold(quantile)
            outputs["outlier"] = -outputs["log_likelihood"] > threshold
            outputs["outlier_threshold"] = np.array([threshold])
        if neighbors:
            count = min(neighbors, len(self.reference.latent_means))
            distances, rows = self._neighbors.kneighbors(z_mean, n_neighbors=count)
            outputs["neighbor_ids"] = self.reference.image_ids[rows]
            outputs["neighbor_distances"] = distances
        if prior:
            outputs["prior_samples"] = self.model.decode(
                self.model.sample_prior(prior, seed=seed)
            )
        return outputs


def _load_pyfunc(path: str) -> VAEPredictor:
    """Called by ``mlflow.pyfunc.load_model`` with the model's folder."""
    wrapper = mlflow.keras.load._load_pyfunc(path)
    model = wrapper.get_raw_model()
    if not isinstance(model, VAE):
        raise TypeError(f"{path} does not hold a vae_pipeline VAE: {type(model)}")
    reference = LatentReference.load(Path(path) / REFERENCE_FOLDER)
    return VAEPredictor(model, reference)
