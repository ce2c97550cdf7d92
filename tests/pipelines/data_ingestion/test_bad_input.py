"""Each kind of bad input: a one-line error naming the culprit, nothing written."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from tests.conftest import kedro_cli, typed_params, written_files
from tests.pipelines.data_ingestion.test_pipeline import (
    _folder_catalog,
    idx_catalog,
    npz_catalog,
)
from vae_pipeline.data.idx import write_idx
from vae_pipeline.errors import InputDataError
from vae_pipeline.pipelines.data_ingestion import create_pipeline
from vae_pipeline.pipelines.data_ingestion.params import IngestionParams

RNG = np.random.default_rng(1)


def images(count: int = 40, size: int = 6) -> np.ndarray:
    return RNG.integers(0, 256, (count, size, size), dtype=np.uint8)


@pytest.fixture
def fails(make_catalog, run_pipeline, data_root):
    """Run ingestion expecting an InputDataError; check nothing was written."""

    def _fails(match: str, *, catalog_overrides=None, **params) -> str:
        catalog = make_catalog(**(catalog_overrides or {}))
        with pytest.raises(InputDataError, match=match) as error:
            run_pipeline(
                create_pipeline(),
                catalog,
                {
                    "data_ingestion": typed_params(
                        IngestionParams, "data_ingestion", **params
                    )
                },
            )
        message = str(error.value)
        assert "\n" not in message
        assert written_files(data_root / "data") == []
        return message

    return _fails


def gz_bytes(path: Path) -> bytes:
    return path.read_bytes()


def test_truncated_gzip(fails, tmp_path):
    path = write_idx(tmp_path / "images.gz", images())
    path.write_bytes(gz_bytes(path)[: len(gz_bytes(path)) // 2])
    fails(
        rf"{path}: corrupt or truncated gzip",
        catalog_overrides=idx_catalog(path),
        source="idx",
    )


def test_corrupt_gzip(fails, tmp_path):
    path = write_idx(tmp_path / "images.gz", images())
    data = bytearray(gz_bytes(path))
    data[len(data) // 2 : len(data) // 2 + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))
    fails(
        rf"{path}: corrupt or truncated gzip",
        catalog_overrides=idx_catalog(path),
        source="idx",
    )


def test_wrong_idx_magic(fails, tmp_path):
    labels_as_images = write_idx(tmp_path / "images.gz", np.arange(10, dtype=np.uint8))
    fails(
        rf"{labels_as_images}: wrong IDX magic number 2049 .*expected 2051",
        catalog_overrides=idx_catalog(labels_as_images),
        source="idx",
    )


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("delta", [-7, 5])
def test_idx_header_disagrees_with_file_size(fails, tmp_path, suffix, delta):
    raw = write_idx(tmp_path / "images", images(), compress=False).read_bytes()
    damaged = raw[:delta] if delta < 0 else raw + b"\0" * delta
    path = tmp_path / f"damaged{suffix}"
    path.write_bytes(gzip.compress(damaged) if suffix else damaged)
    fails(
        rf"{path}: IDX header declares 40x6x6 \(1440 bytes of data\) but the file "
        rf"holds {1440 + delta} bytes",
        catalog_overrides=idx_catalog(path),
        source="idx",
    )


def idx_header(*dims: int) -> bytes:
    """An IDX images header (unsigned bytes) declaring ``dims``."""
    return bytes([0, 0, 0x08, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def test_a_header_declaring_huge_images_is_refused_before_reading(fails, tmp_path):
    path = tmp_path / "huge.gz"  # 40 bytes of gzip that promise 18 EB
    path.write_bytes(gzip.compress(idx_header(4294967295, 65535, 65535)))
    fails(
        rf"{path}: declares images of 65535x65535 \(4294836225 bytes each\), more "
        r"than the 64 MiB an image may take",
        catalog_overrides=idx_catalog(path),
        source="idx",
    )


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_zero_size_idx_images(fails, tmp_path, suffix):
    path = tmp_path / f"flat{suffix}"
    header = idx_header(5, 0, 28)
    path.write_bytes(gzip.compress(header) if suffix else header)
    fails(
        rf"{path}: declares zero-size images \(0x28\)",
        catalog_overrides=idx_catalog(path),
        source="idx",
    )


def test_label_count_differs_from_image_count(fails, tmp_path):
    image_path = write_idx(tmp_path / "images.gz", images(40))
    label_path = write_idx(tmp_path / "labels.gz", np.zeros(39, dtype=np.uint8))
    fails(
        rf"{label_path}: 39 labels for 40 images",
        catalog_overrides=idx_catalog(image_path, label_path),
        source="idx",
    )


def test_empty_idx_file(fails, tmp_path):
    path = tmp_path / "images.gz"
    path.write_bytes(b"")
    fails(
        rf"{path}: empty or truncated IDX file",
        catalog_overrides=idx_catalog(path),
        source="idx",
    )


def test_idx_with_zero_images(fails, tmp_path):
    path = write_idx(tmp_path / "images.gz", np.zeros((0, 6, 6), dtype=np.uint8))
    fails(
        rf"{path}: IDX file holds no images",
        catalog_overrides=idx_catalog(path),
        source="idx",
    )


@pytest.fixture
def npz_fails(fails, tmp_path):
    """Save arrays as an NPZ source and expect ingestion to fail on it."""

    def _npz_fails(match: str, **arrays: np.ndarray) -> None:
        path = tmp_path / "data.npz"
        np.savez(path, **arrays)
        fails(
            match.format(path=path), catalog_overrides=npz_catalog(path), source="npz"
        )

    return _npz_fails


def test_empty_npz(npz_fails):
    npz_fails(r"{path}: 'x' holds no images", x=np.zeros((0, 4, 4), np.uint8))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_npz(npz_fails, bad):
    x = RNG.random((20, 4, 4))
    x[13, 2, 1] = bad
    npz_fails(r"{path}: 1 NaN or infinite pixel values", x=x)


def test_integer_pixels_outside_0_255(npz_fails):
    x = RNG.integers(0, 256, (20, 4, 4)).astype(np.int16)
    x[3, 0, 0] = 300
    npz_fails(
        r"{path}: integer pixel values must lie in \[0, 255\], found \[\d+, 300\]",
        x=x,
    )


def test_float_pixels_outside_0_1(npz_fails):
    x = RNG.random((20, 4, 4)).astype(np.float32)
    x[5, 1, 1] = 1.5
    npz_fails(
        r"{path}: float pixel values must lie in \[0, 1\], found \[.*, 1.5\]", x=x
    )


def test_npz_label_count_differs(npz_fails):
    npz_fails(
        r"{path}: 'y' has 19 labels for 20 images",
        x=images(20),
        y=np.zeros(19, dtype=np.int64),
    )


def npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    """An NPY header declaring ``shape``, for arrays whose data does not match it."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return header.getvalue()


