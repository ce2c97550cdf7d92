"""Nodes of the data-ingestion pipeline.

The raw datasets load as lazy :class:`ImageSource` handles. The nodes pick the
configured one, validate it in one streaming pass, plan a seeded (stratified)
split, and return lazy per-split streams that the sharded model-input datasets
consume chunk by chunk: no node ever holds the whole image set in memory.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from vae_pipeline.datasets import ShardedArrays
from vae_pipeline.datasets.data_version import split_entry
from vae_pipeline.datasets.image_sources import (
    GivenSplitsSource,
    IDXFile,
    IDXSource,
    ImageFolderSource,
    ImageSource,
    NPZSource,
)
from vae_pipeline.errors import InputDataError, printable
from vae_pipeline.pipelines.data_ingestion.params import IngestionParams

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
_UINT8_MAX = 255
# Integer pixels whose maximum is below this, with no data_ingestion.pixel_max,
# are refused rather than divided by 255 (see _check_pixel_range).
_DARKEST_8_BIT_MAX = 128


@dataclass(frozen=True)
class SourceProfile:
    """What a full validation pass learned about a source."""

    kind: str
    description: str
    num_images: int
    image_shape: tuple[int, ...]
    raw_dtype: str
    labels: np.ndarray | None
    label_names: list[str] | None
    raw_sha256: str
    skipped: list[str]
    split_sizes: dict[str, int] | None = None  # a source that comes split


@dataclass(frozen=True)
class SplitStream:
    """Lazy, scaled images of one split, read from the source chunk by chunk."""

    source: ImageSource
    indices: np.ndarray
    image_shape: tuple[int, ...]
    has_labels: bool
    label_names: list[str] | None
    chunk_size: int
    binarize: str
    binarize_threshold: float
    seed: int
    pixel_max: int | None = None

    @property
    def num_examples(self) -> int:
        return len(self.indices)

    def iter_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        offset = 0
        for chunk in self.source.iter_chunks(self.chunk_size):
            count = len(chunk.images)
            lo, hi = np.searchsorted(self.indices, [offset, offset + count])
            selected = self.indices[lo:hi] - offset
            if len(selected) > 0:
                images = scale_images(chunk.images[selected], self.pixel_max)
                if self.binarize == "threshold":
                    images = (images > self.binarize_threshold).astype(np.float32)
                elif self.binarize == "bernoulli":
                    noise = pixel_uniforms(
                        self.seed, selected + offset, images.shape[1:]
                    )
                    images = (noise < images).astype(np.float32)
                labels = chunk.labels[selected] if self.has_labels else None
                yield images, labels
            offset += count


def pixel_uniforms(
    seed: int, image_indices: np.ndarray, image_shape: tuple[int, ...]
) -> np.ndarray:
    """Uniforms in [0, 1) fixed by (seed, image index, pixel), however data is chunked.

    A counter-based generator (SplitMix64 of the global pixel number), so static
    Bernoulli binarization gives every image the same draws in every pass.

    Args:
        seed: Split seed.
        image_indices: Source indices of the images.
        image_shape: Shape of one image.

    Returns:
        Array of shape ``(len(image_indices), *image_shape)``, float32.
    """
    pixels = int(np.prod(image_shape))
    counters = (
        image_indices.astype(np.uint64)[:, np.newaxis] * np.uint64(pixels)
        + np.arange(pixels, dtype=np.uint64)
    ) ^ np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
    z = counters + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    uniforms = (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)
    return uniforms.reshape((len(image_indices), *image_shape))


def scale_images(images: np.ndarray, pixel_max: int | None = None) -> np.ndarray:
    """Scale raw pixels to float32 in [0, 1]: integers divide by ``pixel_max``
    (255 when None), booleans are 0 and 1, floats stay.

    Args:
        images: Raw pixels: integers in [0, pixel_max], booleans, or floats in
            [0, 1].
        pixel_max: The integer pixels' maximum (``data_ingestion.pixel_max``).

    Returns:
        The pixels as float32 in [0, 1].
    """
    if images.dtype.kind in "ui":
        return images.astype(np.float32) / np.float32(pixel_max or _UINT8_MAX)
    return images.astype(np.float32)


def select_source(
    params: IngestionParams,
    *,
    digits: ImageSource,
    idx_images: IDXFile,
    idx_labels: IDXFile,
    idx_splits: GivenSplitsSource,
    npz: NPZSource,
    image_folder: Mapping[str, Callable[[], Any]],
    keras: ImageSource,
) -> ImageSource:
    """Pick the raw source named by ``data_ingestion.source``.

    Args:
        params: Ingestion parameters.
        digits: The embedded scikit-learn digits.
        idx_images: IDX images file handle.
        idx_labels: IDX labels file handle (used when the file exists).
        idx_splits: IDX files that come as train, validation and test splits,
            kept as given.
        npz: NPZ archive source.
        image_folder: Lazy partitions of the image folder.
        keras: ``keras.datasets`` source.

    Returns:
        The selected source; nothing has been read from it yet.
    """
    if params.source == "idx":
        return IDXSource(idx_images, idx_labels, labels_optional=True)
    if params.source == "idx_splits":
        return idx_splits
    if params.source == "image_folder":
        folder = params.image_folder
        return ImageFolderSource(
            image_folder,
            folder="raw_image_folder",
            image_size=tuple(folder.image_size) if folder.image_size else None,
            color_mode=folder.color_mode,
            skip_invalid=folder.skip_invalid,
        )
    if params.source == "npz":
        return NPZSource(
            npz.path, images_key=params.npz.images, labels_key=params.npz.labels
        )
    return {"digits": digits, "keras": keras}[params.source]


def _check_pixels(images: np.ndarray, description: str, pixel_max: int | None) -> None:
    kind = images.dtype.kind
    if kind in "ui":
        low, high = int(images.min()), int(images.max())
        if low < 0 or high > (pixel_max or _UINT8_MAX):
            declared = "" if pixel_max is None else " (data_ingestion.pixel_max)"
            raise InputDataError(
                f"{description}: integer pixel values must lie in "
                f"[0, {pixel_max or _UINT8_MAX}]{declared}, found [{low}, {high}]"
            )
    elif kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(images)))
        if bad:
            raise InputDataError(f"{description}: {bad} NaN or infinite pixel values")
        low, high = float(images.min()), float(images.max())
        if low < 0 or high > 1:
            raise InputDataError(
                f"{description}: float pixel values must lie in [0, 1], "
                f"found [{low:g}, {high:g}]"
            )
    elif kind != "b":
        raise InputDataError(f"{description}: unsupported pixel type {images.dtype}")


def _check_pixel_range(
    source: ImageSource, dtype: np.dtype, high: int, pixel_max: int | None
) -> None:
    """Integer arrays far below 255 are another scale (0-16 digits, 0/1 masks),
    not dark images: dividing them by 255 would squash them to near black. (Image
    files are 8-bit by their format: a dark one is dark.)"""
    if source.kind == "image_folder" or dtype.kind not in "ui":
        return
    description = source.description
    if pixel_max is None and high < _DARKEST_8_BIT_MAX:
        raise InputDataError(
            f"{description}: integer pixels reach only {high}, far below 255: set "
            f"data_ingestion.pixel_max to their scale's maximum (e.g. {high}), or "
            "to 255 if they are 8-bit images this dark"
        )


def profile_source(source: ImageSource, params: IngestionParams) -> SourceProfile:
    """Validate every image of the source in one streaming pass.

    Checks the format (through the source), pixel types and ranges, NaN and inf,
    consistent shapes and integer labels, and hashes the raw content.

    Args:
        source: The selected source.
        params: Ingestion parameters (for the chunk size).

    Returns:
        The source's profile: counts, shape, labels and raw checksum.

    Raises:
        InputDataError: With a one-line message naming the file and the problem.
    """
    digest = hashlib.sha256()
    count = 0
    image_shape: tuple[int, ...] | None = None
    raw_dtype: np.dtype | None = None
    label_chunks: list[np.ndarray] = []
    has_labels: bool | None = None
    highest = 0
    for chunk in source.iter_chunks(params.chunk_size):
        images = chunk.images
        if image_shape is None:
            image_shape, raw_dtype = tuple(images.shape[1:]), images.dtype
            has_labels = chunk.labels is not None
        elif images.shape[1:] != image_shape or images.dtype != raw_dtype:
            raise InputDataError(
                f"{source.description}: images change from {image_shape} "
                f"{raw_dtype} to {images.shape[1:]} {images.dtype} at image {count}"
            )
        _check_pixels(images, source.description, params.pixel_max)
        if images.dtype.kind in "ui":
            highest = max(highest, int(images.max()))
        digest.update(np.ascontiguousarray(images).tobytes())
        if has_labels:
            if chunk.labels.dtype.kind not in "ui":
                raise InputDataError(
                    f"{source.description}: labels must be integers, "
                    f"got {chunk.labels.dtype}"
                )
            labels = chunk.labels.astype(np.int64)
            digest.update(labels.tobytes())
            label_chunks.append(labels)
        count += len(images)
    if count == 0 or image_shape is None:
        raise InputDataError(f"{source.description}: input holds no images")
    _check_pixel_range(source, raw_dtype, highest, params.pixel_max)
    labels = np.concatenate(label_chunks) if has_labels else None
    label_names = _label_names(source, labels, params)
    skipped = source.skipped
    if skipped:
        logger.warning(
            "Skipped %d invalid files of %s: %s",
            len(skipped),
            source.description,
            ", ".join(map(printable, skipped)),
        )
    return SourceProfile(
        kind=source.kind,
        description=source.description,
        num_images=count,
        image_shape=image_shape,
        raw_dtype=str(raw_dtype),
        labels=labels,
        label_names=label_names,
        raw_sha256=digest.hexdigest(),
        skipped=skipped,
        split_sizes=source.split_sizes,
    )


def _label_names(
    source: ImageSource, labels: np.ndarray | None, params: IngestionParams
) -> list[str] | None:
    """``data_ingestion.label_names`` if set, else the source's own class names."""
    names = params.label_names
    if names is None:
        return source.label_names
    if labels is None:
        raise InputDataError(
            f"parameter data_ingestion.label_names: {source.description} has no "
            "labels to name"
        )
    if labels.min() < 0 or labels.max() >= len(names):
        raise InputDataError(
            f"parameter data_ingestion.label_names: {len(names)} names for labels "
            f"{labels.min()} to {labels.max()} of {source.description}"
        )
    return list(names)


