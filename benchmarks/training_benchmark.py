"""Training benchmark on real images: the project's default against the Keras example.

Data: any IDX image file (``--images``; by default ../shared/data/mnist, the MNIST
test set); the first ``--train`` images (8,000) train, the next ``--held-out``
(2,000) are held out; targets with binary cross-entropy (on grey pixels a
cross-entropy, not a log-likelihood); latent dimension 2. For each of 3 seeds it
trains:

- ``project default``: conf/base/parameters_training.yml as is (latent_dim set to 2),
  through the project's training node (tf.data from shards, callbacks, checkpoints),
  early-stopping on the last ``--validation`` (800) of the training images;
- ``keras example``: the public Keras VAE example, written out here: Conv2D 32 and
  64 (3x3, stride 2, ReLU), Dense 16, mirrored Dense 7*7*64 and Conv2DTranspose 64,
  32, then 1 with sigmoid; Adam 1e-3, batch 128, 30 epochs, fit on NumPy arrays;
- ``keras example arch, project node``: the same architecture and recipe through the
  project's training node, to measure what the pipeline costs in throughput.

It prints the medians of training wall seconds, training images/s (the images
each run actually trained on: a split repeated to ``min_steps_per_epoch`` counts
its repeats) and the held-out negative ELBO (nats per image, summed over pixels;
10 samples of z per image), every model scored by the project's own estimator
(:meth:`VAE.elbo`).

    python benchmarks/training_benchmark.py [--seeds 3] [--images PATH]
        [--train 8000] [--validation 800] [--held-out 2000]

Targets (issue 3): the project default at least 8 nats better than the Keras
example, in at most a fifth of its training time; the node at least 0.95x the
Keras example's images/s on the same architecture.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from support import MNIST_IMAGES, held_out_negative_elbo, read_idx, run_project_node

REFERENCE_EPOCHS = 30
REFERENCE_BATCH = 128


def load_images(path: Path, train: int, held_out: int) -> tuple[np.ndarray, ...]:
    """The first ``train`` and the next ``held_out`` images of an IDX file."""
    images = (read_idx(path)[..., np.newaxis] / 255.0).astype(np.float32)
    if len(images) < train + held_out:
        raise SystemExit(
            f"{path} has {len(images)} images, fewer than {train + held_out}"
        )
    return images[:train], images[train : train + held_out]


def keras_example_vae(seed: int):
    """The Keras VAE example (keras.io/examples/generative/vae), latent_dim 2."""
    import keras
    import tensorflow as tf
    from keras import layers, ops

    from vae_pipeline.models import Sampling

    keras.utils.set_random_seed(seed)
    latent_dim = 2
    encoder_inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(
        encoder_inputs
    )
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = Sampling(seed=seed)([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")
    latent_inputs = keras.Input(shape=(latent_dim,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(latent_inputs)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    decoder = keras.Model(latent_inputs, outputs, name="decoder")

    class ExampleVAE(keras.Model):
        def __init__(self, encoder, decoder, **kwargs):
            super().__init__(**kwargs)
            self.encoder, self.decoder = encoder, decoder
            self.total_loss_tracker = keras.metrics.Mean(name="total_loss")

        @property
        def metrics(self):
            return [self.total_loss_tracker]

        def train_step(self, data):
            with tf.GradientTape() as tape:
                z_mean, z_log_var, z = self.encoder(data)
                reconstruction = self.decoder(z)
                reconstruction_loss = ops.mean(
                    ops.sum(
                        keras.losses.binary_crossentropy(data, reconstruction),
                        axis=(1, 2),
                    )
                )
                kl_loss = -0.5 * (
                    1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)
                )
                total_loss = reconstruction_loss + ops.mean(ops.sum(kl_loss, axis=1))
            grads = tape.gradient(total_loss, self.trainable_weights)
            self.optimizer.apply_gradients(
                zip(grads, self.trainable_weights, strict=True)
            )
            self.total_loss_tracker.update_state(total_loss)
            return {"loss": self.total_loss_tracker.result()}

    model = ExampleVAE(encoder, decoder)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def project_vae(encoder, decoder):
    """Another implementation's trained networks (image -> mean, log-variance;
    z -> Bernoulli logits) as a project VAE with a standard prior, so that one
    estimator (:meth:`VAE.elbo`, :meth:`VAE.log_likelihood`) scores every model."""
    from vae_pipeline.models import VAE

    return VAE(
        encoder,
        decoder,
        beta=1.0,
        reconstruction_weight=1.0,
        likelihood="bernoulli",
        gaussian_sigma=1.0,
        learn_sigma=False,
        prior="standard",
        pseudo_inputs=1,
        objective="elbo",
        train_samples=1,
    )


def as_project_vae(example):
    """The Keras example's networks as a project VAE (its decoder's sigmoid
    turned back into logits)."""
    import keras
    from keras import layers, ops

    eps = 1e-7

    def logits(p):
        p = ops.clip(p, eps, 1 - eps)
        return ops.log(p) - ops.log1p(-p)

    encoder = keras.Model(example.encoder.inputs, example.encoder.outputs[:2])
    decoder = keras.Model(
        example.decoder.inputs, layers.Lambda(logits)(example.decoder.outputs[0])
    )
    return project_vae(encoder, decoder)


def run_keras_example(train, held_out, seed):
    model = keras_example_vae(seed)
    start = time.perf_counter()
    model.fit(train, epochs=REFERENCE_EPOCHS, batch_size=REFERENCE_BATCH, verbose=0)
    seconds = time.perf_counter() - start
    elbo = held_out_negative_elbo(as_project_vae(model), held_out, seed)
    return seconds, REFERENCE_EPOCHS * len(train) / seconds, elbo


KERAS_EXAMPLE_IN_NODE = {
    "model": {
        "architecture": "conv",
        "conv_filters": [32, 64],
        "hidden_units": [16],
        "decoder_units": [16],
        "latent_dim": 2,
    },
    "epochs": REFERENCE_EPOCHS,
    "batch_size": REFERENCE_BATCH,
    "learning_rate": 1e-3,
    "early_stopping_patience": REFERENCE_EPOCHS,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--images", type=Path, default=MNIST_IMAGES)
    parser.add_argument("--train", type=int, default=8_000)
    parser.add_argument("--validation", type=int, default=800)
    parser.add_argument("--held-out", type=int, default=2_000)
    args = parser.parse_args()
    if not args.images.is_file():
        print(f"skipped: {args.images} is absent")
        return 0
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    train, held_out = load_images(args.images, args.train, args.held_out)
    if train.shape[1:] != (28, 28, 1):
        print(f"skipped: the Keras example takes 28x28 images, not {train.shape[1:]}")
        return 0
    node = functools.partial(
        run_project_node, train, held_out, workdir=Path(tmp := tempfile.mkdtemp())
    )
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for seed in range(args.seeds):
        runs = {
            "project default": lambda s=seed: node(
                s, {"model": {"latent_dim": 2}}, validation=args.validation
            ),
            "keras example": lambda s=seed: run_keras_example(train, held_out, s),
            "keras example arch, project node": lambda s=seed: node(
                s, KERAS_EXAMPLE_IN_NODE, validation=args.validation
            ),
        }
        for name, run in runs.items():
            result = run()[:3]  # the node also gives its model
            rows.setdefault(name, []).append(result)
            print(
                f"seed {seed} {name}: {result[0]:.1f} s, {result[1]:.0f} images/s, "
                f"held-out -ELBO {result[2]:.2f}",
                flush=True,
            )
    shutil.rmtree(tmp)
    medians = {
        name: tuple(statistics.median(r[i] for r in results) for i in range(3))
        for name, results in rows.items()
    }
    print(
        f"\n{args.images.name}: {len(train):,} train / {len(held_out):,} held out, "
        f"latent 2, median of {args.seeds} seeds:"
    )
    print(f"{'model':<34} {'train s':>8} {'images/s':>9} {'held-out -ELBO':>15}")
    for name, (seconds, speed, elbo) in medians.items():
        print(f"{name:<34} {seconds:>8.1f} {speed:>9.0f} {elbo:>15.2f}")
    ours, reference = medians["project default"], medians["keras example"]
    node = medians["keras example arch, project node"]
    print(f"ELBO gain: {reference[2] - ours[2]:.2f} nats (target >= 8)")
    print(f"time ratio: {ours[0] / reference[0]:.3f} (target <= 0.2)")
    print(f"node throughput ratio: {node[1] / reference[1]:.3f} (target >= 0.95)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
