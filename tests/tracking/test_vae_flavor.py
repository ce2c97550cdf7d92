"""The VAE's MLflow model: keras flavor, signature, input example, pyfunc, the
served answers and their bad-request errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from mlflow.models import Model

from tests.conftest import model_options
from vae_pipeline import serving
from vae_pipeline.models import VAE, build_vae
from vae_pipeline.tracking import vae_flavor

IMAGE_SHAPE = (8, 8, 1)
LATENT_DIM = 3


@pytest.fixture(scope="module", params=[1, 2], ids=["one_layer", "two_layers"])
def vae(request: pytest.FixtureRequest) -> VAE:
    """Every test runs on a one- and a two-stochastic-layer VAE."""
    model = build_vae(
        IMAGE_SHAPE,
        seed=0,
        **model_options(
            latent_dim=LATENT_DIM, hidden_units=[16], stochastic_layers=request.param
        ),
    )
    model(np.zeros((1, *IMAGE_SHAPE), np.float32))
    return model


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).random((5, *IMAGE_SHAPE), dtype=np.float32)


TRAINING_IMAGES = 40


@pytest.fixture(scope="module")
def reference(vae: VAE) -> serving.LatentReference:
    """A reference of 40 training images: 0..39, their NLL spread 10..49."""
    training = np.random.default_rng(1).random((TRAINING_IMAGES, *IMAGE_SHAPE))
    return serving.LatentReference(
        latent_means=vae.encode(training.astype(np.float32))[0],
        image_ids=np.arange(TRAINING_IMAGES),
        data_version="2026-12-01T00.00.00.000Z",
        log_likelihoods=-np.arange(10.0, 50.0),
        iwae_samples=10,
        outlier_quantile=0.9,
    )


@pytest.fixture(scope="module")
def logged_uri(vae: VAE, images: np.ndarray, reference) -> str:
    with mlflow.start_run():
        info = vae_flavor.log_model(
            vae_flavor.ServableVAE(
                model=vae, input_example=images[:2], reference=reference
            ),
            name="model",
        )
    return info.model_uri


def test_logged_with_keras_flavor_signature_and_input_example(logged_uri, images):
    info = mlflow.models.get_model_info(logged_uri)
    assert "keras" in info.flavors
    assert info.flavors["python_function"]["loader_module"] == vae_flavor.__name__
    outputs = {spec["name"]: spec for spec in info.signature.outputs.to_dict()}
    assert outputs["z_mean"]["tensor-spec"]["shape"] == (-1, LATENT_DIM)
    assert outputs["reconstruction"]["tensor-spec"]["shape"] == (-1, *IMAGE_SHAPE)
    assert outputs["log_likelihood"]["tensor-spec"]["shape"] == (-1,)
    params = {spec["name"]: spec["default"] for spec in info.signature.params.to_dict()}
    assert params == {**serving.PARAMS, "outlier_quantile": 0.0}
    # The images are checked by the model (one short line), not by MLflow's schema.
    assert info.signature.inputs is None
    assert info.metadata["image_shape"] == list(IMAGE_SHAPE)
    local = mlflow.artifacts.download_artifacts(logged_uri)
    example = Model.load(local).load_input_example(local)
    np.testing.assert_allclose(example, images[:2], rtol=1e-6)


def test_the_model_carries_its_code_and_pins_but_not_the_project(logged_uri):
    local = Path(mlflow.artifacts.download_artifacts(logged_uri))
    assert (local / "code/vae_pipeline/tracking/vae_flavor.py").is_file()
    assert (local / "code/vae_pipeline/models/vae.py").is_file()
    assert (local / "code/vae_pipeline/serving/predictor.py").is_file()
    requirements = (local / "requirements.txt").read_text().split()
    pinned = {line.split("==")[0] for line in requirements if "==" in line}
    assert {"keras", "tensorflow", "numpy", "scikit-learn"} <= pinned
    assert not any(line.startswith("vae-pipeline") for line in requirements)


def test_keras_flavor_loads_the_same_vae(logged_uri, vae, images):
    loaded = mlflow.keras.load_model(logged_uri)
    assert type(loaded) is type(vae)
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
        [*vae_flavor.OUTPUT_NAMES, "outlier", "outlier_threshold"]
    )
    outputs = np.load(tmp_path / "out.npz")
    z_mean, z_log_var = (np.asarray(t) for t in vae.encoder(images))
    np.testing.assert_allclose(outputs["z_mean"], z_mean, atol=1e-5)
    np.testing.assert_allclose(outputs["z_log_var"], z_log_var, atol=1e-5)
    assert outputs["reconstruction"].shape == images.shape
    assert (
        0.0 <= outputs["reconstruction"].min() <= outputs["reconstruction"].max() <= 1
    )


@pytest.fixture(scope="module")
def served(logged_uri):
    return mlflow.pyfunc.load_model(logged_uri)


def test_served_answers_likelihood_outliers_neighbours_and_prior_samples(
    served, vae, images, reference
):
    outputs = served.predict(
        images, params={"iwae_samples": 50, "neighbors": 3, "prior_samples": 4}
    )
    np.testing.assert_allclose(
        outputs["log_likelihood"],
        vae.log_likelihood(images, num_samples=50, seed=0),
        rtol=1e-6,
    )
    threshold = np.quantile(np.arange(10.0, 50.0), 0.9)  # the version's quantile
    assert outputs["outlier_threshold"] == pytest.approx([threshold])
    np.testing.assert_array_equal(
        outputs["outlier"], -outputs["log_likelihood"] > threshold
    )
    distances = np.linalg.norm(
        reference.latent_means[None] - outputs["z_mean"][:, None], axis=-1
    )
    np.testing.assert_array_equal(
        outputs["neighbor_ids"], np.argsort(distances, axis=1)[:, :3]
    )
    assert outputs["prior_samples"].shape == (4, *IMAGE_SHAPE)
    stricter = served.predict(images, params={"outlier_quantile": 0.5})
    assert stricter["outlier_threshold"] == pytest.approx([np.median(range(10, 50))])


@pytest.mark.parametrize(
    ("data", "params", "message"),
    [
        (np.zeros((2, 4, 8, 1)), {}, r"images must have shape \(n, 8, 8, 1\), got"),
        (np.full((2, *IMAGE_SHAPE), np.nan), {}, "NaN or infinite"),
        (np.full((2, *IMAGE_SHAPE), 2.0), {}, r"pixel values must lie in \[0, 1\]"),
        (np.zeros((serving.MAX_IMAGES + 1, *IMAGE_SHAPE)), {}, "1 to 4096 images"),
        (np.zeros((2, *IMAGE_SHAPE)), {"iwae_samples": 0}, r"iwae_samples must lie"),
        (
            np.zeros((4000, *IMAGE_SHAPE)),
            {"iwae_samples": 1000},
            "images x params.iwae_samples must be at most",
        ),
        (np.zeros((2, *IMAGE_SHAPE)), {"neighbors": 101}, r"neighbors must lie"),
        (np.zeros((2, *IMAGE_SHAPE)), {"outlier_quantile": 1.5}, "outlier_quantile"),
    ],
)
def test_bad_requests_are_one_line_errors(served, data, params, message):
    with pytest.raises(MlflowException, match=message) as raised:
        served.predict(data.astype(np.float32), params=params)
    assert "\n" not in raised.value.message and len(raised.value.message) < 200
    assert raised.value.get_http_status_code() == 400
