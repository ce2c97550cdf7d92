"""The Variational Autoencoder model, its priors and its training objectives.

The prior p(z) is the standard normal N(0, I) or a VampPrior, the mixture
``1/K sum_k q(z | u_k)`` of the encoder's posteriors at K learned pseudo-inputs
(Tomczak & Welling 2018). With K samples z_k ~ q(z|x) (reparameterized) and the
log importance weights ``log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x)``:

- ``objective: elbo``: ``reconstruction_weight * -log p(x|z) + beta * KL(q || p)``
  averaged over the K samples, the KL in closed form for the standard prior and
  estimated from the samples for the VampPrior. ``beta = 1`` and
  ``reconstruction_weight = 1`` give the negative ELBO; ``beta > 1`` the
  disentangling beta-VAE.
- ``objective: iwae``: the negative importance-weighted bound
  ``-log 1/K sum_k w_k`` (Burda et al. 2016), with ``beta`` weighting
  ``log p(z) - log q(z|x)`` inside each weight. K = 1 is the ELBO.

A non-trainable ``kl_weight`` in [0, 1] multiplies the KL (or the prior-to-posterior
ratio) for warm-up (see :class:`~vae_pipeline.models.callbacks.KLWarmup`). All
losses are per image, in nats.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import keras
import numpy as np
from keras import ops

from vae_pipeline.models.layers import PseudoInputs, Sampling

Likelihood = Literal["bernoulli", "gaussian"]
Prior = Literal["standard", "vamp"]
Objective = Literal["elbo", "iwae"]
INFERENCE_BATCH = 1000  # images per eager encoder or decoder call
# Decoder rows (images x samples) per eager call of the importance-sampled
# estimates: large enough that per-call overhead vanishes, small enough that the
# logits of one call stay in the tens of MB.
SAMPLE_ROWS = 20_000
LOG_2PI = math.log(2.0 * math.pi)


def _sum_per_example(values: Any) -> Any:
    return ops.sum(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)


def bernoulli_nll(x: Any, logits: Any) -> Any:
    """-log Bernoulli(x | sigmoid(logits)) summed over pixels, per example.

    Computed from logits as ``max(l, 0) - l * x + log(1 + exp(-|l|))``, which is
    exact and finite for pixels at exactly 0 and 1 and for any logit.
    """
    elementwise = (
        ops.maximum(logits, 0.0) - logits * x + ops.log1p(ops.exp(-ops.abs(logits)))
    )
    return _sum_per_example(elementwise)


def gaussian_nll(x: Any, mean: Any, log_sigma: Any) -> Any:
    """-log N(x | mean, sigma^2) summed over pixels, per example."""
    standardized = (x - mean) * ops.exp(-log_sigma)
    elementwise = 0.5 * ops.square(standardized) + log_sigma + 0.5 * LOG_2PI
    return _sum_per_example(elementwise)


def _mean_over_examples(values: Any) -> Any:
    """Mean over the batch; 0 for an empty batch (a replica's share can be empty)."""
    count = ops.cast(ops.shape(values)[0], values.dtype)
    return ops.sum(values) / ops.maximum(count, 1.0)


def _scale_for_replicas(loss: Any) -> Any:
    """Divide by the replicas in sync, as Keras does for its own losses.

    Under a tf.distribute strategy each replica's gradients are summed, so each
    replica's loss must be its share of the mean loss.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            loss = loss / replicas
    return loss


def _in_multi_worker_replica() -> bool:
    """Whether this runs in a replica of a multi-worker tf.distribute strategy."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return (
        isinstance(
            tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy
        )
        and not tf.distribute.in_cross_replica_context()
    )


def kl_per_dimension(z_mean: Any, z_log_var: Any) -> Any:
    """Closed-form KL(N(mean, exp(log_var)) || N(0, 1)) for each latent dimension."""
    return 0.5 * (ops.exp(z_log_var) + ops.square(z_mean) - 1.0 - z_log_var)


