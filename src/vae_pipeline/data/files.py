"""Files on any fsspec filesystem, reached as kedro-datasets reach them: a URL,
optional ``credentials`` and ``fs_args``. Written here because the readers pass
one file handle around, named by its URL in errors; the I/O is fsspec's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import IO, Any

import fsspec
from fsspec import AbstractFileSystem
from fsspec.core import split_protocol, url_to_fs


def filesystem(
    url: str,
    *,
    credentials: dict[str, Any] | None = None,
    fs_args: dict[str, Any] | None = None,
) -> tuple[AbstractFileSystem, str, str]:
    """The filesystem of a URL, its protocol and the path within it, as Kedro's
    datasets build them (credentials and ``fs_args`` go to the filesystem)."""
    protocol, path = split_protocol(url)
    protocol = protocol or "file"  # a relative path stays relative, as in Kedro
    options = {**(credentials or {}), **(fs_args or {})}
    if protocol == "file":
        options.setdefault("auto_mkdir", True)
    return fsspec.filesystem(protocol, **options), protocol, path


@dataclass(frozen=True)
class StoredFile:
    """One file on an fsspec filesystem; ``str()`` gives the URL it was named by."""

    url: str
    fs: AbstractFileSystem = field(repr=False, compare=False)
    path: str

    @classmethod
    def of(
        cls,
        location: str | os.PathLike[str] | StoredFile,
        *,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
    ) -> StoredFile:
        """The file at a path or URL, chained ones included (``simplecache::s3://``
        reads a remote file through a local copy); a ``StoredFile`` as it is."""
        if isinstance(location, StoredFile):
            return location
        url = os.fspath(location)
        fs, path = url_to_fs(url, **(credentials or {}), **(fs_args or {}))
        return cls(url=url, fs=fs, path=path)

    def __str__(self) -> str:
        return self.url

    def open(self, mode: str = "rb") -> IO[bytes]:
        return self.fs.open(self.path, mode)

    def is_file(self) -> bool:
        return bool(self.fs.isfile(self.path))

    def size(self) -> int:
        return int(self.fs.size(self.path))
