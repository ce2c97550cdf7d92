"""Raw files on any fsspec filesystem, chained URLs included."""

from __future__ import annotations

import gzip

import fsspec
import numpy as np
import pytest

from vae_pipeline.data.files import StoredFile
from vae_pipeline.data.idx import idx_source, write_idx
from vae_pipeline.errors import InputDataError


def test_a_chained_url_reads_a_remote_file_through_a_local_copy(tmp_path):
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    local = write_idx(tmp_path / "images-idx3-ubyte.gz", images)
    remote = fsspec.filesystem("memory")
    remote.pipe_file("/raw/images-idx3-ubyte.gz", local.read_bytes())
    url = "simplecache::memory://raw/images-idx3-ubyte.gz"
    file = StoredFile.of(url, fs_args={"cache_storage": str(tmp_path / "cache")})
    ((read, labels),) = idx_source(file).read(8)
    np.testing.assert_array_equal(read[..., 0], images)
    assert labels is None
    assert len(list((tmp_path / "cache").iterdir())) == 1  # the local copy

    remote.pipe_file("/raw/images-idx3-ubyte.gz", gzip.compress(b"\0\0\x08\x09"))
    broken = StoredFile.of(url, fs_args={"cache_storage": str(tmp_path / "other")})
    with pytest.raises(InputDataError, match=f"^{url}: wrong IDX magic number"):
        list(idx_source(broken).read(8))