def test_npz_labels_declaring_more_than_the_images_are_not_loaded(fails, tmp_path):
    """A 'y' header promising 5x10^8 labels (4 GB) is refused from its header."""
    path = tmp_path / "data.npz"
    np.savez(path, x=images(20), y=np.zeros(20, dtype=np.int64))
    with zipfile.ZipFile(path) as archive:
        x = archive.read("x.npy")
    header = npy_header("<i8", (500_000_000,))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", x)
        archive.writestr("y.npy", header + b"\0" * 160)
    fails(
        rf"{path}: 'y' has 500000000 labels for 20 images",
        catalog_overrides=npz_catalog(path),
        source="npz",
    )


def test_npz_array_holding_less_than_its_header_declares(fails, tmp_path):
    path = tmp_path / "data.npz"
    header = npy_header("|u1", (1000, 28, 28))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header + b"\0" * 784)
    fails(
        rf"{path}: array 'x' declares 784000 bytes of data but the archive holds 784",
        catalog_overrides=npz_catalog(path),
        source="npz",
    )


def test_zero_size_npz_images(npz_fails):
    npz_fails(r"{path} 'x': declares zero-size images \(0x4\)", x=np.zeros((5, 0, 4)))


def test_label_names_that_do_not_cover_the_labels(fails, tmp_path):
    np.savez(tmp_path / "data.npz", x=images(20), y=np.arange(20) % 3)
    fails(
        r"parameter data_ingestion.label_names: 2 names for labels 0 to 2 of ",
        catalog_overrides=npz_catalog(tmp_path / "data.npz"),
        source="npz",
        label_names=["a", "b"],
    )


