"""Where a training step's time goes, for the dense default, against the CPU's ceiling.

On statically binarized MNIST (../shared/data/binarized_mnist, 50,000 training
images; the MNIST test set, 10,000 images, when absent), with the model of
conf/base/parameters_training.yml (latent_dim 40 unless ``--latent-dim``), it
times one epoch (after a warm-up epoch) of:

- ``ceiling``: the model's own matrix products (forward and backward: three
  products per dense layer) in a compiled loop, which is what the hardware can
  do for this model; its GFLOP/s over the model's FLOPs per image give the
  images/s ceiling;
- ``step, 1 per call``: ``Model.fit`` on an in-memory tensor dataset, one step per
  call into TensorFlow (Keras's default);
- ``step, N per call``: the same with ``steps_per_execution`` (the project's
  setting), so the difference is per-step Python and dispatch overhead;
- ``+ op determinism``: the same under TensorFlow op determinism;
- ``+ XLA``: the same compiled with XLA;
- ``project node``: the training node itself (tf.data from the shards, validation
  each epoch, callbacks, checkpoints), counting the images it actually trains on,
  timed between the ends of its epochs in one run.

Each figure is the steady state: the median of 3 epochs after a first one.

    python benchmarks/throughput_benchmark.py [--batch-size 100] [--latent-dim 40]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from support import BINARIZED_MNIST_DIR as BINARIZED
from support import MNIST_IMAGES as MNIST
from support import images_per_epoch, read_idx, typed_params
from support import model_options as project_options


def load_images(path: Path) -> np.ndarray:
    return (read_idx(path)[..., np.newaxis] / 255.0).astype(np.float32)


def training_images() -> tuple[np.ndarray, np.ndarray, str]:
    if BINARIZED.is_dir():
        train = load_images(BINARIZED / "binarized-mnist-train-images-idx3-ubyte.gz")
        valid = load_images(BINARIZED / "binarized-mnist-valid-images-idx3-ubyte.gz")
        return train, valid, "binarized MNIST 50,000 train / 10,000 validation"
    images = load_images(MNIST)
    return images[:8000], images[8000:], "MNIST test set 8,000 / 2,000"


def model_options(latent_dim: int) -> dict:
    return project_options(latent_dim=latent_dim)


def dense_shapes(options: dict, pixels: int) -> list[tuple[int, int]]:
    """(inputs, outputs) of every dense layer of the dense VAE."""
    latent = options["latent_dim"]
    encoder = [pixels, *options["hidden_units"]]
    decoder = [latent, *(options["decoder_units"] or encoder[:0:-1]), pixels]
    shapes = list(zip(encoder[:-1], encoder[1:], strict=True))
    shapes += [(encoder[-1], 2 * latent)]  # z_mean and z_log_var
    return shapes + list(zip(decoder[:-1], decoder[1:], strict=True))


def ceiling(shapes: list[tuple[int, int]], batch: int, seconds: float = 5.0) -> float:
    """Images/s if training did nothing but the model's matrix products."""
    import tensorflow as tf

    weights = [tf.random.normal((i, o)) for i, o in shapes]
    inputs = [tf.random.normal((batch, i)) for i, _ in shapes]
    grads = [tf.random.normal((batch, o)) for _, o in shapes]

    @tf.function
    def step(count: tf.Tensor) -> tf.Tensor:
        total = tf.constant(0.0)
        for _ in tf.range(count):
            for x, w, g in zip(inputs, weights, grads, strict=True):
                y = x @ w  # forward
                dx = g @ tf.transpose(w)  # backward, to the inputs
                dw = tf.transpose(x) @ g  # backward, to the weights
                total += y[0, 0] + dx[0, 0] + dw[0, 0]
        return total

    step(tf.constant(2))
    count, start = 50, time.perf_counter()
    while True:
        step(tf.constant(count)).numpy()
        elapsed = time.perf_counter() - start
        if elapsed > seconds:
            break
        count *= 2
        start = time.perf_counter()
    flops = 2 * 3 * sum(i * o for i, o in shapes) * batch * count
    print(f"  matrix products: {flops / elapsed / 1e9:.0f} GFLOP/s", flush=True)
    return batch * count / elapsed


TIMED_EPOCHS = 3


def fit_epoch(
    options: dict,
    train: np.ndarray,
    valid: np.ndarray | None,
    batch: int,
    **compile_args,
) -> float:
    """Images/s of Model.fit over an in-memory dataset: the median of 3 epochs
    after a first one (tracing), with validation each epoch if ``valid``."""
    import keras
    import tensorflow as tf

    from accelerator_benchmark import EpochTimer
    from vae_pipeline.models import build_vae

    keras.utils.set_random_seed(0)
    model = build_vae(train.shape[1:], seed=0, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), **compile_args)
    data = tf.data.Dataset.from_tensor_slices(train).cache().batch(batch).prefetch(2)
    validation = None
    if valid is not None:
        validation = tf.data.Dataset.from_tensor_slices(valid).cache().batch(batch)
    timer = EpochTimer()
    model.fit(
        data,
        validation_data=validation,
        epochs=1 + TIMED_EPOCHS,
        callbacks=[timer],
        verbose=0,
    )
    return len(train) / float(np.median(timer.seconds[1:]))


