"""The one type that carries validated images between nodes: an :class:`ImageStream`,
lazy, read chunk by chunk, so a node passes on millions of images in bounded memory.

Written here because tf.data's datasets are for the model's input, not a
NumPy-side stream with a length, labels and class names that a Kedro dataset
writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

Chunk = tuple[np.ndarray, np.ndarray | None]  # images and labels (or None)
Chunks = Iterator[Chunk]


@dataclass(frozen=True, kw_only=True)
class ImageStream:
    """Images and optional labels, read ``chunk_size`` at a time when iterated.

    ``read`` maps a chunk size to ``(images, labels)`` chunks (labels ``None``
    when unlabelled); ``select``, where set, takes some images more cheaply than
    filtering the chunks (a prepared source scales only the images taken).
    """

    read: Callable[[int], Chunks]
    num_examples: int
    image_shape: tuple[int, ...]
    has_labels: bool
    label_names: list[str] | None = None
    chunk_size: int = 8192
    select: Callable[[np.ndarray], ImageStream] | None = None

    @classmethod
    def of(
        cls,
        images: np.ndarray,
        labels: np.ndarray | None = None,
        *,
        label_names: list[str] | None = None,
        chunk_size: int = 8192,
    ) -> ImageStream:
        """A stream over arrays already in memory."""

        def read(size: int) -> Chunks:
            for start in range(0, len(images), size):
                stop = start + size
                yield images[start:stop], None if labels is None else labels[start:stop]

        return cls(
            read=read,
            num_examples=len(images),
            image_shape=tuple(images.shape[1:]),
            has_labels=labels is not None,
            label_names=label_names,
            chunk_size=chunk_size,
        )

    @staticmethod
    def concatenate(streams: Sequence[ImageStream]) -> ImageStream:
        """The streams one after the other (shape, labels and names of the first),
        read in the smallest of their chunk sizes."""

        def read(size: int) -> Chunks:
            for stream in streams:
                yield from stream.read(size)

        return replace(
            streams[0],
            select=None,
            read=read,
            num_examples=sum(stream.num_examples for stream in streams),
            chunk_size=min(stream.chunk_size for stream in streams),
        )

    def take(self, positions: np.ndarray) -> ImageStream:
        """The images at the sorted ``positions`` of this stream, still lazy."""
        positions = np.asarray(positions, dtype=np.int64)
        if self.select is not None:
            return replace(self.select(positions), chunk_size=self.chunk_size)

        def read(size: int) -> Chunks:
            offset = 0
            for images, labels in self.read(size):
                lo, hi = np.searchsorted(positions, [offset, offset + len(images)])
                local = positions[lo:hi] - offset
                if len(local):
                    yield images[local], None if labels is None else labels[local]
                offset += len(images)

        return replace(self, read=read, num_examples=len(positions), select=None)

    def chunked(self, chunk_size: int) -> ImageStream:
        """The same images, read ``chunk_size`` at a time."""
        return replace(self, chunk_size=chunk_size)

    def iter_chunks(self) -> Chunks:
        """Yield ``(images, labels)`` in order, at most ``chunk_size`` each."""
        return self.read(self.chunk_size)
