"""Training throughput of the project's Keras VAE on whatever device Keras sees.

Trains ``vae_pipeline.models.build_vae`` with the project's default training
recipe (dense 256-128 / 256-512, latent 8, Bernoulli, Adam 3e-3, batch 256, XLA)
on the real MNIST test set (first 8,000 images train, last 2,000 held out), fed as
NumPy arrays so that it runs on any Keras backend: TensorFlow where the project is
installed, or JAX on an accelerator machine that has no TensorFlow. The conv
architecture and a larger batch are timed too.

It prints, per configuration, the first epoch (compilation included), the median
steady-state epoch, images/s and the held-out negative ELBO after the epochs.

    python benchmarks/accelerator_benchmark.py [--mnist DIR] [--epochs 10]
    KERAS_BACKEND=jax python benchmarks/accelerator_benchmark.py   # e.g. a GPU host
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import keras
import numpy as np

from support import MNIST_IMAGES, read_idx, training_recipe
from vae_pipeline.models import build_vae

TRAIN_IMAGES = 8_000
CONFIGS = {
    "dense, batch 256 (project default)": {"architecture": "dense", "batch": 256},
    "dense, batch 1024": {"architecture": "dense", "batch": 1024},
    "conv, batch 256": {"architecture": "conv", "batch": 256},
}


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)

    def on_train_begin(self, logs=None):
        self.seconds: list[float] = []


def load_mnist(path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = (read_idx(path)[..., np.newaxis] / 255.0).astype(np.float32)
    return images[:TRAIN_IMAGES], images[TRAIN_IMAGES:]


def held_out_negative_elbo(model, images: np.ndarray) -> float:
    """The model's own estimate (:meth:`VAE.elbo`), one draw of z per image."""
    terms = model.elbo(images, num_samples=1)
    return float(np.mean(terms["reconstruction"] + terms["kl"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=MNIST_IMAGES.parent)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    train, held_out = load_mnist(args.mnist / MNIST_IMAGES.name)
    devices = keras.distribution.list_devices()
    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}, {devices}")
    results = {}
    for name, config in CONFIGS.items():
        keras.utils.set_random_seed(42)
        model = build_vae(
            train.shape[1:],
            seed=42,
            **{
                **training_recipe("base")["model"],
                "architecture": config["architecture"],
            },
        )
        model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=True)
        timer = EpochTimer()
        model.fit(
            train,
            epochs=args.epochs,
            batch_size=config["batch"],
            shuffle=True,
            callbacks=[timer],
            verbose=0,
        )
        steady = statistics.median(timer.seconds[1:])
        results[name] = {
            "first_epoch_s": round(timer.seconds[0], 3),
            "epoch_s": round(steady, 4),
            "images_per_s": round(TRAIN_IMAGES / steady),
            "held_out_negative_elbo": round(held_out_negative_elbo(model, held_out), 2),
        }
        print(name, json.dumps(results[name]), flush=True)


if __name__ == "__main__":
    main()
