"""Nodes of the scoring pipeline: new images scored by a registered model.

The images are every file under ``data/01_raw/scoring/``, validated and scaled as
ingestion does. The model is the registered version's served form (its pyfunc,
:class:`~vae_pipeline.serving.VAEPredictor`), so a batch scored here
gets exactly what ``mlflow models serve`` answers for it: the latent mean, the
importance-weighted negative log-likelihood and the outlier flag against a
quantile of the training images' (kept with the version).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vae_pipeline import plotting
from vae_pipeline.data import ImageStream
from vae_pipeline.data.file_sources import file_sources
from vae_pipeline.data.incoming import IncomingFile, is_hidden, partition_folder
from vae_pipeline.data.shards import ShardedArrays
from vae_pipeline.data.sources import ImageSource
from vae_pipeline.errors import InputDataError, printable
from vae_pipeline.pipelines.data_ingestion.params import IngestionParams
from vae_pipeline.pipelines.scoring.params import ScoringParams

logger = logging.getLogger(__name__)

SCORING = "data/01_raw/scoring"


def collect_scoring_sources(
    files: dict[str, Callable[[], IncomingFile]], ingestion: IngestionParams
) -> dict[str, ImageSource]:
    """The image sources among the files to score, one per file or image folder.

    Args:
        files: Lazy handles of every file under ``data/01_raw/scoring``, by path,
            from PartitionedDataset.
        ingestion: Ingestion parameters (image files' size and colour mode).

    Returns:
        Image sources by name, nothing read yet.

    Raises:
        InputDataError: No file to score, or a file that is not image data.
    """
    folder = partition_folder(files, default=SCORING)
    handles = {
        path: load() for path, load in sorted(files.items()) if not is_hidden(path)
    }
    if not handles:
        raise InputDataError(
            f"{folder}: no files to score (put NPZ, IDX or image files there)"
        )
    sources = file_sources(
        handles,
        where=folder,
        prefix=SCORING,
        image_folder=ingestion.image_folder,
        npz=ingestion.npz,
        numeric_labels=False,
    )
    logger.info("Scoring %s", ", ".join(map(printable, sources)))
    return sources


def _batches(
    images: dict[str, ImageStream], batch_size: int
) -> Iterator[tuple[str, int, np.ndarray]]:
    """(source, first index, images) batches of the prepared images."""
    for name, stream in images.items():
        start = 0
        for batch, _ in stream.chunked(batch_size).iter_chunks():
            yield name, start, batch
            start += len(batch)


def score_images(
    images: dict[str, ImageStream],
    scoring_model: Any,
    params: ScoringParams,
) -> pd.DataFrame:
    """Score every image with the registered model, ``batch_size`` at a time.

    Args:
        images: The images to score, scaled as at training (image preparation).
        scoring_model: The registered model as MLflow's pyfunc.
        params: Scoring parameters.

    Returns:
        One row per image: ``image_id`` (``<file>#<index>``), ``source``,
        ``index``, ``negative_log_likelihood`` (nats, IWAE with ``iwae_samples``),
        ``outlier`` and ``outlier_threshold``, and the latent mean
        ``z_mean_0`` ... ``z_mean_<d-1>``.

    Raises:
        InputDataError: Images the model does not take (their shape), or a
            model version that keeps no outlier reference.
    """
    request = {"iwae_samples": params.iwae_samples, "seed": params.seed}
    if params.outlier_quantile is not None:
        request["outlier_quantile"] = params.outlier_quantile
    frames = []
    for name, start, batch in _batches(images, params.batch_size):
        try:
            outputs = scoring_model.predict(batch, params=request)
        except Exception as error:  # MLflow's bad-request error names the problem
            raise InputDataError(f"{name}: {error}") from None
        if "outlier" not in outputs:
            raise InputDataError(
                "the scoring model keeps no training reference for outlier "
                "thresholds: register it again with this version of vae-pipeline"
            )
        count = len(batch)
        frame = pd.DataFrame(
            {
                "image_id": [f"{name}#{start + i}" for i in range(count)],
                "source": name,
                "index": np.arange(start, start + count),
                "negative_log_likelihood": -outputs["log_likelihood"],
                "outlier": outputs["outlier"],
                "outlier_threshold": float(outputs["outlier_threshold"][0]),
            }
        )
        means = pd.DataFrame(
            outputs["z_mean"],
            columns=[f"z_mean_{j}" for j in range(outputs["z_mean"].shape[1])],
        )
        frames.append(pd.concat([frame, means], axis=1))
    scores = pd.concat(frames, ignore_index=True)
    logger.info(
        "Scored %d images: mean NLL %.2f nats, %d outliers (%.1f%%) above %.2f",
        len(scores),
        scores["negative_log_likelihood"].mean(),
        int(scores["outlier"].sum()),
        100 * scores["outlier"].mean(),
        scores["outlier_threshold"].iloc[0],
    )
    return scores


def scoring_metrics(image_scores: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The scores' summary as kedro-mlflow metrics (``scoring.*``)."""
    nll = image_scores["negative_log_likelihood"]
    values = {
        "images": float(len(image_scores)),
        "outlier_rate": float(image_scores["outlier"].mean()),
        "outlier_threshold": float(image_scores["outlier_threshold"].iloc[0]),
        "mean_negative_log_likelihood": float(nll.mean()),
        "median_negative_log_likelihood": float(nll.median()),
    }
    return {name: {"step": 0, "value": value} for name, value in values.items()}


def plot_score_histogram(image_scores: pd.DataFrame, params: ScoringParams) -> Figure:
    """The scored images' negative log-likelihoods, the outlier threshold marked."""
    return plotting.score_histogram(
        image_scores["negative_log_likelihood"].to_numpy(),
        threshold=float(image_scores["outlier_threshold"].iloc[0]),
        bins=params.histogram_bins,
        title=(
            f"Negative log-likelihood of {len(image_scores)} scored images "
            f"({100 * image_scores['outlier'].mean():.1f}% outliers)"
        ),
    )


def find_similar_images(
    images: dict[str, ImageStream],
    scoring_model: Any,
    train_split: ShardedArrays,
    params: ScoringParams,
) -> tuple[dict[str, Any], Figure]:
    """The nearest training images in latent space of the first scored images.

    The model version keeps the latent means of its training images (their ids
    are indices in the training split, which retraining only appends to).

    Returns:
        ``{"queries": [image ids], "neighbor_ids": [[...]], "distances": [[...]]}``
        and a figure: each query beside its nearest training images.
    """
    name, _, first = next(_batches(images, params.similar_examples))
    queries = first[: params.similar_examples]
    outputs = scoring_model.predict(
        queries, params={"neighbors": params.similar_neighbors, "iwae_samples": 1}
    )
    ids = np.asarray(outputs["neighbor_ids"])
    if ids.max() >= len(train_split):
        raise InputDataError(
            f"train_split: {len(train_split)} images, but the model version's "
            f"nearest neighbours reach index {ids.max()}: it was trained on other data"
        )
    neighbors = train_split.select(np.unique(ids))[0]
    lookup = {index: row for row, index in enumerate(np.unique(ids))}
    rows = [
        np.concatenate([query[np.newaxis], neighbors[[lookup[i] for i in row]]])
        for query, row in zip(queries, ids, strict=True)
    ]
    result = {
        "queries": [f"{name}#{i}" for i in range(len(queries))],
        "neighbor_ids": ids.tolist(),
        "distances": np.asarray(outputs["neighbor_distances"]).tolist(),
    }
    figure = plotting.image_grid(
        np.concatenate(rows),
        rows=len(rows),
        cols=params.similar_neighbors + 1,
        title="Scored images (left) and their nearest training images in latent space",
    )
    return result, figure