def in_subprocess(name: str, batch: int, latent: int, **flags: str) -> float:
    """One measurement in a fresh process (op determinism is process-wide)."""
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--only",
            name,
            "--batch-size",
            str(batch),
            "--latent-dim",
            str(latent),
        ],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **flags},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


class EpochEnds(logging.Handler):
    """When each of the node's ``epoch N/M`` log lines was written: the node
    timed as it runs, with nothing added to it."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.times: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("epoch "):
            self.times.append(record.created)


def project_node(
    options: dict, train, valid, batch: int, precision: str = "float32"
) -> float:
    """Images/s of the training node in its steady state: the images of one epoch
    over the median time between the ends of consecutive epochs, after the first
    (start-up, tracing and the first, uncached read), in one training run of
    ``1 + TIMED_EPOCHS`` epochs; each epoch with its validation pass, callbacks
    and checkpoint."""
    from vae_pipeline.datasets import ShardedArrayDataset
    from vae_pipeline.pipelines.training.params import TrainingParams
    from vae_pipeline.train import train_vae

    epochs = 1 + TIMED_EPOCHS
    ends = EpochEnds()
    epoch_logger = logging.getLogger("vae_pipeline.models.callbacks")
    epoch_logger.setLevel(logging.INFO)
    epoch_logger.addHandler(ends)
    with tempfile.TemporaryDirectory() as tmp:
        splits = []
        for name, images in (("train", train), ("validation", valid)):
            dataset = ShardedArrayDataset(filepath=f"{tmp}/{name}")
            dataset.save(images)
            splits.append(dataset.load())
        params = typed_params(
            TrainingParams,
            "training",
            model=options,
            epochs=epochs,
            batch_size=batch,
            precision=precision,
            early_stopping_patience=epochs,
            checkpoint_dir=f"{tmp}/checkpoints",
        )
        try:
            train_vae(*splits, params)
        finally:
            epoch_logger.removeHandler(ends)
    if len(ends.times) != epochs:
        raise RuntimeError(f"expected {epochs} epoch lines, saw {len(ends.times)}")
    seconds = float(np.median(np.diff(ends.times)))
    return images_per_epoch(params, len(train)) / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--latent-dim", type=int, default=40)
    parser.add_argument(
        "--precision", default="float32", help="the node's training.precision"
    )
    parser.add_argument("--only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not (BINARIZED.is_dir() or MNIST.is_file()):
        print("skipped: neither ../shared/data/binarized_mnist nor mnist is there")
        return 0
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    train, valid, data = training_images()
    options = model_options(args.latent_dim)
    spe = 20
    if args.only == "node":  # one measurement, for throughput_ratio.py
        print(project_node(options, train, valid, args.batch_size, args.precision))
        return 0
    if args.only:
        if os.environ.get("DETERMINISM"):
            tf.config.experimental.enable_op_determinism()
        jit = os.environ.get("XLA") == "1"
        calls = int(os.environ.get("STEPS", "1"))
        validation = valid if os.environ.get("VALIDATION") else None
        print(
            fit_epoch(
                options,
                train,
                validation,
                args.batch_size,
                steps_per_execution=calls,
                jit_compile=jit,
            )
        )
        return 0
    shapes = dense_shapes(options, math.prod(train.shape[1:]))
    flops = 2 * 3 * sum(i * o for i, o in shapes)
    print(f"{data}; dense default, latent {args.latent_dim}, batch {args.batch_size}")
    print(f"  {flops / 1e6:.1f} MFLOP per training image (matrix products)")
    rows = {"ceiling (matrix products only)": ceiling(shapes, args.batch_size)}
    for label, flags in (
        ("step, 1 per call", {"STEPS": "1"}),
        (f"step, {spe} per call", {"STEPS": str(spe)}),
        (
            f"step, {spe} per call + op determinism",
            {"STEPS": str(spe), "DETERMINISM": "1"},
        ),
        (f"step, {spe} per call + XLA", {"STEPS": str(spe), "XLA": "1"}),
        (f"step, {spe} per call + validation", {"STEPS": str(spe), "VALIDATION": "1"}),
    ):
        rows[label] = in_subprocess(label, args.batch_size, args.latent_dim, **flags)
        print(f"  {label}: {rows[label]:.0f} images/s", flush=True)
    rows["project node (tf.data, validation, callbacks)"] = project_node(
        options, train, valid, args.batch_size
    )
    rows["project node, training.precision mixed_bfloat16"] = project_node(
        options, train, valid, args.batch_size, "mixed_bfloat16"
    )
    top = rows["ceiling (matrix products only)"]
    print(f"\n{'configuration':<48} {'images/s':>9} {'of ceiling':>10}")
    for label, speed in rows.items():
        print(f"{label:<48} {speed:>9.0f} {speed / top:>10.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