def split_dataset(
    profile: SourceProfile, params: IngestionParams
) -> dict[str, np.ndarray]:
    """Assign each image to train, validation or test, reproducibly by seed.

    With labels (and ``split.stratify``), each class is split in the same
    proportions. A source that comes split (``idx_splits``) keeps its splits:
    ``split``'s fractions and seed are not used.

    Args:
        profile: The validated source profile.
        params: Ingestion parameters (``split``: fractions, seed).

    Returns:
        Sorted source indices of each split.

    Raises:
        InputDataError: When a split would be empty.
    """
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
    rng = np.random.default_rng(split.seed)
    if profile.labels is not None and split.stratify:
        # Each image's key is its random rank within its class, scaled to [0, 1):
        # cutting the images sorted by key at the split fractions gives every split
        # the same class proportions and exact overall sizes, even for small classes.
        keys = np.empty(profile.num_images)
        for label in np.unique(profile.labels):
            members = np.flatnonzero(profile.labels == label)
            ranks = np.arange(len(members)) + rng.random(len(members))
            keys[rng.permutation(members)] = ranks / len(members)
        order = np.argsort(keys, kind="stable")
    else:
        order = rng.permutation(profile.num_images)
    cuts = np.rint(np.cumsum(list(split.fractions().values())) * len(order)).astype(int)
    plan = {
        name: np.sort(order[start:stop])
        for name, start, stop in zip(SPLITS, [0, *cuts[:-1]], cuts, strict=True)
    }
    for name, indices in plan.items():
        if len(indices) == 0:
            raise InputDataError(
                f"data_ingestion.split.{name}={getattr(split, name):g} leaves the "
                f"{name} split empty for {profile.num_images} images"
            )
    return plan


