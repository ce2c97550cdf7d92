"""The VAE's MLflow model: keras flavor, signature, input example, pyfunc."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.models import Model

from tests.conftest import model_options
from vae_pipeline.models import VAE, build_vae
from vae_pipeline.tracking import vae_flavor

IMAGE_SHAPE = (8, 8, 1)
LATENT_DIM = 3


@pytest.fixture(scope="module")
def vae() -> VAE:
    model = build_vae(
        IMAGE_SHAPE,
        seed=0,
        **model_options(latent_dim=LATENT_DIM, hidden_units=[16]),
    )
    model(np.zeros((1, *IMAGE_SHAPE), np.float32))
    return model


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).random((5, *IMAGE_SHAPE), dtype=np.float32)


@pytest.fixture(scope="module")
def logged_uri(vae: VAE, images: np.ndarray) -> str:
    with mlflow.start_run():
        info = vae_flavor.log_model(
            vae_flavor.ServableVAE(model=vae, input_example=images[:2]), name="model"
        )
    return info.model_uri


def test_logged_with_keras_flavor_signature_and_input_example(logged_uri, images):
    info = mlflow.models.get_model_info(logged_uri)
    assert "keras" in info.flavors
    assert info.flavors["python_function"]["loader_module"] == vae_flavor.__name__
    inputs = info.signature.inputs.to_dict()
    outputs = {spec["name"]: spec for spec in info.signature.outputs.to_dict()}
    assert inputs[0]["name"] == "image"
    assert inputs[0]["tensor-spec"]["shape"] == (-1, *IMAGE_SHAPE)
    assert outputs["z_mean"]["tensor-spec"]["shape"] == (-1, LATENT_DIM)
    assert outputs["reconstruction"]["tensor-spec"]["shape"] == (-1, *IMAGE_SHAPE)
    local = mlflow.artifacts.download_artifacts(logged_uri)
    example = Model.load(local).load_input_example(local)
    np.testing.assert_allclose(example["image"], images[:2], rtol=1e-6)


def test_keras_flavor_loads_the_same_vae(logged_uri, vae, images):
    loaded = mlflow.keras.load_model(logged_uri)
    assert isinstance(loaded, VAE)
    for ours, theirs in zip(vae.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


PYFUNC_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import mlflow, numpy as np
    model = mlflow.pyfunc.load_model(sys.argv[1])
    outputs = model.predict(np.load(sys.argv[2]))
    np.savez(sys.argv[3], **outputs)
    print(json.dumps(sorted(outputs)))
    """
)


def test_pyfunc_predicts_means_log_variances_and_reconstructions_in_a_fresh_process(
    logged_uri, vae, images, tmp_path: Path
):
    np.save(tmp_path / "images.npy", images)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PYFUNC_SCRIPT,
            logged_uri,
            str(tmp_path / "images.npy"),
            str(tmp_path / "out.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == sorted(
        vae_flavor.OUTPUT_NAMES
    )
    outputs = np.load(tmp_path / "out.npz")
    z_mean, z_log_var = (np.asarray(t) for t in vae.encoder(images))
    np.testing.assert_allclose(outputs["z_mean"], z_mean, atol=1e-5)
    np.testing.assert_allclose(outputs["z_log_var"], z_log_var, atol=1e-5)
    assert outputs["reconstruction"].shape == images.shape
    assert (
        0.0 <= outputs["reconstruction"].min() <= outputs["reconstruction"].max() <= 1
    )
