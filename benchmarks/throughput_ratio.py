"""The training node's speed against pythae's: both run alternately, several times.

One run of each system, one after the other, is not a ratio to trust on a small
shared machine: its speed drifts by tens of percent between minutes (other
processes, thermal limits, memory bandwidth). This runs the two in turn, each
round in the other order (project, pythae; pythae, project; ...), each in a fresh
process, and reports every round's ratio, their median and their spread.

Both are timed the same way, on statically binarized MNIST (50,000 training and
10,000 validation images), at the same batch size and latent size 40: training
images per second in the steady state, that is one epoch's images over the
median time between the ends of consecutive epochs after the first, in one
training run of ``1 + TIMED_EPOCHS`` epochs, each system validating once per
epoch as it does by default. Start-up, tracing and the first read do not count
for either. (Until 2026-12-03 each system was timed as the difference of two
separate runs, of 1 and of 4 epochs: one slow short run inflated a round.)

- project: ``throughput_benchmark.py --only node``, the training node with the
  dense default of ``conf/base/parameters_training.yml`` (``--precision``: its
  ``training.precision``);
- pythae: ``pythae_baseline.py --steady-epochs``, its default MLP VAE and
  ``TrainingPipeline`` (torch, in its own virtual environment; see that file).

    python benchmarks/throughput_ratio.py --batch-size 256 --rounds 5 \\
        --pythae-python /tmp/pythae-venv/bin/python [--out ratio.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from support import BINARIZED_MNIST_DIR, run_pythae

HERE = Path(__file__).resolve().parent
TIMED_EPOCHS = 3  # as throughput_benchmark.py times the training node


def project_speed(batch: int, precision: str) -> float:
    result = subprocess.run(
        [
            sys.executable,
            str(HERE / "throughput_benchmark.py"),
            "--only",
            "node",
            "--batch-size",
            str(batch),
            "--precision",
            precision,
        ],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def pythae_speed(python: str, batch: int) -> float:
    result = run_pythae(
        python,
        *("--steady-epochs", str(TIMED_EPOCHS), "--batch-size", str(batch)),
    )
    return float(result["images_per_second"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pythae-python", required=True)
    parser.add_argument(
        "--precision",
        default="float32",
        choices=["float32", "mixed_bfloat16"],
        help="the node's training.precision",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if not BINARIZED_MNIST_DIR.is_dir():
        print(f"skipped: {BINARIZED_MNIST_DIR} is not there")
        return 0
    measure = {
        "project": lambda: project_speed(args.batch_size, args.precision),
        "pythae": lambda: pythae_speed(args.pythae_python, args.batch_size),
    }
    rounds = []
    print(
        f"batch {args.batch_size}, project in {args.precision}, {args.rounds} "
        "rounds (images/s, steady state)"
    )
    for index in range(args.rounds):
        order = ("project", "pythae") if index % 2 == 0 else ("pythae", "project")
        speeds = {name: measure[name]() for name in order}
        speeds["ratio"] = speeds["project"] / speeds["pythae"]
        rounds.append(speeds)
        print(
            f"  round {index + 1} ({order[0]} first): project "
            f"{speeds['project']:,.0f}, pythae {speeds['pythae']:,.0f}, "
            f"ratio {speeds['ratio']:.2f}",
            flush=True,
        )
    ratios = np.array([speeds["ratio"] for speeds in rounds])
    summary = {
        "batch_size": args.batch_size,
        "precision": args.precision,
        "rounds": rounds,
        "median_ratio": float(np.median(ratios)),
        "min_ratio": float(ratios.min()),
        "max_ratio": float(ratios.max()),
        "median_project": float(np.median([s["project"] for s in rounds])),
        "median_pythae": float(np.median([s["pythae"] for s in rounds])),
    }
    print(
        f"median ratio {summary['median_ratio']:.2f} (range "
        f"{summary['min_ratio']:.2f} to {summary['max_ratio']:.2f}); median "
        f"project {summary['median_project']:,.0f}, pythae "
        f"{summary['median_pythae']:,.0f} images/s"
    )
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
