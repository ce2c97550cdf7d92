"""The Kedro-free packages stay free of Kedro (docs/architecture.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

DATA_MODULES = [
    "file_sources",
    "idx",
    "image_folder",
    "keras_datasets",
    "npz",
    "shards",
    "splits",
    "versions",
]


@pytest.mark.parametrize(
    "modules",
    [
        ["vae_pipeline.data", *(f"vae_pipeline.data.{name}" for name in DATA_MODULES)],
        ["vae_pipeline.models", "vae_pipeline.serving"],
    ],
    ids=["data", "models-and-serving"],
)
def test_a_kedro_free_package_imports_no_kedro(modules):
    """A fresh interpreter, so nothing imported before counts."""
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'kedro', "
        "'kedro_datasets', 'kedro_mlflow'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout
