"""What a served VAE answers: the request checked, then per image the posterior,
the reconstruction, the importance-weighted log-likelihood, an outlier flag and
the nearest training images, and samples of the prior on request.

Used as the pyfunc of :mod:`vae_pipeline.tracking.vae_flavor`; Kedro-free, so a
served model needs only the packages its MLmodel file pins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from vae_pipeline.serving.reference import LatentReference

if TYPE_CHECKING:  # the models import TensorFlow
    from vae_pipeline.models import VAE

INPUT_NAME = "image"  # the encoder's input layer
# What one request may ask for: bounds on the work (and memory) of a predict call.
MAX_IMAGES = 4096
MAX_DECODER_ROWS = 2_000_000  # images x importance samples
MAX_IWAE_SAMPLES = 10_000
MAX_PRIOR_SAMPLES = 1024
MAX_NEIGHBORS = 100
# Request parameters (``params`` in MLflow's REST protocol), with their defaults.
PARAMS = {"iwae_samples": 100, "prior_samples": 0, "neighbors": 0, "seed": 0}


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
            "reconstruction": self.model.reconstruct(images),
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
