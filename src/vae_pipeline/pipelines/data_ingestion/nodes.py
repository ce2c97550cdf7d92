"""Nodes of the data-ingestion pipeline.

The raw datasets load as lazy :class:`ImageSource` or file handles. The nodes pick
the configured one (the ``prepare_images`` pipeline then validates it in one
streaming pass and scales it lazily), plan a seeded (stratified) split, and take
each split's stream, which the sharded model-input datasets consume chunk by
chunk: no node ever holds the whole image set in memory.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from vae_pipeline.data import ImageStream, SourceProfile
from vae_pipeline.data.files import StoredFile
from vae_pipeline.data.idx import idx_source
from vae_pipeline.data.image_folder import image_folder_source
from vae_pipeline.data.npz import npz_source
from vae_pipeline.data.shards import ShardedArrays
from vae_pipeline.data.sources import ImageSource
from vae_pipeline.data.splits import split_indices
from vae_pipeline.data.versions import split_entry
from vae_pipeline.errors import InputDataError
from vae_pipeline.pipelines.data_ingestion.params import IngestionParams

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


def select_source(
    params: IngestionParams,
    *,
    digits: ImageSource,
    idx_images: StoredFile,
    idx_labels: StoredFile,
    idx_splits: ImageSource,
    npz: StoredFile,
    image_folder: Mapping[str, Callable[[], Any]],
    keras: ImageSource,
) -> dict[str, ImageSource]:
    """Pick the raw source named by ``data_ingestion.source``.

    Args:
        params: Ingestion parameters.
        digits: The embedded scikit-learn digits.
        idx_images: IDX images file handle.
        idx_labels: IDX labels file handle (used when the file exists).
        idx_splits: IDX files that come as train, validation and test splits,
            kept as given.
        npz: NPZ archive file handle.
        image_folder: Lazy partitions of the image folder.
        keras: ``keras.datasets`` source.

    Returns:
        ``{data_ingestion.source: the source}``, for the image-preparation
        pipeline; nothing has been read from it yet.
    """
    if params.source == "idx":
        source = idx_source(idx_images, idx_labels, labels_optional=True)
    elif params.source == "image_folder":
        folder = params.image_folder
        source = image_folder_source(
            image_folder,
            folder="raw_image_folder",
            image_size=tuple(folder.image_size) if folder.image_size else None,
            color_mode=folder.color_mode,
            skip_invalid=folder.skip_invalid,
        )
    elif params.source == "npz":
        source = npz_source(
            npz, images_key=params.npz.images, labels_key=params.npz.labels
        )
    else:
        given = {"digits": digits, "keras": keras, "idx_splits": idx_splits}
        source = given[params.source]
    return {params.source: source}


def _the_one(values: Mapping[str, Any]) -> Any:
    """The one value of ingestion's ``{source name: ...}`` mappings."""
    (value,) = values.values()
    return value


def split_dataset(
    profiles: dict[str, SourceProfile], params: IngestionParams
) -> dict[str, np.ndarray]:
    """Assign each image to train, validation or test, reproducibly by seed.

    With labels (and ``split.stratify``), each class is split in the same
    proportions. A source that comes split (``idx_splits``) keeps its splits:
    ``split``'s fractions and seed are not used.

    Args:
        profiles: The validated source's profile, by source name.
        params: Ingestion parameters (``split``: fractions, seed).

    Returns:
        Sorted source indices of each split.

    Raises:
        InputDataError: When a split would be empty.
    """
    profile: SourceProfile = _the_one(profiles)
    if profile.split_sizes is not None:
        logger.info(
            "Splits as %s gives them (data_ingestion.split is not used)",
            profile.kind,
        )
        bounds = np.cumsum([0, *(profile.split_sizes[name] for name in SPLITS)])
        return {
            name: np.arange(start, stop)
            for name, start, stop in zip(SPLITS, bounds[:-1], bounds[1:], strict=True)
        }
    split = params.split
    plan = split_indices(
        profile.num_images,
        split.fractions(),
        rng=np.random.default_rng(split.seed),
        labels=profile.labels if split.stratify else None,
    )
    for name, indices in plan.items():
        if len(indices) == 0:
            raise InputDataError(
                f"data_ingestion.split.{name}={getattr(split, name):g} leaves the "
                f"{name} split empty for {profile.num_images} images"
            )
    return plan


