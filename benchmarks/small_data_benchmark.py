"""Small data, side by side: the training node against pythae on 3,000 images.

On a few thousand images an epoch is short, so what each epoch costs beyond its
steps (the validation pass, checkpoints, callbacks, a split repeated to
``min_steps_per_epoch``) decides the wall time. This trains both on the same
images, in turn, for each seed:

- project: the training node with ``conf/base/parameters_training.yml`` as
  shipped (latent_dim 2), early-stopping on the last ``--validation`` of the
  ``--train`` images;
- pythae: its default MLP VAE and ``TrainingPipeline`` (``pythae_baseline.py
  --grey-images``, in its own virtual environment), latent 2, Adam 1e-3, batch
  100, ``--pythae-epochs`` epochs, evaluating on the same validation images.

Data: the first ``--train`` images of ``--images`` (the MNIST test set,
../shared/data/mnist) train, its last ``--held-out`` are held out; grey levels
with binary cross-entropy. Both are scored on the held-out images with the same
estimator: E_q[-log p(x|z)] + KL(q || N(0, I)), 10 samples of z per image, in
nats. Wall time is the training call alone (each system's set-up included,
its imports not).

    python benchmarks/small_data_benchmark.py \\
        --pythae-python /tmp/pythae-venv/bin/python [--seeds 3] [--train 3000]
        [--validation 300] [--held-out 2000] [--pythae-epochs 30]
        [--precision mixed_bfloat16] [--training KEY=VALUE ...]

``--training`` overrides one more of the node's ``training`` parameters (the value
read as YAML), e.g. ``--training min_steps_per_epoch=20``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

from support import MNIST_IMAGES, read_idx, run_project_node, run_pythae

HERE = Path(__file__).resolve().parent


def pythae_run(python: str, args: argparse.Namespace, seed: int) -> tuple[float, float]:
    result = run_pythae(
        python,
        *("--grey-images", str(args.images), "--train", str(args.train)),
        *("--validation", str(args.validation), "--held-out", str(args.held_out)),
        *("--epochs", str(args.pythae_epochs), "--latent-dim", "2"),
        *("--seed", str(seed)),
    )
    return result["training_seconds"], result["held_out_negative_elbo"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pythae-python", required=True)
    parser.add_argument("--images", type=Path, default=MNIST_IMAGES)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train", type=int, default=3000)
    parser.add_argument("--validation", type=int, default=300)
    parser.add_argument("--held-out", type=int, default=2000)
    parser.add_argument("--pythae-epochs", type=int, default=30)
    parser.add_argument(
        "--precision", default="float32", help="the node's training.precision"
    )
    parser.add_argument(
        "--training",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one of the node's training parameters (YAML value)",
    )
    args = parser.parse_args()
    overrides = {"model": {"latent_dim": 2}, "precision": args.precision}
    for option in args.training:
        key, separator, value = option.partition("=")
        if not separator:
            parser.error(f"--training {option}: expected KEY=VALUE")
        overrides[key] = yaml.safe_load(value)
    if not args.images.is_file():
        print(f"skipped: {args.images} is absent")
        return 0
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    images = (read_idx(args.images)[..., np.newaxis] / 255.0).astype(np.float32)
    train, held_out = images[: args.train], images[-args.held_out :]
    rows: dict[str, list[tuple[float, float]]] = {"project": [], "pythae": []}
    with tempfile.TemporaryDirectory() as workdir:
        for seed in range(args.seeds):

            def project(seed: int = seed) -> tuple[float, float]:
                seconds, _, elbo, _ = run_project_node(
                    train,
                    held_out,
                    seed,
                    overrides,
                    Path(workdir) / f"seed-{seed}",
                    args.validation,
                )
                return seconds, elbo

            def pythae(seed: int = seed) -> tuple[float, float]:
                return pythae_run(args.pythae_python, args, seed)

            order = (project, pythae) if seed % 2 == 0 else (pythae, project)
            for run in order:
                seconds, elbo = run()
                rows[run.__name__].append((seconds, elbo))
                print(
                    f"  seed {seed} {run.__name__}: {seconds:.1f} s, held-out "
                    f"-ELBO {elbo:.2f}",
                    flush=True,
                )
    print(
        f"\n{args.train:,} training images ({args.validation} of them for "
        f"validation), {args.held_out:,} held out; medians of {args.seeds} seeds"
    )
    print(f"{'system':<10} {'training s':>10} {'held-out -ELBO':>15}")
    medians = {}
    for name, results in rows.items():
        medians[name] = [
            statistics.median(column) for column in zip(*results, strict=True)
        ]
        print(f"{name:<10} {medians[name][0]:>10.1f} {medians[name][1]:>15.2f}")
    (node_s, node_elbo), (pythae_s, pythae_elbo) = medians["project"], medians["pythae"]
    print(
        f"project / pythae wall time: {node_s / pythae_s:.2f}; -ELBO difference "
        f"{node_elbo - pythae_elbo:+.2f} nats"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
