"""pythae's default MLP VAE on statically binarized MNIST, for likelihood_benchmark.py.

Runs in a separate virtual environment with torch and pythae (never the project's):

    python3 -m venv /tmp/pythae-venv
    /tmp/pythae-venv/bin/pip install torch==2.13.0 pythae==0.1.2
    /tmp/pythae-venv/bin/python benchmarks/pythae_baseline.py --seconds 600 --out r.json

pythae's ``VAE`` with its default networks (``Encoder_VAE_MLP``/``Decoder_AE_MLP``:
784-512-latent and latent-512-784, ReLU, sigmoid output), binary cross-entropy, and
its ``TrainingPipeline`` (Adam, ``--batch-size``, ``--learning-rate``, the best model on
the validation loss kept). Training runs for as many whole epochs as fit in
``--seconds`` (measured on a first epoch); ``--epochs`` fixes the count instead.
Test NLL is the importance-sampled estimate of pythae's ``VAE.get_nll`` (the
same log-weights: its sigmoid decoder's binary cross-entropy, clamped as torch
clamps it, log p(z) and log q(z|x)) with ``--iwae-samples`` samples, batched over
images instead of pythae's one image at a time (which would take about an hour
for K = 5000 on the 10,000 test images here), on ``--test-images`` images drawn at
random (the test file is sorted by class), or all of them with 0.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from support import BINARIZED_MNIST_DIR, read_idx


def load(split: str) -> np.ndarray:
    path = BINARIZED_MNIST_DIR / f"binarized-mnist-{split}-images-idx3-ubyte.gz"
    return (read_idx(path)[:, np.newaxis] / 255.0).astype(np.float32)


def iwae_log_likelihood(model, images, num_samples: int, seed: int) -> np.ndarray:
    """log p(x) per image, pythae's get_nll estimator over batches of images."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    estimates = []
    for start in range(0, len(images), 100):
        x = torch.from_numpy(images[start : start + 100])
        n = len(x)
        output = model.encoder(x)
        mu, log_var = output.embedding, output.log_covariance
        chunk = max(1, 20_000 // n)
        running = torch.full((n,), -torch.inf, dtype=torch.float64)
        for drawn in range(0, num_samples, chunk):
            k = min(chunk, num_samples - drawn)
            eps = torch.randn((k, *mu.shape), generator=generator)
            z = mu + torch.exp(0.5 * log_var) * eps
            probabilities = model.decoder(z.reshape(k * n, -1))["reconstruction"]
            log_px_z = -F.binary_cross_entropy(
                probabilities.reshape(k, n, -1),
                x.reshape(1, n, -1).expand(k, n, -1),
                reduction="none",
            ).sum(-1)
            log_pz = -0.5 * (z**2 + math.log(2 * math.pi)).sum(-1)
            log_qz = -0.5 * (eps**2 + log_var + math.log(2 * math.pi)).sum(-1)
            log_w = (log_px_z + log_pz - log_qz).double()
            running = torch.logaddexp(running, torch.logsumexp(log_w, dim=0))
        estimates.append((running - math.log(num_samples)).numpy())
    return np.concatenate(estimates)


def held_out_negative_elbo(model, images, num_samples: int, seed: int) -> float:
    """Mean over images of E_q[-log p(x|z)] + KL(q || N(0, I)) in nats, with
    ``num_samples`` draws of z per image: the estimator the project's
    ``VAE.elbo`` uses, on pythae's networks."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(images)
    output = model.encoder(x)
    mu, log_var = output.embedding, output.log_covariance
    eps = torch.randn((num_samples, *mu.shape), generator=generator)
    z = mu + torch.exp(0.5 * log_var) * eps
    probabilities = model.decoder(z.reshape(-1, mu.shape[-1]))["reconstruction"]
    reconstruction = F.binary_cross_entropy(
        probabilities.reshape(num_samples, len(x), -1),
        x.reshape(1, len(x), -1).expand(num_samples, -1, -1),
        reduction="none",
    ).sum(-1)
    kl = 0.5 * (log_var.exp() + mu**2 - 1 - log_var).sum(-1)
    return float((reconstruction.mean(0) + kl).mean())


def grey_images(path: Path, *, train: int, validation: int, held_out: int):
    """The first ``train`` images of an IDX file (the last ``validation`` of them
    for pythae's evaluation) and its last ``held_out``, grey levels in [0, 1]."""
    images = (read_idx(path)[:, np.newaxis] / 255.0).astype(np.float32)
    fit = images[: train - validation]
    return fit, images[train - validation : train], images[-held_out:]


def write(out: Path, result: dict) -> int:
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result), flush=True)
    return 0


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--epochs", type=int, default=0)
    parser.add_argument("--latent-dim", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--iwae-samples", type=int, default=5000)
    parser.add_argument("--test-images", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--grey-images",
        type=Path,
        help="an IDX file of grey images instead of binarized MNIST, split by "
        "--train, --validation and --held-out; reports the held-out -ELBO "
        "(small_data_benchmark.py)",
    )
    parser.add_argument("--train", type=int, default=3000)
    parser.add_argument("--validation", type=int, default=300)
    parser.add_argument("--held-out", type=int, default=2000)
    parser.add_argument(
        "--steady-epochs",
        type=int,
        default=0,
        help="only measure steady-state images/s: the median time between the "
        "ends of this many epochs after a first, in one run (throughput_ratio.py); "
        "no evaluation",
    )
    args = parser.parse_args()
    if not (args.seconds or args.epochs or args.steady_epochs):
        parser.error("give --seconds, --epochs or --steady-epochs")
    return args


def main() -> int:
    args = arguments()

    import torch
    from pythae.models import VAE, VAEConfig
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    torch.manual_seed(args.seed)
    if args.grey_images:
        train, valid, test = grey_images(
            args.grey_images,
            train=args.train,
            validation=args.validation,
            held_out=args.held_out,
        )
    else:
        train, valid, test = load("train"), load("valid"), load("test")
    config = VAEConfig(
        input_dim=(1, *train.shape[2:]),
        latent_dim=args.latent_dim,
        reconstruction_loss="bce",
    )

    class EpochEnds(TrainingCallback):
        """When each epoch (its evaluation pass included) ended."""

        def __init__(self) -> None:
            self.times: list[float] = []

        def on_epoch_end(self, training_config, **kwargs) -> None:
            self.times.append(time.perf_counter())

    def train_for(
        epochs: int, output: Path, callbacks: list | None = None
    ) -> tuple[VAE, float]:
        torch.manual_seed(args.seed)
        pipeline = TrainingPipeline(
            model=VAE(model_config=config),
            training_config=BaseTrainerConfig(
                output_dir=str(output),
                num_epochs=epochs,
                learning_rate=args.learning_rate,
                per_device_train_batch_size=args.batch_size,
                per_device_eval_batch_size=args.batch_size,
                steps_saving=None,
                no_cuda=True,
                seed=args.seed,
            ),
        )
        start = time.perf_counter()
        pipeline(train_data=train, eval_data=valid, callbacks=callbacks)
        return pipeline.trainer._best_model, time.perf_counter() - start

    output = args.out.parent / f"{args.out.stem}-pythae"
    if args.steady_epochs:  # as the training node is timed: beyond a first epoch
        ends = EpochEnds()
        train_for(1 + args.steady_epochs, output, [ends])
        seconds = float(np.median(np.diff(ends.times)))
        result = {
            "images_per_second": len(train) / seconds,
            "batch_size": args.batch_size,
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
        }
        return write(args.out, result)
    epochs = args.epochs
    if not epochs:
        _, one_epoch = train_for(1, output)
        epochs = max(1, math.floor(args.seconds / one_epoch))
        print(f"pythae: one epoch {one_epoch:.1f} s -> {epochs} epochs", flush=True)
    model, seconds = train_for(epochs, output)
    model.eval()
    if args.grey_images:
        with torch.no_grad():
            elbo = held_out_negative_elbo(model, test, 10, args.seed)
        result = {
            "epochs": epochs,
            "training_seconds": seconds,
            "held_out_negative_elbo": elbo,
            "torch": torch.__version__,
        }
        return write(args.out, result)
    rng = np.random.default_rng(args.seed)
    if args.test_images:
        test = test[rng.permutation(len(test))[: args.test_images]]
    start = time.perf_counter()
    with torch.no_grad():
        nll = -iwae_log_likelihood(model, test, args.iwae_samples, args.seed).mean()
    result = {
        "model": "pythae VAE, default MLP",
        "epochs": epochs,
        "training_seconds": seconds,
        "images_per_second": round(epochs * len(train) / seconds),
        "batch_size": args.batch_size,
        "test_nll": float(nll),
        "iwae_samples": args.iwae_samples,
        "test_images": len(test),
        "evaluation_seconds": time.perf_counter() - start,
        "torch": torch.__version__,
    }
    return write(args.out, result)


if __name__ == "__main__":
    sys.exit(main())