def test_folder_with_no_images(fails, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / ".gitkeep").touch()
    fails(
        r"raw_image_folder: folder holds no images",
        catalog_overrides=_folder_catalog(folder),
        source="image_folder",
    )


def test_non_image_and_unreadable_files_are_listed(fails, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(5):
        Image.new("L", (4, 4), color=index).save(folder / f"{index}.png")
    (folder / "readme.txt").write_text("hello")
    fails(
        r"not image files: readme\.txt .*skip_invalid: true",
        catalog_overrides=_folder_catalog(folder),
        source="image_folder",
    )
    (folder / "readme.txt").unlink()
    (folder / "broken.png").write_bytes(b"not really a png")
    (folder / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    fails(
        r"unreadable images: broken\.png, cut\.jpg",
        catalog_overrides=_folder_catalog(folder),
        source="image_folder",
    )


def test_mixed_image_sizes_without_resizing(fails, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("L", (4, 4)).save(folder / "a.png")
    Image.new("L", (5, 4)).save(folder / "b.png")
    fails(
        r"raw_image_folder/b\.png: image is 5x4x1 but a\.png is 4x4x1; set "
        r"data_ingestion\.image_folder\.image_size",
        catalog_overrides=_folder_catalog(folder),
        source="image_folder",
    )


def test_split_that_leaves_a_split_empty(fails, tmp_path):
    path = write_idx(tmp_path / "images.gz", images(4))
    fails(
        r"data_ingestion\.split\.test=0\.1 leaves the test split empty for 4 images",
        catalog_overrides=idx_catalog(path),
        source="idx",
    )


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (
            {"split": {"train": 0.8, "validation": 0.2, "test": 0.1}},
            "must be at most 1",
        ),
        ({"split": {"test": 0.0}}, "greater than 0"),
        ({"source": "mnist_from_the_moon"}, "Input should be 'digits'"),
        ({"chunk_size": "4096"}, "valid integer"),
        ({"split": {"seed": 1.5}}, "valid integer"),
        ({"image_folder": {"image_size": [28]}}, "at least 2 items"),
        ({"binarize": True}, "Input should be 'none'"),
        ({"chunk_sise": 10}, "Extra inputs are not permitted"),
    ],
)
def test_bad_parameters_are_rejected(params, match):
    with pytest.raises(ValidationError, match=match):
        typed_params(IngestionParams, "data_ingestion", **params)


# ------------------------------------------------------------ through the CLI


def test_cli_unknown_source_is_one_line_and_non_zero(project_copy):
    result = kedro_cli(
        project_copy,
        "run",
        "--pipelines",
        "data_ingestion",
        "--params",
        "data_ingestion.source=parquet",
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: parameter data_ingestion.source: Input should be")
    assert "(got 'parquet')" in last
    # One Error line and nothing else: no framework report around it.
    assert result.stderr.strip().splitlines() == [last]
    assert not [
        line for line in result.stdout.splitlines() if " ERROR " in line or "  " in line
    ]
    assert written_files(project_copy / "data") == []


def test_cli_corrupt_idx_names_the_file_and_writes_nothing(project_copy):
    idx = project_copy / "data" / "01_raw" / "idx"
    path = write_idx(idx / "train-images-idx3-ubyte.gz", images())
    path.write_bytes(path.read_bytes()[:-20])
    result = kedro_cli(
        project_copy,
        "run",
        "--pipelines",
        "data_ingestion",
        "--params",
        "data_ingestion.source=idx",
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"Error: {path}: corrupt or truncated gzip data (Compressed file ended before "
        "the end-of-stream marker was reached)"
    )
    assert result.stderr.strip().splitlines() == [last]
    assert " ERROR " not in result.stdout and " WARNING " not in result.stdout
    assert [p.name for p in written_files(project_copy / "data")] == [path.name]
