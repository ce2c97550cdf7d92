"""Raw images to model input, the same way wherever they come from: one
validation pass (:func:`profile_source`) and scaling chunk by chunk
(:func:`split_stream`) under one :class:`Preparation`, the ``data_ingestion``
parameters that say how pixels are read."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from vae_pipeline.data.sources import ImageSource
from vae_pipeline.data.stream import Chunks, ImageStream
from vae_pipeline.errors import InputDataError, printable

logger = logging.getLogger(__name__)

_UINT8_MAX = 255
# Integer pixels whose maximum is below this, with no data_ingestion.pixel_max,
# are refused rather than divided by 255 (see _check_pixel_range).
_DARKEST_8_BIT_MAX = 128


@dataclass(frozen=True, kw_only=True)
class Preparation:
    """How raw pixels become model input (``IngestionParams.preparation()``)."""

    chunk_size: int
    pixel_max: int | None
    label_names: list[str] | None
    binarize: Literal["none", "threshold", "bernoulli"]
    binarize_threshold: float
    seed: int


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


def pixel_uniforms(
    seed: int, image_indices: np.ndarray, image_shape: tuple[int, ...]
) -> np.ndarray:
    """Float32 uniforms in [0, 1) for the images at ``image_indices`` of a source,
    fixed by (seed, image index, pixel) however data is chunked: SplitMix64 of the
    global pixel number, so static binarization draws the same in every pass."""
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
    """Raw pixels as float32 in [0, 1]: integers divided by ``pixel_max`` (255
    when None), booleans as 0 and 1, floats as they are."""
    if images.dtype.kind in "ui":
        return images.astype(np.float32) / np.float32(pixel_max or _UINT8_MAX)
    return images.astype(np.float32)


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
    integers = dtype.kind in "ui" and source.kind != "image_folder"
    if integers and pixel_max is None and high < _DARKEST_8_BIT_MAX:
        raise InputDataError(
            f"{source.description}: integer pixels reach only {high}, far below "
            f"255: set data_ingestion.pixel_max to their scale's maximum (e.g. "
            f"{high}), or to 255 if they are 8-bit images this dark"
        )


def profile_source(source: ImageSource, preparation: Preparation) -> SourceProfile:
    """Validate every image of the source in one streaming pass (the format,
    pixel types and ranges, NaN and inf, one shape, integer labels) and hash the
    raw content; an :class:`InputDataError` names the file and the problem."""
    digest = hashlib.sha256()
    count = 0
    image_shape: tuple[int, ...] | None = None
    raw_dtype: np.dtype | None = None
    label_chunks: list[np.ndarray] = []
    has_labels: bool | None = None
    highest = 0
    for images, chunk_labels in source.read(preparation.chunk_size):
        if image_shape is None:
            image_shape, raw_dtype = tuple(images.shape[1:]), images.dtype
            has_labels = chunk_labels is not None
        elif images.shape[1:] != image_shape or images.dtype != raw_dtype:
            raise InputDataError(
                f"{source.description}: images change from {image_shape} "
                f"{raw_dtype} to {images.shape[1:]} {images.dtype} at image {count}"
            )
        _check_pixels(images, source.description, preparation.pixel_max)
        if images.dtype.kind in "ui":
            highest = max(highest, int(images.max()))
        digest.update(np.ascontiguousarray(images).tobytes())
        if has_labels:
            if chunk_labels.dtype.kind not in "ui":
                raise InputDataError(
                    f"{source.description}: labels must be integers, "
                    f"got {chunk_labels.dtype}"
                )
            labels = chunk_labels.astype(np.int64)
            digest.update(labels.tobytes())
            label_chunks.append(labels)
        count += len(images)
    if count == 0 or image_shape is None:
        raise InputDataError(f"{source.description}: input holds no images")
    _check_pixel_range(source, raw_dtype, highest, preparation.pixel_max)
    labels = np.concatenate(label_chunks) if has_labels else None
    label_names = _label_names(source, labels, preparation.label_names)
    skipped = list(source.skipped)
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
        split_sizes=dict(source.split_sizes) or None,
    )


def check_one_shape(profiles: Mapping[str, SourceProfile]) -> None:
    """Raise :class:`InputDataError` naming each source's shape unless they are
    all one image shape."""
    if len({profile.image_shape for profile in profiles.values()}) > 1:
        sizes = ", ".join(
            f"{name} {'x'.join(map(str, profile.image_shape))}"
            for name, profile in profiles.items()
        )
        raise InputDataError(f"images of different shapes: {sizes}")


def _label_names(
    source: ImageSource, labels: np.ndarray | None, names: list[str] | None
) -> list[str] | None:
    """``data_ingestion.label_names`` if set, else the source's own class names."""
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


def split_stream(
    source: ImageSource,
    profile: SourceProfile,
    indices: np.ndarray,
    preparation: Preparation,
) -> ImageStream:
    """The scaled (and binarized, as configured) images of a validated source at
    the sorted ``indices``, as a lazy stream."""
    how = preparation
    raw = ImageStream(
        read=source.read,
        num_examples=profile.num_images,
        image_shape=profile.image_shape,
        has_labels=profile.labels is not None,
    ).take(indices)

    def read(chunk_size: int) -> Chunks:
        done = 0  # the k-th image taken is the source's image indices[k]
        for images, labels in raw.read(chunk_size):
            scaled = scale_images(images, how.pixel_max)
            if how.binarize == "threshold":
                scaled = (scaled > how.binarize_threshold).astype(np.float32)
            elif how.binarize == "bernoulli":
                taken = indices[done : done + len(images)]
                noise = pixel_uniforms(how.seed, taken, scaled.shape[1:])
                scaled = (noise < scaled).astype(np.float32)
            done += len(images)
            yield scaled, labels

    return replace(
        raw,
        read=read,
        label_names=profile.label_names,
        chunk_size=how.chunk_size,
        select=lambda positions: split_stream(
            source, profile, indices[positions], preparation
        ),
    )