def gaussian_kl(mean_q: Any, log_var_q: Any, mean_p: Any, log_var_p: Any) -> Any:
    """Closed-form KL(N(mean_q, exp(log_var_q)) || N(mean_p, exp(log_var_p))),
    elementwise (one value per dimension)."""
    return 0.5 * (
        log_var_p
        - log_var_q
        + (ops.exp(log_var_q) + ops.square(mean_q - mean_p)) * ops.exp(-log_var_p)
        - 1.0
    )


def standard_normal_log_density(z: Any) -> Any:
    """log N(z | 0, I), summed over the last axis."""
    return -0.5 * ops.sum(ops.square(z) + LOG_2PI, axis=-1)


def diagonal_gaussian_log_density(z: Any, mean: Any, log_var: Any) -> Any:
    """log N(z | mean, diag(exp(log_var))), summed over the last axis."""
    return -0.5 * ops.sum(
        LOG_2PI + log_var + ops.square(z - mean) * ops.exp(-log_var), axis=-1
    )


def mixture_log_density(z: Any, means: Any, log_vars: Any) -> Any:
    """log of the equal-weight mixture ``1/K sum_k N(z | means_k, exp(log_vars_k))``.

    Args:
        z: Points, shape (n, d).
        means: Component means, shape (K, d).
        log_vars: Component log-variances, shape (K, d).

    Returns:
        The log density of each point, shape (n,). The squared distances to every
        component come from three matrix products, so memory is n x K, not
        n x K x d.
    """
    inverse_var = ops.exp(-log_vars)
    squared = (
        ops.matmul(ops.square(z), ops.transpose(inverse_var))
        - 2.0 * ops.matmul(z, ops.transpose(means * inverse_var))
        + ops.sum(ops.square(means) * inverse_var, axis=-1)
    )
    dims = ops.cast(ops.shape(z)[-1], z.dtype)
    component = -0.5 * (
        dims * LOG_2PI + ops.sum(log_vars, axis=-1) + ops.maximum(squared, 0.0)
    )
    count = ops.cast(ops.shape(means)[0], z.dtype)
    return ops.logsumexp(component, axis=-1) - ops.log(count)


