"""Score image files with a served vae-pipeline model: PNGs in, MLflow's JSON out.

    python examples/score_image.py examples/digit.png --url http://127.0.0.1:5001

Each image is read with Pillow, converted to the model's colour mode, resized to
its image shape (``--shape``, the default run's 8x8x1 unless told) and scaled to
[0, 1], as the pipeline scales 8-bit images at ingestion. The answer is printed as
the server sends it: ``{"predictions": {"z_mean": [...], "log_likelihood": [...],
"outlier": [...], ...}}``, one entry per image in each list. Needs only NumPy and
Pillow (the standard library does the HTTP).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image


def image_shape(text: str) -> tuple[int, int, int]:
    """``HxWxC`` (C is 1 or 3)."""
    try:
        height, width, channels = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not HxWxC: {text!r}") from None
    if channels not in (1, 3) or height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"not HxWxC with C 1 or 3: {text!r}")
    return height, width, channels


def load_images(paths: list[Path], shape: tuple[int, int, int]) -> np.ndarray:
    """The images as the model takes them: ``(n, H, W, C)`` floats in [0, 1]."""
    height, width, channels = shape
    images = []
    for path in paths:
        with Image.open(path) as opened:
            converted = opened.convert("L" if channels == 1 else "RGB")
        resized = converted.resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(resized, dtype=np.float32) / 255
        images.append(pixels.reshape(height, width, channels))
    return np.stack(images)


def score(url: str, images: np.ndarray, params: dict) -> dict:
    """POST the images to ``<url>/invocations``; the server's JSON answer."""
    body = json.dumps({"inputs": images.tolist(), "params": params}).encode()
    request = urllib.request.Request(
        f"{url.rstrip('/')}/invocations",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.load(response)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", type=Path, help="image files (PNG, JPEG)")
    parser.add_argument("--url", default="http://127.0.0.1:5001", help="the server")
    parser.add_argument(
        "--shape", type=image_shape, default=(8, 8, 1), help="HxWxC, default 8x8x1"
    )
    parser.add_argument("--iwae-samples", type=int, default=100)
    parser.add_argument("--neighbors", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        images = load_images(args.images, args.shape)
    except OSError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    params = {"iwae_samples": args.iwae_samples, "neighbors": args.neighbors}
    try:
        answer = score(args.url, images, params)
    except urllib.error.HTTPError as error:  # 400: the server's one-line reason
        print(
            f"Error: {error.code} {error.read().decode(errors='replace')}",
            file=sys.stderr,
        )
        return 1
    except urllib.error.URLError as error:
        print(f"Error: {args.url}: {error.reason}", file=sys.stderr)
        return 1
    json.dump(answer, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