def build_model_input(
    images: dict[str, ImageStream],
    profiles: dict[str, SourceProfile],
    plan: dict[str, np.ndarray],
    params: IngestionParams,
) -> tuple[ImageStream, ImageStream, ImageStream, dict[str, Any]]:
    """Lazy scaled streams of the three splits and the ingestion summary.

    Args:
        images: The source's scaled images, by source name.
        profiles: Its validated profile, by source name.
        plan: Source indices of each split.
        params: Ingestion parameters.

    Returns:
        Train, validation and test streams (written shard by shard when saved)
        and a JSON-serialisable summary of the ingestion.
    """
    profile: SourceProfile = _the_one(profiles)
    streams = [_the_one(images).take(plan[name]) for name in SPLITS]
    summary: dict[str, Any] = {
        "source": profile.kind,
        "description": profile.description,
        "raw_sha256": profile.raw_sha256,
        "num_images": profile.num_images,
        "image_shape": list(profile.image_shape),
        "raw_dtype": profile.raw_dtype,
        "scaled_to": [0.0, 1.0],
        "binarize": params.binarize,
        "split_seed": params.split.seed,
        "counts": {name: len(plan[name]) for name in SPLITS},
        "labels": None,
        "skipped_files": profile.skipped,
    }
    if profile.labels is not None:
        values, counts = np.unique(profile.labels, return_counts=True)
        summary["labels"] = {
            "label_set": values.tolist(),
            "label_names": profile.label_names,
            "class_counts": dict(
                zip(map(str, values.tolist()), counts.tolist(), strict=True)
            ),
        }
    logger.info(
        "Ingesting %d images %s from %s: train %d, validation %d, test %d",
        profile.num_images,
        "x".join(map(str, profile.image_shape)),
        profile.description,
        *summary["counts"].values(),
    )
    train, validation, test = streams
    return train, validation, test, summary


def abandoned_data(model_input_versions: list[dict[str, Any]]) -> list[str]:
    """The uncommitted split versions whose writer died (a ``kill -9``, or a
    failure before the commit), to remove: nobody reads them, but they take
    space. A version whose writer is alive (a run in progress), or cannot be
    checked from here (another machine's), is left alone.

    Args:
        model_input_versions: Every uncommitted version of the splits (finished
            or cut short), with its writer and whether that process is alive.

    Returns:
        The paths to remove.
    """
    removed = []
    for entry in model_input_versions:
        if entry["writer_alive"] is False:
            logger.info(
                "Removing %s: written by process %s, which died before committing it",
                entry["path"],
                entry["writer"]["pid"],
            )
            removed.append(entry["path"])
    return removed


def commit_data_version(
    train_split: ShardedArrays,
    validation_split: ShardedArrays,
    test_split: ShardedArrays,
    summary: dict[str, Any],
) -> dict[str, Any]:
    """Commit the three saved splits and their summary as one data version.

    Until this record is saved (last), other runs keep reading the previous data
    version, so a run killed or failed while writing the splits changes nothing
    they see.

    Args:
        train_split: The saved training split.
        validation_split: The saved validation split.
        test_split: The saved test split.
        summary: The ingestion summary.

    Returns:
        The data version record: each split's version, size and content hash, the
        summary, and no merged incoming files yet.
    """
    splits = {
        "train": split_entry(train_split),
        "validation": split_entry(validation_split),
        "test": split_entry(test_split),
    }
    logger.info(
        "Data version %s committed: %s",
        train_split.version,
        ", ".join(f"{name} {entry['num_examples']}" for name, entry in splits.items()),
    )
    return {"parent": None, "splits": splits, "summary": summary, "incoming": {}}


def data_version_input(data_version: dict[str, Any]) -> dict[str, str]:
    """The committed data version as an MLflow dataset input.

    Args:
        data_version: The committed record.

    Returns:
        ``name`` (``model_input@<version>``) and ``digest``: the first 16 hex
        digits of a SHA-256 over the splits' content hashes, so the same images
        ingested twice have one digest.
    """
    splits = data_version["splits"]
    contents = "".join(
        f"{name}:{splits[name].get('content_sha256')};" for name in sorted(splits)
    )
    return {
        "name": f"model_input@{data_version['version']}",
        "digest": hashlib.sha256(contents.encode()).hexdigest()[:16],
    }