@keras.saving.register_keras_serializable(package="vae_pipeline")
class VAE(keras.Model):
    """Encoder, sampling layer, decoder and prior, trained on the ELBO or the IWAE
    bound (see the module docstring).

    Calling the model returns a dict: ``z_mean`` and ``z_log_var`` of q(z|x), ``z``
    (``train_samples`` draws, shape (K, n, latent_dim)), ``decoded`` (the decoder's
    output for each draw: logits or means, shape (K, n, *image_shape)) and
    ``reconstruction`` (the mean of p(x|z) at the first draw). ``loss``,
    ``reconstruction`` (-log p(x|z)) and ``kl`` are reported as metrics in training
    and validation.

    The pipeline, the served model and the benchmarks use the model through
    :meth:`encode`, :meth:`decode`, :meth:`log_likelihood`, :meth:`elbo` and
    :meth:`sample_prior`, which take and return NumPy arrays.
    """

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        *,
        beta: float,
        reconstruction_weight: float,
        likelihood: Likelihood,
        gaussian_sigma: float,
        learn_sigma: bool,
        prior: Prior,
        pseudo_inputs: int,
        objective: Objective,
        train_samples: int,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for name, value, allowed in (
            ("likelihood", likelihood, ("bernoulli", "gaussian")),
            ("prior", prior, ("standard", "vamp")),
            ("objective", objective, ("elbo", "iwae")),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if train_samples < 1 or (prior == "vamp" and pseudo_inputs < 1):
            raise ValueError(
                "train_samples and (for a VampPrior) pseudo_inputs must be at least "
                f"1, got {train_samples} and {pseudo_inputs}"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.beta = float(beta)
        self.reconstruction_weight = float(reconstruction_weight)
        self.likelihood = likelihood
        self.gaussian_sigma = float(gaussian_sigma)
        self.learn_sigma = bool(learn_sigma)
        self.prior = prior
        self.pseudo_inputs = int(pseudo_inputs)
        self.objective = objective
        self.train_samples = int(train_samples)
        self.seed = seed
        self.sampling = Sampling(seed=seed, name="sampling", dtype="float32")
        if prior == "vamp":
            self.vamp_pseudo_inputs = PseudoInputs(
                pseudo_inputs, self.image_shape, name="pseudo_inputs"
            )
        self.kl_weight = self.add_weight(
            shape=(), initializer="ones", trainable=False, name="kl_weight"
        )
        self.log_sigma = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(math.log(gaussian_sigma)),
            trainable=likelihood == "gaussian" and learn_sigma,
            name="log_sigma",
        )
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.built = True

    @property
    def latent_dim(self) -> int:
        return int(self.encoder.outputs[0].shape[-1])

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.encoder.inputs[0].shape[1:])

    @property
    def closed_form_kl(self) -> bool:
        """Whether KL(q(z|x) || p(z)) has a closed form (the standard prior)."""
        return self.prior == "standard"

    # ------------------------------------------------------------ the prior

    def prior_components(self, training: bool = False) -> tuple[Any, Any] | None:
        """Means and log-variances of the VampPrior's components (None for N(0, I))."""
        if self.prior == "standard":
            return None
        return self.encoder(self.vamp_pseudo_inputs.images(), training=training)

    def prior_log_density(self, z: Any, components: tuple[Any, Any] | None) -> Any:
        """log p(z) over the last axis of ``z`` (any leading shape).

        Args:
            z: Latent points, shape (..., latent_dim).
            components: :meth:`prior_components` (computed once per batch).
        """
        if components is None:
            return standard_normal_log_density(z)
        flat = ops.reshape(z, (-1, self.latent_dim))
        return ops.reshape(mixture_log_density(flat, *components), ops.shape(z)[:-1])

    def sample_prior(self, count: int, *, seed: int = 0) -> np.ndarray:
        """``count`` draws of z ~ p(z), as NumPy (float32, (count, latent_dim))."""
        generator = keras.random.SeedGenerator(seed)
        noise = keras.random.normal((count, self.latent_dim), seed=generator)
        components = self.prior_components()
        if components is None:
            return ops.convert_to_numpy(noise)
        means, log_vars = components
        chosen = keras.random.randint((count,), 0, self.pseudo_inputs, seed=generator)
        mean, log_var = ops.take(means, chosen, axis=0), ops.take(log_vars, chosen, 0)
        return ops.convert_to_numpy(mean + ops.exp(0.5 * log_var) * noise)

    # -------------------------------------------------- the model as NumPy

    def encode(
        self, images: Any, *, batch_size: int = INFERENCE_BATCH
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and log-variance of q(z|x) for each image, as NumPy arrays.

        Calls the encoder eagerly, batch by batch, rather than through
        ``predict``: a short inference on a freshly loaded model then traces no
        ``tf.function`` (TensorFlow warns when many such traces pile up).
        """
        means, log_vars = [], []
        for start in range(0, len(images), batch_size):
            batch = ops.convert_to_tensor(images[start : start + batch_size], "float32")
            mean, log_var = self.encoder(batch, training=False)
            means.append(ops.convert_to_numpy(mean))
            log_vars.append(ops.convert_to_numpy(log_var))
        if not means:
            empty = np.zeros((0, self.latent_dim), np.float32)
            return empty, empty
        return np.concatenate(means), np.concatenate(log_vars)

    def decoder_output(self, z: Any) -> Any:
        """The decoder's output (logits or means of p(x|z)) at latent points
        ``z``, as a tensor."""
        return self.decoder(z, training=False)

    def decode(self, z: Any, *, batch_size: int = INFERENCE_BATCH) -> np.ndarray:
        """The mean of p(x|z) (pixel space) for each latent point, as NumPy."""
        outputs = []
        for start in range(0, len(z), batch_size):
            batch = ops.convert_to_tensor(z[start : start + batch_size], "float32")
            decoded = self.decoder_output(batch)
            outputs.append(ops.convert_to_numpy(self.pixel_mean(decoded)))
        if not outputs:
            return np.zeros((0, *self.image_shape), np.float32)
        return np.concatenate(outputs)

    def reconstruct(
        self, images: Any, *, batch_size: int = INFERENCE_BATCH
    ) -> np.ndarray:
        """Each image decoded from its posterior mean (pixel space), as NumPy."""
        z_mean = self.encode(images, batch_size=batch_size)[0]
        return self.decode(z_mean, batch_size=batch_size)

    def conditional_log_likelihood(
        self, images: Any, z: Any, *, batch_size: int = INFERENCE_BATCH
    ) -> np.ndarray:
        """log p(x|z) in nats for each image and its latent point, as NumPy."""
        outputs = []
        for start in range(0, len(z), batch_size):
            stop = start + batch_size
            x = ops.convert_to_tensor(images[start:stop], "float32")
            decoded = self.decoder_output(
                ops.convert_to_tensor(z[start:stop], "float32")
            )
            outputs.append(ops.convert_to_numpy(-self.reconstruction_nll(x, decoded)))
        return np.concatenate(outputs) if outputs else np.zeros(0, np.float32)

    def _sample_chunks(
        self, images: Any, num_samples: int, seed: int, batch_size: int
    ) -> Any:
        """For each batch of images, chunks of samples z ~ q(z|x) with their
        log p(x|z), log p(z) and log q(z|x), each (k, n) NumPy float64, and the
        batch's posterior; decoder calls of at most :data:`SAMPLE_ROWS` rows."""
        generator = keras.random.SeedGenerator(seed)
        components = self.prior_components()
        for start in range(0, len(images), batch_size):
            x = ops.convert_to_tensor(images[start : start + batch_size], "float32")
            posterior = self.encoder(x, training=False)
            n = int(x.shape[0])
            chunk = max(1, min(num_samples, SAMPLE_ROWS // max(n, 1)))
            parts = []
            for drawn in range(0, num_samples, chunk):
                k = min(chunk, num_samples - drawn)
                terms = self._importance_terms(x, posterior, k, generator, components)
                parts.append(
                    tuple(
                        ops.convert_to_numpy(value).astype(np.float64)
                        for value in terms
                    )
                )
            yield posterior, parts

    def _importance_terms(
        self,
        x: Any,
        posterior: tuple[Any, Any],
        k: int,
        generator: keras.random.SeedGenerator,
        components: tuple[Any, Any] | None,
    ) -> tuple[Any, Any, Any]:
        """log p(x|z), log p(z) and log q(z|x) of ``k`` draws z ~ q(z|x) for each
        image of ``x``, each of shape (k, n)."""
        mean, log_var = posterior
        n = int(x.shape[0])
        noise = keras.random.normal((k, n, self.latent_dim), seed=generator)
        z = mean + ops.exp(0.5 * log_var) * noise
        decoded = self.decoder(ops.reshape(z, (k * n, self.latent_dim)), training=False)
        log_px_z = self._draws_log_likelihood(x, ops.reshape(decoded, (k, n, -1)))
        log_qz = -0.5 * ops.sum(LOG_2PI + log_var + ops.square(noise), axis=-1)
        return log_px_z, self.prior_log_density(z, components), log_qz

    def log_likelihood(
        self,
        images: Any,
        *,
        num_samples: int,
        seed: int = 0,
        batch_size: int = 100,
    ) -> np.ndarray:
        """Importance-sampled estimate of log p(x) in nats for each image.

        The IWAE bound ``log 1/K sum_k p(x|z_k) p(z_k) / q(z_k|x)``, z_k ~ q(z|x),
        which is the ELBO for K = 1 and tightens to log p(x) as K grows (Burda et
        al. 2016); computed with a running log-sum-exp, so memory is bounded for
        any K.

        Args:
            images: Images, first axis the examples, pixels in [0, 1].
            num_samples: K, the importance samples per image.
            seed: Seed of the samples.
            batch_size: Images encoded at once.

        Returns:
            The estimate for each image, shape (N,), float64.
        """
        if num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}")
        estimates = []
        for _, parts in self._sample_chunks(images, num_samples, seed, batch_size):
            running = None
            for log_px_z, log_pz, log_qz in parts:
                chunk = _logsumexp(log_px_z + log_pz - log_qz, axis=0)
                running = chunk if running is None else np.logaddexp(running, chunk)
            estimates.append(running - math.log(num_samples))
        return np.concatenate(estimates) if estimates else np.zeros(0)

    def elbo(
        self,
        images: Any,
        *,
        num_samples: int = 1,
        seed: int = 0,
        batch_size: int = INFERENCE_BATCH,
    ) -> dict[str, np.ndarray]:
        """The ELBO's terms for each image, in nats.

        Args:
            images: Images, first axis the examples.
            num_samples: Draws of z per image for the expectations.
            seed: Seed of the draws.
            batch_size: Images encoded at once.

        Returns:
            ``z_mean`` and ``z_log_var`` of q(z|x); ``reconstruction``, the mean
            of -log p(x|z) over the draws; ``kl``, KL(q(z|x) || p(z)) (closed form
            where :attr:`closed_form_kl`, otherwise the mean of log q - log p over
            the same draws); ``kl_per_dimension``, each dimension's closed-form KL
            against N(0, 1) (for the standard prior, the split of ``kl``).
        """
        outputs: dict[str, list[np.ndarray]] = {
            key: []
            for key in (
                "z_mean",
                "z_log_var",
                "reconstruction",
                "kl",
                "kl_per_dimension",
            )
        }
        for (mean, log_var), parts in self._sample_chunks(
            images, num_samples, seed, batch_size
        ):
            log_px_z, log_pz, log_qz = (
                np.concatenate(values) for values in zip(*parts, strict=True)
            )
            per_dimension = ops.convert_to_numpy(kl_per_dimension(mean, log_var))
            outputs["z_mean"].append(ops.convert_to_numpy(mean))
            outputs["z_log_var"].append(ops.convert_to_numpy(log_var))
            outputs["reconstruction"].append(-log_px_z.mean(axis=0))
            outputs["kl"].append(
                per_dimension.sum(axis=1, dtype=np.float64)
                if self.closed_form_kl
                else (log_qz - log_pz).mean(axis=0)
            )
            outputs["kl_per_dimension"].append(per_dimension)
        if not outputs["z_mean"]:
            raise ValueError("elbo() needs at least one image")
        return {key: np.concatenate(values) for key, values in outputs.items()}

    # ---------------------------------------------------- training (Keras)

    def pixel_mean(self, decoded: Any) -> Any:
        """Mean of p(x|z) from the decoder's output."""
        return ops.sigmoid(decoded) if self.likelihood == "bernoulli" else decoded

    def call(self, inputs: Any, training: bool | None = None) -> dict[str, Any]:
        z_mean, z_log_var = self.encoder(inputs, training=training)
        samples = self.train_samples
        shape = (samples, *ops.shape(z_mean))
        z = self.sampling(
            (ops.broadcast_to(z_mean, shape), ops.broadcast_to(z_log_var, shape))
        )
        decoded = self.decoder(ops.reshape(z, (-1, self.latent_dim)), training=training)
        decoded = ops.reshape(decoded, (samples, -1, *self.image_shape))
        return {
            "z_mean": z_mean,
            "z_log_var": z_log_var,
            "z": z,
            "decoded": decoded,
            "reconstruction": self.pixel_mean(decoded[0]),
        }

    def reconstruction_nll(self, x: Any, decoded: Any) -> Any:
        """-log p(x|z) per example, in nats."""
        if self.likelihood == "bernoulli":
            return bernoulli_nll(x, decoded)
        return gaussian_nll(x, decoded, self.log_sigma)

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        log_px_z, kl, log_ratio = self._loss_terms(x, y_pred, training=training)
        reconstruction = -ops.mean(log_px_z, axis=0)
        kl_weight = self.beta * self.kl_weight
        if self.objective == "iwae":
            log_weights = self.reconstruction_weight * log_px_z + kl_weight * log_ratio
            samples = ops.cast(ops.shape(log_weights)[0], log_weights.dtype)
            per_example = -(ops.logsumexp(log_weights, axis=0) - ops.log(samples))
        else:
            per_example = self.reconstruction_weight * reconstruction + kl_weight * kl
        # Per-example values: the metrics are means over images, like Keras's loss
        # tracker, whatever the batch sizes.
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        return _scale_for_replicas(_mean_over_examples(per_example))

    def _loss_terms(
        self, x: Any, y_pred: dict[str, Any], *, training: bool
    ) -> tuple[Any, Any, Any]:
        """The training loss's terms from :meth:`call`'s output.

        Returns:
            ``log p(x|z)`` of each draw, shape (K, n); the KL term of each image,
            (n,); ``log p(z) - log q(z|x)`` of each draw, (K, n), or None where
            the objective does not need it (the ELBO with the standard prior,
            whose KL is in closed form).
        """
        z_mean, z_log_var, z = y_pred["z_mean"], y_pred["z_log_var"], y_pred["z"]
        log_px_z = self._draws_log_likelihood(x, y_pred["decoded"])
        if self.closed_form_kl and self.objective == "elbo":
            return log_px_z, ops.sum(kl_per_dimension(z_mean, z_log_var), axis=-1), None
        log_ratio = self.prior_log_density(
            z, self.prior_components(training=training)
        ) - diagonal_gaussian_log_density(z, z_mean, z_log_var)
        return log_px_z, -ops.mean(log_ratio, axis=0), log_ratio

    def _draws_log_likelihood(self, x: Any, decoded: Any) -> Any:
        """log p(x|z) of each image under each draw's decoded output (K, n, ...)."""
        samples = ops.shape(decoded)[0]
        nll = self.reconstruction_nll(
            repeat_rows(x, samples), ops.reshape(decoded, (-1, *self.image_shape))
        )
        return -ops.reshape(nll, (samples, -1))

    def get_metrics_result(self) -> dict[str, Any]:
        """The metrics, each with a batch axis of one inside a multi-worker step.

        Keras 3's TensorFlow trainer averages a multi-worker step's logs with
        ``strategy.reduce("MEAN", value, axis=0)``, which fails on the scalars
        every metric gives (tensorflow/tensorflow#72388, still so in Keras 3.15);
        the reduction then gives the scalars back.
        """
        result = super().get_metrics_result()
        if _in_multi_worker_replica():
            return {name: ops.reshape(value, (1,)) for name, value in result.items()}
        return result

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "beta": self.beta,
            "reconstruction_weight": self.reconstruction_weight,
            "likelihood": self.likelihood,
            "gaussian_sigma": self.gaussian_sigma,
            "learn_sigma": self.learn_sigma,
            "prior": self.prior,
            "pseudo_inputs": self.pseudo_inputs,
            "objective": self.objective,
            "train_samples": self.train_samples,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> VAE:
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        # Models saved before priors and objectives were options were all trained
        # this way: a registered version from then loads as what it is.
        for key, value in _BEFORE_PRIORS.items():
            config.setdefault(key, value)
        return cls(encoder, decoder, **config)


_BEFORE_PRIORS = {
    "prior": "standard",
    "pseudo_inputs": 0,
    "objective": "elbo",
    "train_samples": 1,
}


def repeat_rows(x: Any, k: int) -> Any:
    """``x`` (n, ...) stacked ``k`` times along the first axis: (k * n, ...)."""
    return ops.reshape(ops.broadcast_to(x, (k, *ops.shape(x))), (-1, *ops.shape(x)[1:]))


def _logsumexp(values: np.ndarray, axis: int) -> np.ndarray:
    peak = np.max(values, axis=axis, keepdims=True)
    return np.squeeze(peak, axis) + np.log(np.sum(np.exp(values - peak), axis=axis))
