"""A VAE with two stochastic layers, z2 -> z1 -> x (Tomczak & Welling 2018).

Generative model: ``p(z2)`` (N(0, I) or the VampPrior), ``p(z1 | z2)`` a
diagonal Gaussian and ``p(x | z1, z2)``. Inference model: ``q(z2 | x)``, then
``q(z1 | x, z2)``.

This is the factorisation of the paper's own two-level model. Its alternative,
top-down inference (the Ladder VAE, Sønderby et al. 2016), draws z2 first as
well but merges the prior p(z1 | z2) into q(z1 | ...) through a deterministic
bottom-up pass. The paper's version was kept for three reasons:

- ``q(z2 | x)`` stays a plain encoder. The VampPrior over z2 is then
  ``1/K sum_k q(z2 | u_k)``, computed exactly as for one layer.
- Both posteriors see the image. With MLPs on statically binarized MNIST the
  paper reports 85.05 nats against one layer's 88.56 with the standard prior,
  and 83.19 against 85.57 with the VampPrior.
- Everything the project does with "the latent" applies to z2, the top layer,
  unchanged: the served ``z_mean``, KL per dimension, active units, the
  manifold and interpolation. ``decode(z2)`` goes through the mean of
  ``p(z1 | z2)``. The likelihood, the ELBO and the training loss count both
  layers.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from vae_pipeline.models.vae import (
    INFERENCE_BATCH,
    LOG_2PI,
    VAE,
    diagonal_gaussian_log_density,
    gaussian_kl,
    kl_per_dimension,
    repeat_rows,
)


@keras.saving.register_keras_serializable(package="vae_pipeline")
class HierarchicalVAE(VAE):
    """A :class:`VAE` whose ``encoder`` is q(z2|x) and whose ``decoder`` is
    p(x | z1, z2) (input ``[z1, z2]``), with three more sub-models: q(z1 | x, z2)
    as ``features_z1`` (image -> features, run once per image) and
    ``encoder_z1`` (inputs ``[features, z2]``, run once per drawn z2), and
    ``prior_z1``, p(z1 | z2). Every other option is the :class:`VAE`'s.

    ``latent_dim``, :meth:`encode`, :meth:`decode`, :meth:`sample_prior` and the
    ``kl_per_dimension`` of :meth:`elbo` are about z2; :meth:`log_likelihood`,
    :meth:`reconstruct`, the ELBO's ``kl`` (KL of both layers) and the loss are
    about the whole model.
    """

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        *,
        features_z1: keras.Model,
        encoder_z1: keras.Model,
        prior_z1: keras.Model,
        **options: Any,
    ) -> None:
        super().__init__(encoder, decoder, **options)
        self.features_z1 = features_z1
        self.encoder_z1 = encoder_z1
        self.prior_z1 = prior_z1

    @property
    def z1_dim(self) -> int:
        return int(self.prior_z1.outputs[0].shape[-1])

    @property
    def closed_form_kl(self) -> bool:
        return False  # KL(q(z1|x,z2) || p(z1|z2)) depends on the drawn z2

    def decoder_output(self, z: Any) -> Any:
        """p(x | z1, z2) at z1 the mean of p(z1 | z2), for latent points z2."""
        z1_mean, _ = self.prior_z1(z, training=False)
        return self.decoder(ops.concatenate([z1_mean, z], axis=-1), training=False)

    def reconstruct(
        self, images: Any, *, batch_size: int = INFERENCE_BATCH
    ) -> np.ndarray:
        """Each image decoded from the posterior means of both layers: z2 of
        q(z2 | x), then z1 of q(z1 | x, z2)."""
        outputs = [np.zeros((0, *self.image_shape), np.float32)]
        for start in range(0, len(images), batch_size):
            x = ops.convert_to_tensor(images[start : start + batch_size], "float32")
            z2, _ = self.encoder(x, training=False)
            features = self.features_z1(x, training=False)
            z1, _ = self.encoder_z1([features, z2], training=False)
            decoded = self.decoder(ops.concatenate([z1, z2], axis=-1), training=False)
            outputs.append(ops.convert_to_numpy(self.pixel_mean(decoded)))
        return np.concatenate(outputs)

    def _lower_layer(
        self, images: Any, z2: Any, samples: int, training: bool | None
    ) -> tuple[Any, Any, Any, Any]:
        """q(z1 | x, z2) and p(z1 | z2) for ``images`` and ``z2``, ``samples``
        draws per image (stacked draw by draw): the image branch runs once per
        image."""
        features = repeat_rows(self.features_z1(images, training=training), samples)
        q_mean, q_log_var = self.encoder_z1([features, z2], training=training)
        p_mean, p_log_var = self.prior_z1(z2, training=training)
        return q_mean, q_log_var, p_mean, p_log_var

    def call(self, inputs: Any, training: bool | None = None) -> dict[str, Any]:
        z_mean, z_log_var = self.encoder(inputs, training=training)
        samples = self.train_samples
        shape = (samples, *ops.shape(z_mean))
        z2 = self.sampling(
            (ops.broadcast_to(z_mean, shape), ops.broadcast_to(z_log_var, shape))
        )
        flat_z2 = ops.reshape(z2, (-1, self.latent_dim))
        q_mean, q_log_var, p_mean, p_log_var = self._lower_layer(
            inputs, flat_z2, samples, training
        )
        z1 = self.sampling((q_mean, q_log_var))
        decoded = self.decoder(
            ops.concatenate([z1, flat_z2], axis=-1), training=training
        )
        decoded = ops.reshape(decoded, (samples, -1, *self.image_shape))
        lower = {
            name: ops.reshape(value, (samples, -1, self.z1_dim))
            for name, value in (
                ("z1", z1),
                ("z1_mean", q_mean),
                ("z1_log_var", q_log_var),
                ("prior_z1_mean", p_mean),
                ("prior_z1_log_var", p_log_var),
            )
        }
        return {
            "z_mean": z_mean,
            "z_log_var": z_log_var,
            "z": z2,
            **lower,
            "decoded": decoded,
            "reconstruction": self.pixel_mean(decoded[0]),
        }

    def _loss_terms(
        self, x: Any, y_pred: dict[str, Any], *, training: bool
    ) -> tuple[Any, Any, Any]:
        z_mean, z_log_var, z2, z1 = (
            y_pred[name] for name in ("z_mean", "z_log_var", "z", "z1")
        )
        q_z1 = y_pred["z1_mean"], y_pred["z1_log_var"]
        p_z1 = y_pred["prior_z1_mean"], y_pred["prior_z1_log_var"]
        log_px_z = self._draws_log_likelihood(x, y_pred["decoded"])
        log_q_z2 = diagonal_gaussian_log_density(z2, z_mean, z_log_var)
        log_p_z2 = self.prior_log_density(z2, self.prior_components(training=training))
        log_ratio = (
            log_p_z2
            - log_q_z2
            + diagonal_gaussian_log_density(z1, *p_z1)
            - diagonal_gaussian_log_density(z1, *q_z1)
        )
        if self.objective == "iwae":
            return log_px_z, -ops.mean(log_ratio, axis=0), log_ratio
        # The ELBO: closed forms where they exist, for lower-variance gradients.
        kl_z1 = ops.mean(ops.sum(gaussian_kl(*q_z1, *p_z1), axis=-1), axis=0)
        if self.prior == "standard":
            kl_z2 = ops.sum(kl_per_dimension(z_mean, z_log_var), axis=-1)
        else:
            kl_z2 = ops.mean(log_q_z2 - log_p_z2, axis=0)
        return log_px_z, kl_z2 + kl_z1, None

    def _importance_terms(
        self,
        x: Any,
        posterior: tuple[Any, Any],
        k: int,
        generator: keras.random.SeedGenerator,
        components: tuple[Any, Any] | None,
    ) -> tuple[Any, Any, Any]:
        mean, log_var = posterior
        n = int(x.shape[0])
        noise2 = keras.random.normal((k, n, self.latent_dim), seed=generator)
        z2 = mean + ops.exp(0.5 * log_var) * noise2
        flat_z2 = ops.reshape(z2, (k * n, self.latent_dim))
        q_mean, q_log_var, p_mean, p_log_var = self._lower_layer(x, flat_z2, k, False)
        noise1 = keras.random.normal((k * n, self.z1_dim), seed=generator)
        z1 = q_mean + ops.exp(0.5 * q_log_var) * noise1
        decoded = self.decoder(ops.concatenate([z1, flat_z2], axis=-1), training=False)
        log_px_z = self._draws_log_likelihood(x, ops.reshape(decoded, (k, n, -1)))
        log_pz = self.prior_log_density(z2, components) + ops.reshape(
            diagonal_gaussian_log_density(z1, p_mean, p_log_var), (k, n)
        )
        log_qz = -0.5 * ops.sum(LOG_2PI + log_var + ops.square(noise2), axis=-1)
        log_qz += ops.reshape(
            -0.5 * ops.sum(LOG_2PI + q_log_var + ops.square(noise1), axis=-1), (k, n)
        )
        return log_px_z, log_pz, log_qz

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "features_z1": keras.saving.serialize_keras_object(self.features_z1),
            "encoder_z1": keras.saving.serialize_keras_object(self.encoder_z1),
            "prior_z1": keras.saving.serialize_keras_object(self.prior_z1),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> HierarchicalVAE:
        config = dict(config)
        for name in ("features_z1", "encoder_z1", "prior_z1"):
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return super().from_config(config)