def split_stream(
    source: ImageSource,
    profile: SourceProfile,
    indices: np.ndarray,
    params: IngestionParams,
) -> SplitStream:
    """The scaled (and binarized, as configured) images of a source at ``indices``.

    Args:
        source: A validated source.
        profile: Its profile.
        indices: Sorted source indices of the images to take.
        params: Ingestion parameters (chunk size, binarization, split seed).

    Returns:
        A lazy stream, read chunk by chunk when saved.
    """
    return SplitStream(
        source=source,
        indices=indices,
        image_shape=profile.image_shape,
        has_labels=profile.labels is not None,
        label_names=profile.label_names,
        chunk_size=params.chunk_size,
        binarize=params.binarize,
        binarize_threshold=params.binarize_threshold,
        seed=params.split.seed,
        pixel_max=params.pixel_max,
    )


def build_model_input(
    source: ImageSource,
    profile: SourceProfile,
    plan: dict[str, np.ndarray],
    params: IngestionParams,
) -> tuple[SplitStream, SplitStream, SplitStream, dict[str, Any]]:
    """Lazy scaled streams of the three splits and the ingestion summary.

    Args:
        source: The selected source.
        profile: Its validated profile.
        plan: Source indices of each split.
        params: Ingestion parameters.

    Returns:
        Train, validation and test streams (written shard by shard when saved)
        and a JSON-serialisable summary of the ingestion.
    """
    streams = [split_stream(source, profile, plan[name], params) for name in SPLITS]
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
