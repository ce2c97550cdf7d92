"""Matplotlib figures of the latent space, reconstructions and samples.

Each function returns a titled, labelled ``Figure`` for kedro-datasets'
``MatplotlibDataset`` to save; nothing here reads or writes files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def _show(axis: plt.Axes, image: np.ndarray) -> None:
    if image.shape[-1] == 1:
        axis.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1)
    else:
        axis.imshow(np.clip(image, 0, 1))
    axis.set_xticks([])
    axis.set_yticks([])


TILE_GAP = 1  # white pixels between tiles, so that tiles never merge


def mosaic(
    images: np.ndarray, rows: int, cols: int, *, gap: int = TILE_GAP
) -> np.ndarray:
    """Tile up to ``rows * cols`` images (N, H, W, C) into one image, ``gap`` apart."""
    _, height, width, channels = images.shape
    step_y, step_x = height + gap, width + gap
    canvas = np.ones((rows * step_y - gap, cols * step_x - gap, channels), np.float32)
    for index, image in enumerate(images[: rows * cols]):
        row, col = divmod(index, cols)
        canvas[
            row * step_y : row * step_y + height, col * step_x : col * step_x + width
        ] = image
    return canvas


def image_grid(
    images: np.ndarray,
    *,
    rows: int,
    cols: int,
    title: str,
    xlabel: str | None = None,
    ylabel: str | None = None,
    xticks: Sequence[float] | None = None,
    yticks: Sequence[float] | None = None,
) -> Figure:
    """Images tiled into a grid, optionally with labelled axes (latent coordinates)."""
    figure, axis = plt.subplots(figsize=(0.6 * cols + 1.6, 0.6 * rows + 1.4))
    _show(axis, mosaic(images, rows, cols))
    height, width = images.shape[1:3]
    if xticks is not None:
        centres = np.arange(cols) * (width + TILE_GAP) + (width - 1) / 2
        axis.set_xticks(centres, [f"{t:.2f}" for t in xticks])
        axis.tick_params(axis="x", labelrotation=90, labelsize=7)
    if yticks is not None:
        centres = np.arange(rows) * (height + TILE_GAP) + (height - 1) / 2
        axis.set_yticks(centres, [f"{t:.2f}" for t in yticks])
        axis.tick_params(axis="y", labelsize=7)
    if xlabel:
        axis.set_xlabel(xlabel)
    if ylabel:
        axis.set_ylabel(ylabel)
    axis.set_title(title)
    figure.tight_layout()
    return figure


def latent_scatter(
    z: np.ndarray,
    labels: np.ndarray | None,
    *,
    dims: tuple[int, int],
    title: str,
    label_names: Sequence[str] | None = None,
    axis: plt.Axes | None = None,
) -> Figure:
    """Posterior means in two latent dimensions, coloured by label (named by
    ``label_names[label]`` when given)."""
    figure = axis.figure if axis is not None else plt.figure(figsize=(6.5, 5.5))
    axis = axis or figure.add_subplot()
    x, y = z[:, dims[0]], z[:, dims[1]]
    if labels is None:
        axis.scatter(x, y, s=6, alpha=0.6, color="tab:blue")
    else:
        classes = np.unique(labels)
        colours = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        for index, label in enumerate(classes):
            chosen = labels == label
            axis.scatter(
                x[chosen],
                y[chosen],
                s=6,
                alpha=0.7,
                color=colours(index % colours.N),
                label=label_names[label] if label_names else str(label),
            )
        axis.legend(
            title="class" if label_names else "label",
            markerscale=3,
            fontsize=7,
            loc="best",
        )
    axis.set_xlabel(f"z[{dims[0]}] (posterior mean)")
    axis.set_ylabel(f"z[{dims[1]}] (posterior mean)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    return figure


def latent_distributions(
    images: np.ndarray, z_mean: np.ndarray, z_log_var: np.ndarray, *, title: str
) -> Figure:
    """For each image, q(z|x) per dimension: mean, +-1 and +-2 standard deviations.

    The grey bands are the N(0, 1) prior's +-1 and +-2 standard deviations.
    """
    count, latent_dim = z_mean.shape
    std = np.exp(0.5 * z_log_var)
    figure, axes = plt.subplots(
        count,
        2,
        figsize=(8, 1.7 * count + 0.8),
        gridspec_kw={"width_ratios": [1, 5]},
        squeeze=False,
    )
    dims = np.arange(latent_dim)
    for row in range(count):
        _show(axes[row, 0], images[row])
        axes[row, 0].set_ylabel(f"test image {row}")
        axis = axes[row, 1]
        axis.axhspan(-2, 2, color="0.92", label="prior N(0,1) ±2σ")
        axis.axhspan(-1, 1, color="0.82", label="prior N(0,1) ±1σ")
        axis.vlines(
            dims,
            z_mean[row] - 2 * std[row],
            z_mean[row] + 2 * std[row],
            color="tab:blue",
            linewidth=1,
            label="posterior ±2σ",
        )
        axis.vlines(
            dims,
            z_mean[row] - std[row],
            z_mean[row] + std[row],
            color="tab:blue",
            linewidth=4,
            label="posterior ±1σ",
        )
        axis.plot(
            dims,
            z_mean[row],
            "o",
            color="tab:red",
            markersize=4,
            label="posterior mean",
        )
        axis.set_xticks(dims, [f"z[{d}]" for d in dims], fontsize=7)
        axis.set_xlim(-0.6, latent_dim - 0.4)
        axis.set_ylabel("value")
        if row == 0:
            axis.legend(
                fontsize=6, ncol=5, loc="upper center", bbox_to_anchor=(0.5, 1.45)
            )
    axes[-1, 1].set_xlabel("latent dimension")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def reconstructions(
    originals: np.ndarray, reconstructed: np.ndarray, *, title: str
) -> Figure:
    """Test images (top row) above their reconstructions (bottom row)."""
    count = len(originals)
    figure, axes = plt.subplots(
        2, count, figsize=(0.9 * count + 1.2, 2.6), squeeze=False
    )
    for column in range(count):
        _show(axes[0, column], originals[column])
        _show(axes[1, column], reconstructed[column])
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel("reconstruction")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def training_curves(history: Mapping[str, Sequence[float]], *, title: str) -> Figure:
    """Loss, reconstruction and KL per epoch, training and validation."""
    epochs = history["epoch"]
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for axis, name, label in zip(
        axes,
        ("loss", "reconstruction", "kl"),
        ("loss (nats/image)", "reconstruction -log p(x|z) (nats)", "KL(q||p) (nats)"),
        strict=True,
    ):
        axis.plot(epochs, history[name], label="training")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], label="validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def interpolation_strip(images: np.ndarray, *, title: str) -> Figure:
    """Decoded points along a line in latent space, left to right."""
    count = len(images)
    figure, axes = plt.subplots(
        1, count, figsize=(0.9 * count + 0.6, 1.9), squeeze=False
    )
    for column in range(count):
        _show(axes[0, column], images[column])
        axes[0, column].set_xlabel(
            f"{column / (count - 1):.2f}" if count > 1 else "0", fontsize=7
        )
    axes[0, 0].set_ylabel("start")
    axes[0, -1].yaxis.set_label_position("right")
    axes[0, -1].set_ylabel("end")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def latent_comparison(
    panels: Sequence[tuple[str, np.ndarray]],
    labels: np.ndarray | None,
    *,
    title: str,
    label_names: Sequence[str] | None = None,
) -> Figure:
    """Latent scatters of several models side by side (first two dimensions)."""
    figure, axes = plt.subplots(
        1, len(panels), figsize=(5.2 * len(panels), 4.8), squeeze=False
    )
    for axis, (name, z) in zip(axes[0], panels, strict=True):
        latent_scatter(
            z, labels, dims=(0, 1), title=name, label_names=label_names, axis=axis
        )
        axis.add_patch(plt.Circle((0, 0), 2, fill=False, linestyle="--", color="0.4"))
    figure.suptitle(title + " (dashed: 2σ circle of the N(0, I) prior)")
    figure.tight_layout()
    return figure


def score_histogram(
    negative_log_likelihoods: np.ndarray, *, threshold: float, bins: int, title: str
) -> Figure:
    """Histogram of per-image negative log-likelihoods with the outlier threshold."""
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.hist(negative_log_likelihoods, bins=bins, color="0.55")
    axis.axvline(threshold, color="tab:red", linestyle="--", label="outlier threshold")
    axis.set_xlabel("negative log-likelihood (nats per image)")
    axis.set_ylabel("images")
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title(title)
    figure.tight_layout()
    return figure


MAX_LABELS = 8  # batches named in a drift figure's legend


def drift_histograms(
    reference: np.ndarray,
    batches: Mapping[str, np.ndarray],
    *,
    threshold: float,
    title: str,
) -> Figure:
    """Per-image negative log-likelihoods of new batches over the training
    reference's (densities, so batches of any size compare), with the outlier
    threshold."""
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.set_title(title)
    values = np.concatenate([reference, *batches.values()])
    if not batches or not values.size:
        axis.text(0.5, 0.5, "no batch scored", ha="center", transform=axis.transAxes)
        return figure
    bins = np.linspace(values.min(), values.max(), 50)
    axis.hist(reference, bins=bins, density=True, color="0.7", label="training")
    for index, (name, nll) in enumerate(batches.items()):
        label = name if index < MAX_LABELS else "_"  # a legend that fits
        axis.hist(nll, bins=bins, density=True, histtype="step", lw=1.5, label=label)
    if len(batches) > MAX_LABELS:
        axis.plot([], [], " ", label=f"... {len(batches) - MAX_LABELS} more batches")
    axis.axvline(threshold, color="tab:red", linestyle="--", label="outlier threshold")
    axis.set_xlabel("negative log-likelihood (nats per image)")
    axis.set_ylabel("density")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    return figure
