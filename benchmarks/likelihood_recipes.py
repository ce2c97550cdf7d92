"""Test NLL of likelihood recipes, trained without Kedro on any Keras backend.

Trains the project's Keras VAE (``vae_pipeline.models.build_vae``) with the
``binarized_mnist`` environment's training recipe (``conf/base`` and
``conf/binarized_mnist`` parameters, read as YAML, with ``--params`` overrides in
``kedro run``'s syntax) on the published 50,000 / 10,000 splits, the way the
training node does (Adam with the cosine schedule, KL warm-up, early stopping on
the validation loss, 20 steps per execution), and scores all 10,000 test images
with K = 5000 (``VAE.log_likelihood``). The data is fed as NumPy arrays, so it runs
where TensorFlow is missing, e.g. JAX on a GPU host: there it tells, in minutes,
how many epochs a recipe needs before two CPU hours go into it through
``kedro run --env binarized_mnist --params ...``, which remains the measurement of
record (``likelihood_benchmark.py``).

    python benchmarks/likelihood_recipes.py --params training.model.stochastic_layers=2
    KERAS_BACKEND=jax python benchmarks/likelihood_recipes.py --data DIR --params ...

Prints one JSON line: the epochs trained, the median epoch, the training and
evaluation times, the test NLL and -ELBO in nats.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import keras
import numpy as np

from support import BINARIZED_MNIST_DIR, read_idx, training_recipe
from vae_pipeline.models import build_vae
from vae_pipeline.models.callbacks import KLWarmup

SPLITS = ("train", "valid", "test")


class Timing(keras.callbacks.Callback):
    """Epoch times, and a stop once ``deadline`` (perf_counter) has passed."""

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline
        self.seconds: list[float] = []
        self.cut = False

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)
        if time.perf_counter() > self.deadline:
            self.cut = self.model.stop_training = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=BINARIZED_MNIST_DIR)
    parser.add_argument("--params", default="")
    parser.add_argument(
        "--train-minutes", type=float, default=math.inf, help="stop training after"
    )
    parser.add_argument("--test-images", type=int, default=10_000)
    args = parser.parse_args()
    files = {
        split: args.data / f"binarized-mnist-{split}-images-idx3-ubyte.gz"
        for split in SPLITS
    }
    if not all(file.is_file() for file in files.values()):
        print(f"skipped: {args.data} does not hold binarized MNIST")
        return
    started = time.perf_counter()
    images = {
        split: read_idx(file)[..., np.newaxis].astype(np.float32) / 255.0
        for split, file in files.items()
    }
    params = training_recipe("base", "binarized_mnist", overrides=args.params)
    keras.utils.set_random_seed(params["seed"])
    model = build_vae(images["train"].shape[1:], seed=params["seed"], **params["model"])
    steps = math.ceil(len(images["train"]) / params["batch_size"])
    rate = params["learning_rate"]
    if params["learning_rate_schedule"] == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            rate,
            decay_steps=params["epochs"] * steps,
            alpha=params["final_learning_rate"] / rate,
        )
    model.compile(
        optimizer=keras.optimizers.Adam(rate),
        jit_compile=True,
        steps_per_execution=params["steps_per_execution"],
    )
    timing = Timing(started + 60 * args.train_minutes)
    stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss",
        patience=params["early_stopping_patience"],
        restore_best_weights=True,
        start_from_epoch=params["kl_warmup_epochs"],
    )
    model.fit(
        images["train"],
        validation_data=(images["valid"],),
        batch_size=params["batch_size"],
        epochs=params["epochs"],
        shuffle=True,
        callbacks=[KLWarmup(params["kl_warmup_epochs"]), stopping, timing],
        verbose=0,
    )
    trained = time.perf_counter()
    test = images["test"][: args.test_images]
    nll = -float(np.mean(model.log_likelihood(test, num_samples=5000, batch_size=500)))
    terms = model.elbo(test, num_samples=1)
    negative_elbo = float(np.mean(terms["reconstruction"] + terms["kl"]))
    result = {
        "params": args.params,
        "backend": keras.backend.backend(),
        "epochs_trained": len(timing.seconds),
        # The epoch whose weights early stopping restored (counted from 1); none
        # before its first epoch (the warm-up's end).
        "best_epoch": None if stopping.best is None else stopping.best_epoch + 1,
        "cut_by_deadline": timing.cut,
        "median_epoch_s": round(statistics.median(timing.seconds), 3),
        "train_s": round(trained - started, 1),
        "evaluation_s": round(time.perf_counter() - trained, 1),
        "best_val_loss": None if stopping.best is None else round(stopping.best, 3),
        "test_images": len(test),
        "test_nll": round(nll, 3),
        "test_negative_elbo": round(negative_elbo, 3),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
