"""The drift gate: its decision time, false refusals and detections.

A champion is trained by the project's training node (shipped parameters) on the
first 5,000 images of the MNIST test set (../shared/data/mnist), the last 500 of
them validating; its training reference is what registration keeps (the
log-likelihoods of 1,000 random training images, K of ``registration``). Then
the gate node itself (``check_incoming_drift``, ``retraining.drift`` as shipped)
decides on batches of ``--batch-images`` images:

- held-out batches: ``--held-out-draws`` batches drawn at random (without
  replacement within a batch) from the other 5,000 MNIST images; every refusal
  is a false refusal (goal: at most 1 %);
- shifted batches of as many images, each kind drawn ``--shifted`` times:
  uniform noise, inverted held-out digits, the held-out digits turned 90
  degrees, and another dataset's images (scikit-learn's 8x8 digits scaled up to
  28x28); every admission is a missed detection (goal: at least 99 % detected);
- one batch of 10,000 images (the held-out images twice), for the decision time.

    python benchmarks/drift_benchmark.py [--batch-images 200] [--held-out-draws 200]
        [--shifted 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from support import MNIST_IMAGES, base_parameters, read_idx, run_project_node


def other_dataset(count: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits().images[rng.permutation(1797)[:count]]
    return (
        np.stack(
            [
                np.asarray(
                    Image.fromarray((image * 255 / 16).astype(np.uint8)).resize(
                        (28, 28)
                    )
                )
                for image in digits
            ]
        )[..., np.newaxis].astype(np.float32)
        / 255.0
    )


def train_champion(train: np.ndarray, held_out: np.ndarray):
    """The training node's model, with the reference registration would keep."""
    from vae_pipeline.serving import LatentReference
    from vae_pipeline.tracking.champion import Champion

    registration = base_parameters()["registration"]
    with tempfile.TemporaryDirectory() as workdir:
        seconds, _, elbo, model = run_project_node(
            train, held_out, 0, {"model": {"latent_dim": 8}}, Path(workdir), 500
        )
    print(f"champion: {seconds:.0f} s of training, held-out -ELBO {elbo:.1f} nats")
    rng = np.random.default_rng(0)
    sample = train[:4500][
        rng.permutation(4500)[: registration["reference_likelihood_images"]]
    ]
    k = registration["reference_iwae_samples"]
    reference = LatentReference(
        latent_means=np.zeros((0, 8), np.float32),
        image_ids=np.zeros(0, np.int64),
        data_version=None,
        log_likelihoods=model.log_likelihood(sample, num_samples=k, seed=0),
        iwae_samples=k,
        outlier_quantile=registration["outlier_quantile"],
    )
    champion = Champion("vae_pipeline", version="1", image_shape=(28, 28, 1))
    champion.__dict__["model"] = model
    champion.__dict__["reference"] = reference
    return champion


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-images", type=int, default=200)
    parser.add_argument("--held-out-draws", type=int, default=200)
    parser.add_argument("--shifted", type=int, default=10)
    args = parser.parse_args()
    if not MNIST_IMAGES.is_file():
        print(f"skipped: {MNIST_IMAGES} is absent")
        return 0
    import tensorflow as tf

    from vae_pipeline.data import ImageStream
    from vae_pipeline.pipelines.retraining.nodes import check_incoming_drift
    from vae_pipeline.pipelines.retraining.params import RetrainingParams

    tf.get_logger().setLevel("ERROR")
    images = (read_idx(MNIST_IMAGES)[..., np.newaxis] / 255.0).astype(np.float32)
    train, held_out = images[:5000], images[5000:]
    champion = train_champion(train, held_out)
    rng = np.random.default_rng(0)
    params = RetrainingParams.model_validate(base_parameters()["retraining"])

    def decide(batches: dict[str, np.ndarray]) -> dict[str, bool]:
        streams = {f"{name}/x.npz": ImageStream.of(b) for name, b in batches.items()}
        decision, _, _ = check_incoming_drift(champion, streams, {}, params)
        entries = decision["batches"].values()
        ks = [entry["ks_statistic"] for entry in entries]
        outliers = [entry["outlier_fraction"] for entry in entries]
        print(
            f"  KS distance {min(ks):.3f} to {max(ks):.3f}, outliers "
            f"{min(outliers):.1%} to {max(outliers):.1%}"
        )
        return {name: e["admitted"] for name, e in decision["batches"].items()}

    size = args.batch_images
    held = decide(
        {
            f"held-out-{draw}": held_out[rng.permutation(len(held_out))[:size]]
            for draw in range(args.held_out_draws)
        }
    )
    refused = sum(not admitted for admitted in held.values())
    print(
        f"held-out: {refused} of {len(held)} batches of {size} refused "
        f"({refused / len(held):.1%} false refusals; goal at most 1 %)"
    )
    shifted = {}
    for draw in range(args.shifted):
        chosen = held_out[rng.permutation(len(held_out))[:size]]
        shifted |= {
            f"noise-{draw}": rng.random((size, 28, 28, 1)).astype(np.float32),
            f"inverted-{draw}": 1.0 - chosen,
            f"rotated-{draw}": np.rot90(chosen, axes=(1, 2)).copy(),
            f"other-dataset-{draw}": other_dataset(size, rng),
        }
    verdicts = decide(shifted)
    for kind in ("noise", "inverted", "rotated", "other-dataset"):
        found = [v for n, v in verdicts.items() if n.rsplit("-", 1)[0] == kind]
        detected = sum(not admitted for admitted in found)
        print(f"{kind}: {detected} of {len(found)} batches detected")
    detected = sum(not admitted for admitted in verdicts.values())
    print(f"shifted: {detected / len(verdicts):.1%} detected (goal at least 99 %)")
    big = np.concatenate([held_out, held_out])
    start = time.perf_counter()
    decide({"ten-thousand": big})
    seconds = time.perf_counter() - start
    print(f"decision on one batch of {len(big):,} images: {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
