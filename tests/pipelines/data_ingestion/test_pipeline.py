"""The data-ingestion pipeline, run in memory over every source."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from kedro.io import DatasetError
from PIL import Image

from tests.conftest import (
    BINARIZED_MNIST_DIR,
    MNIST_IMAGES,
    MNIST_LABELS,
    PROJECT_ROOT,
    project_config,
    typed_params,
)
from vae_pipeline.data import shards
from vae_pipeline.data.idx import write_idx
from vae_pipeline.datasets import IDXSplitsDataset
from vae_pipeline.errors import InputDataError
from vae_pipeline.pipelines.data_ingestion import create_pipeline
from vae_pipeline.pipelines.data_ingestion.params import IngestionParams

RNG = np.random.default_rng(0)


def ingest(make_catalog, run_pipeline, *, catalog_overrides=None, **params):
    catalog = make_catalog(**(catalog_overrides or {}))
    run_pipeline(
        create_pipeline(),
        catalog,
        {"data_ingestion": typed_params(IngestionParams, "data_ingestion", **params)},
    )
    return {
        name: catalog.load(name)
        for name in (
            "train_split",
            "validation_split",
            "test_split",
            "ingestion_summary",
        )
    }


def all_images(outputs) -> tuple[np.ndarray, np.ndarray | None]:
    splits = [outputs[f"{name}_split"] for name in ("train", "validation", "test")]
    images = np.concatenate([s.images() for s in splits])
    labels = (
        None
        if not splits[0].has_labels
        else np.concatenate([s.labels() for s in splits])
    )
    return images, labels


def idx_catalog(images: Path, labels: Path | None = None) -> dict:
    overrides = {
        "raw_idx_images": {
            "type": "vae_pipeline.datasets.IDXDataset",
            "filepath": str(images),
        }
    }
    overrides["raw_idx_labels"] = {
        "type": "vae_pipeline.datasets.IDXDataset",
        "filepath": str(labels or images.with_name("absent-labels.gz")),
    }
    return overrides


def test_default_digits_source(make_catalog, run_pipeline, data_root):
    outputs = ingest(make_catalog, run_pipeline)
    summary = outputs["ingestion_summary"]
    assert summary["source"] == "digits"
    assert summary["num_images"] == 1797
    assert summary["image_shape"] == [8, 8, 1]
    assert sum(summary["counts"].values()) == 1797
    assert summary["labels"]["label_set"] == list(range(10))
    images, labels = all_images(outputs)
    assert images.dtype == np.float32 and images.shape == (1797, 8, 8, 1)
    assert images.min() == 0.0 and images.max() == 1.0
    assert sorted(np.bincount(labels).tolist()) == sorted(
        summary["labels"]["class_counts"].values()
    )
    versions = list((data_root / "data/05_model_input/train").iterdir())
    assert len(versions) == 1 and (versions[0] / "train" / "manifest.json").is_file()


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_idx_source_gzip_and_raw(make_catalog, run_pipeline, tmp_path, suffix):
    pixels = RNG.integers(0, 256, size=(60, 5, 4), dtype=np.uint8)
    labels = np.repeat(np.arange(3, dtype=np.uint8), 20)
    images_path = write_idx(tmp_path / f"images-idx3-ubyte{suffix}", pixels)
    labels_path = write_idx(tmp_path / f"labels-idx1-ubyte{suffix}", labels)
    outputs = ingest(
        make_catalog,
        run_pipeline,
        catalog_overrides=idx_catalog(images_path, labels_path),
        source="idx",
        chunk_size=7,
    )
    images, got_labels = all_images(outputs)
    order = np.lexsort((got_labels,))
    assert images.shape == (60, 5, 4, 1)
    # Every source image arrives exactly once, scaled, with its own label.
    expected = {
        (pixels[i] / 255).astype(np.float32).tobytes(): labels[i] for i in range(60)
    }
    for image, label in zip(images[order], got_labels[order], strict=True):
        assert expected[image[..., 0].tobytes()] == label
    assert outputs["ingestion_summary"]["counts"] == {
        "train": 48,
        "validation": 6,
        "test": 6,
    }


def test_idx_without_labels_is_unlabelled(make_catalog, run_pipeline, tmp_path):
    images_path = write_idx(
        tmp_path / "x.gz", RNG.integers(0, 256, (20, 3, 3), np.uint8)
    )
    outputs = ingest(
        make_catalog,
        run_pipeline,
        catalog_overrides=idx_catalog(images_path),
        source="idx",
    )
    assert outputs["ingestion_summary"]["labels"] is None
    assert not outputs["train_split"].has_labels


def test_npz_source_float_rgb(make_catalog, run_pipeline, tmp_path):
    x = RNG.random((30, 4, 4, 3)).astype(np.float64)
    y = np.arange(30) % 2
    np.savez_compressed(tmp_path / "data.npz", x=x, y=y)
    outputs = ingest(
        make_catalog,
        run_pipeline,
        catalog_overrides={
            "raw_npz": {
                "type": "vae_pipeline.datasets.NPZImagesDataset",
                "filepath": str(tmp_path / "data.npz"),
            }
        },
        source="npz",
        chunk_size=4,
    )
    images, _ = all_images(outputs)
    assert images.shape == (30, 4, 4, 3)
    np.testing.assert_allclose(
        np.sort(images.reshape(-1)), np.sort(x.astype(np.float32).reshape(-1))
    )


def npz_catalog(path: Path) -> dict:
    return {
        "raw_npz": {
            "type": "vae_pipeline.datasets.NPZImagesDataset",
            "filepath": str(path),
        }
    }


def test_label_names_name_the_classes_of_an_npz_source(
    make_catalog, run_pipeline, tmp_path
):
    np.savez(tmp_path / "data.npz", x=RNG.random((40, 4, 4)), y=np.arange(40) % 2)
    outputs = ingest(
        make_catalog,
        run_pipeline,
        catalog_overrides=npz_catalog(tmp_path / "data.npz"),
        source="npz",
        label_names=["even", "odd"],
    )
    for name in ("train_split", "validation_split", "test_split"):
        assert outputs[name].label_names == ["even", "odd"]
    assert outputs["ingestion_summary"]["labels"]["label_names"] == ["even", "odd"]


def test_npz_array_names_are_parameters(make_catalog, run_pipeline, tmp_path):
    images = RNG.random((40, 4, 4)).astype(np.float32)
    np.savez(tmp_path / "data.npz", images=images, classes=np.arange(40) % 2)
    outputs = ingest(
        make_catalog,
        run_pipeline,
        catalog_overrides=npz_catalog(tmp_path / "data.npz"),
        source="npz",
        npz={"images": "images", "labels": "classes"},
    )
    assert outputs["train_split"].has_labels
    assert outputs["ingestion_summary"]["num_images"] == 40


def test_integers_of_another_scale_are_refused_or_scaled_by_pixel_max(
    make_catalog, run_pipeline, tmp_path
):
    """0-16 digits divided by 255 would be near black: refused, unless
    ``pixel_max`` declares their scale."""
    x = RNG.integers(0, 17, size=(40, 4, 4), dtype=np.uint8)
    x[0, 0, 0] = 16
    np.savez(tmp_path / "data.npz", x=x)
    overrides = npz_catalog(tmp_path / "data.npz")
    with pytest.raises(
        InputDataError,
        match=r"data.npz: integer pixels reach only 16, far below 255: set "
        r"data_ingestion.pixel_max",
    ):
        ingest(make_catalog, run_pipeline, catalog_overrides=overrides, source="npz")
    outputs = ingest(
        make_catalog,
        run_pipeline,
        catalog_overrides=overrides,
        source="npz",
        pixel_max=16,
    )
    images, _ = all_images(outputs)
    assert images.max() == 1.0
    np.testing.assert_allclose(
        np.sort(images.reshape(-1)), np.sort(x.reshape(-1) / np.float32(16))
    )
    with pytest.raises(InputDataError, match=r"must lie in \[0, 8\] \(data_ingestion"):
        ingest(
            make_catalog,
            run_pipeline,
            catalog_overrides=overrides,
            source="npz",
            pixel_max=8,
        )


def _folder_catalog(folder: Path) -> dict:
    return {
        "raw_image_folder": {
            "type": "partitions.PartitionedDataset",
            "path": str(folder),
            "dataset": {"type": "pillow.ImageDataset"},
        }
    }


def test_image_folder_with_classes_resized_rgb(make_catalog, run_pipeline, tmp_path):
    folder = tmp_path / "images"
    for label in ("cat", "dog"):
        (folder / label).mkdir(parents=True)
        for index in range(10):
            size = (12 + index, 9)  # different sizes: resizing makes them equal
            Image.new("RGB", size, color=(index * 20, 0, 0)).save(
                folder / label / f"{index}.{'png' if index % 2 else 'jpg'}"
            )
    outputs = ingest(
        make_catalog,
        run_pipeline,
        catalog_overrides=_folder_catalog(folder),
        source="image_folder",
        image_folder={"image_size": [6, 8], "color_mode": "rgb"},
    )
    images, labels = all_images(outputs)
    assert images.shape == (20, 6, 8, 3)
    assert sorted(np.bincount(labels).tolist()) == [10, 10]
    assert outputs["ingestion_summary"]["labels"]["label_names"] == ["cat", "dog"]


def test_image_folder_skips_invalid_files_when_asked(
    make_catalog, run_pipeline, tmp_path, caplog
):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(12):
        Image.new("L", (5, 5), color=index).save(folder / f"{index}.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"\x89PNG garbage")
    outputs = ingest(
        make_catalog,
        run_pipeline,
        catalog_overrides=_folder_catalog(folder),
        source="image_folder",
        image_folder={"skip_invalid": True},
    )
    summary = outputs["ingestion_summary"]
    assert summary["num_images"] == 12
    assert sorted(summary["skipped_files"]) == ["broken.png", "notes.txt"]
    assert "Skipped 2 invalid files" in caplog.text


def keras_arrays(train: int, test: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """What ``keras.datasets.*.load_data`` returns, for ``train`` and ``test``
    images (the real files are not on this offline machine)."""
    return tuple(
        (
            RNG.integers(0, 256, (count, 28, 28), np.uint8),
            np.arange(count, dtype=np.uint8) % 10,
        )
        for count in (train, test)
    )


def test_keras_source_loads_through_keras_datasets(
    make_catalog, run_pipeline, monkeypatch
):
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: keras_arrays(40, 10))
    outputs = ingest(make_catalog, run_pipeline, source="keras")
    summary = outputs["ingestion_summary"]
    assert summary["num_images"] == 50 and summary["image_shape"] == [28, 28, 1]
    assert summary["description"] == "keras.datasets.mnist (all)"


def test_keras_fashion_mnist_split_and_load_failure(
    make_catalog, run_pipeline, monkeypatch
):
    fashion = keras.datasets.fashion_mnist
    monkeypatch.setattr(fashion, "load_data", lambda: keras_arrays(30, 20))
    entry = {
        "type": "vae_pipeline.datasets.KerasImagesDataset",
        "dataset": "fashion_mnist",
        "split": "test",
    }
    overrides = {"raw_keras": entry}
    outputs = ingest(
        make_catalog, run_pipeline, catalog_overrides=overrides, source="keras"
    )
    assert outputs["ingestion_summary"]["num_images"] == 20

    def offline() -> None:
        raise OSError("network unreachable")

    monkeypatch.setattr(fashion, "load_data", offline)
    with pytest.raises(
        InputDataError,
        match=r"^keras.datasets.fashion_mnist \(test\): keras.datasets could not "
        "load it.*network unreachable",
    ):
        ingest(make_catalog, run_pipeline, catalog_overrides=overrides, source="keras")


def test_split_is_deterministic_and_stratified(make_catalog, run_pipeline):
    first = ingest(make_catalog, run_pipeline, split={"seed": 7})
    second = ingest(make_catalog, run_pipeline, split={"seed": 7})
    other = ingest(make_catalog, run_pipeline, split={"seed": 8})
    for name in ("train_split", "test_split"):
        np.testing.assert_array_equal(first[name].images(), second[name].images())
    assert not np.array_equal(
        first["test_split"].images(), other["test_split"].images()
    )
    test_counts = np.bincount(first["test_split"].labels())
    assert test_counts.min() >= 17 and test_counts.max() <= 19  # ~10% of ~180 each


def test_chunk_size_does_not_change_the_output(make_catalog, run_pipeline):
    small = ingest(make_catalog, run_pipeline, chunk_size=13, binarize="bernoulli")
    large = ingest(make_catalog, run_pipeline, chunk_size=5000, binarize="bernoulli")
    for name in ("train_split", "validation_split", "test_split"):
        np.testing.assert_array_equal(small[name].images(), large[name].images())
    assert set(np.unique(small["train_split"].images())) == {0.0, 1.0}


def test_threshold_binarization(make_catalog, run_pipeline):
    outputs = ingest(
        make_catalog, run_pipeline, binarize="threshold", binarize_threshold=0.3
    )
    continuous = ingest(make_catalog, run_pipeline)
    np.testing.assert_array_equal(
        outputs["train_split"].images(),
        (continuous["train_split"].images() > 0.3).astype(np.float32),
    )


def test_fractions_below_one_subsample(make_catalog, run_pipeline):
    outputs = ingest(
        make_catalog, run_pipeline, split={"train": 0.5, "validation": 0.1, "test": 0.1}
    )
    assert sum(outputs["ingestion_summary"]["counts"].values()) == pytest.approx(
        0.7 * 1797, abs=10
    )


SPLIT_SIZES = {"train": 30, "validation": 10, "test": 5}


def idx_splits_catalog(root: Path, *, labelled: set[str]) -> tuple[dict, dict]:
    """Three IDX files of distinct images; labels for the splits in ``labelled``."""
    images, labels, pixels = {}, {}, {}
    for offset, (name, size) in enumerate(SPLIT_SIZES.items()):
        pixels[name] = RNG.integers(0, 256, size=(size, 4, 4), dtype=np.uint8)
        images[name] = str(write_idx(root / f"{name}-images.gz", pixels[name]))
        if name in labelled:
            values = (np.arange(size) + offset) % 3
            labels[name] = str(
                write_idx(root / f"{name}-labels.gz", values.astype("u1"))
            )
    entry = {"type": "vae_pipeline.datasets.IDXSplitsDataset", "images": images}
    return {"raw_idx_splits": {**entry, "labels": labels}}, pixels


def test_idx_splits_are_kept_as_given(make_catalog, run_pipeline, tmp_path):
    overrides, pixels = idx_splits_catalog(tmp_path, labelled=set(SPLIT_SIZES))
    outputs = {
        seed: ingest(
            make_catalog,
            run_pipeline,
            catalog_overrides=overrides,
            source="idx_splits",
            chunk_size=7,
            split={"seed": seed, "train": 0.5, "validation": 0.25, "test": 0.25},
        )
        for seed in (1, 2)
    }
    for result in outputs.values():  # fractions and seed are not used
        assert result["ingestion_summary"]["counts"] == SPLIT_SIZES
        assert result["ingestion_summary"]["source"] == "idx_splits"
        for name, expected in pixels.items():
            split = result[f"{name}_split"]
            np.testing.assert_array_equal(
                split.images()[..., 0], expected.astype(np.float32) / 255
            )
            assert split.has_labels


def test_idx_splits_labelled_in_part_are_refused_by_name(
    make_catalog, run_pipeline, tmp_path
):
    overrides, _ = idx_splits_catalog(tmp_path, labelled={"train"})
    with pytest.raises(InputDataError, match=r"validation-images\.gz.*the validation"):
        ingest(
            make_catalog,
            run_pipeline,
            catalog_overrides=overrides,
            source="idx_splits",
        )


def test_idx_splits_dataset_names_a_missing_split():
    with pytest.raises(DatasetError, match=r"images: .*missing \['test'\]"):
        IDXSplitsDataset(images={"train": "a.gz", "validation": "b.gz"})


@pytest.mark.skipif(
    not BINARIZED_MNIST_DIR.is_dir(), reason=f"{BINARIZED_MNIST_DIR} is absent"
)
def test_binarized_mnist_environment_ingests_the_published_splits(
    make_catalog, run_pipeline
):
    entry = project_config("catalog", env="binarized_mnist")["raw_idx_splits"]
    entry["images"] = {
        name: str(PROJECT_ROOT / path) for name, path in entry["images"].items()
    }
    outputs = ingest(
        make_catalog,
        run_pipeline,
        catalog_overrides={"raw_idx_splits": entry},
        **project_config("parameters", env="binarized_mnist")["data_ingestion"],
    )
    summary = outputs["ingestion_summary"]
    assert summary["counts"] == {"train": 50_000, "validation": 10_000, "test": 10_000}
    assert summary["labels"] is None
    test = outputs["test_split"].images()
    assert set(np.unique(test).tolist()) == {0.0, 1.0}  # as binarized, not again


@pytest.mark.skipif(not MNIST_IMAGES.is_file(), reason="../shared/data/mnist is absent")
def test_real_mnist_idx(make_catalog, run_pipeline, data_root):
    outputs = ingest(
        make_catalog,
        run_pipeline,
        catalog_overrides=idx_catalog(MNIST_IMAGES, MNIST_LABELS),
        source="idx",
    )
    summary = outputs["ingestion_summary"]
    assert summary["num_images"] == 10_000
    assert summary["image_shape"] == [28, 28, 1]
    assert summary["labels"]["label_set"] == list(range(10))
    assert summary["counts"] == {"train": 8000, "validation": 1000, "test": 1000}
    manifest = json.loads(
        next(
            (data_root / "data/05_model_input/train").glob("*/train/manifest.json")
        ).read_text()
    )
    assert manifest["num_examples"] == 8000
    assert [shard["count"] for shard in manifest["shards"]] == [8000]


def test_a_full_disk_while_writing_the_splits_changes_no_committed_version(
    make_catalog, run_pipeline, monkeypatch
):
    ingest(make_catalog, run_pipeline)
    committed = make_catalog().load("data_version")
    write = shards.write_shards

    def full_disk_on_validation(open_file, stream, **options):
        def opened(name):  # the validation split's files find the disk full
            file = open_file(name)
            if "/validation/" in file.path:
                file.close()
                raise OSError(errno.ENOSPC, "No space left on device")
            return file

        write(opened, stream, **options)

    monkeypatch.setattr(shards, "write_shards", full_disk_on_validation)
    with pytest.raises(DatasetError, match=r"No space left on device"):
        ingest(make_catalog, run_pipeline, split={"seed": 8})
    fresh = make_catalog()
    assert fresh.load("data_version") == committed
    for name in ("train", "validation", "test"):
        loaded = fresh.load(f"{name}_split")
        assert loaded.version == committed["splits"][name]["version"]
        assert loaded.content_sha256 == committed["splits"][name]["content_sha256"]
