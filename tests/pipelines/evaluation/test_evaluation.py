"""Evaluation, generation and the latent comparison, run end to end in memory."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.conftest import (
    base_parameters,
    build_catalog,
    copy_data_skeleton,
    run_in_memory,
    typed_params,
)
from vae_pipeline.errors import InputDataError
from vae_pipeline.models import HierarchicalVAE
from vae_pipeline.pipelines import (
    data_ingestion,
    evaluation,
    generation,
    latent_comparison,
    training,
)
from vae_pipeline.pipelines.data_ingestion.params import IngestionParams
from vae_pipeline.pipelines.evaluation.params import EvaluationParams
from vae_pipeline.pipelines.generation.params import GenerationParams
from vae_pipeline.pipelines.latent_comparison.nodes import variant_training_params
from vae_pipeline.pipelines.latent_comparison.pipeline import VARIANTS
from vae_pipeline.pipelines.training.params import TrainingParams

FIGURES = (
    "latent_scatter",
    "latent_distributions",
    "reconstructions",
    "training_curves",
    "prior_samples",
    "latent_manifold",
    "interpolation",
)


@pytest.fixture(scope="module", params=[1, 2], ids=["one_layer", "two_layers"])
def default_run(request, tmp_path_factory):
    """ingestion -> training -> evaluation -> generation on the digits, once with
    each number of stochastic layers."""
    module_data_root = copy_data_skeleton(tmp_path_factory.mktemp("project"))
    catalog = build_catalog(module_data_root)
    run_in_memory(
        data_ingestion.create_pipeline()
        + training.create_pipeline()
        + evaluation.create_pipeline()
        + generation.create_pipeline(),
        catalog,
        {
            "data_ingestion": typed_params(IngestionParams, "data_ingestion"),
            "training": typed_params(
                TrainingParams,
                "training",
                epochs=20,
                checkpoint_dir=str(module_data_root / "checkpoints"),
                model={"stochastic_layers": request.param},
            ),
            "evaluation": typed_params(EvaluationParams, "evaluation", iwae_samples=20),
            "generation": typed_params(
                GenerationParams, "generation", prior_grid=4, manifold_size=5
            ),
        },
    )
    return catalog, module_data_root


def test_metrics_are_complete_and_consistent(default_run):
    catalog, _ = default_run
    metrics = catalog.load("evaluation_metrics")
    latent_dim = metrics["latent_dim"]
    assert metrics["test_images"] == catalog.load("test_split").num_examples
    assert len(metrics["kl_per_dimension"]) == latent_dim
    if not isinstance(catalog.load("vae_model"), HierarchicalVAE):
        assert metrics["kl"] == pytest.approx(sum(metrics["kl_per_dimension"]))
    assert 0 <= metrics["active_units"] <= latent_dim
    # The importance-weighted bound is at least as tight as the ELBO; on the
    # digits' grey pixels both are Bernoulli cross-entropies, and named so.
    assert metrics["binary_pixels"] is False
    assert "iwae_negative_log_likelihood" not in metrics
    assert metrics["iwae_cross_entropy"] <= metrics["negative_elbo"] + 0.5
    assert 0 < metrics["reconstruction_mse"] < 0.2
    knn = metrics["knn_accuracy"]
    assert set(knn) >= {"latent_means", "pixels", "pca", "k"}
    assert knn["pixels"] > 0.9  # digits are easy in pixel space
    assert knn["latent_means"] > 0.5


def test_every_figure_is_a_png(default_run):
    _, data_root = default_run
    for name in FIGURES:
        files = list((data_root / "data/08_reporting").glob(f"{name}.png/*/{name}.png"))
        assert len(files) == 1, name
        with Image.open(files[0]) as image:
            assert image.format == "PNG" and min(image.size) > 150


def test_generated_images_are_saved(default_run):
    catalog, _ = default_run
    generated = catalog.load("generated_images")
    images = generated.images()
    assert images.shape == (16, 8, 8, 1)
    assert images.min() >= 0 and images.max() <= 1 and np.std(images) > 0


def test_latent_comparison_draws_three_panels(make_catalog, run_pipeline, data_root):
    catalog = make_catalog()
    outputs = run_pipeline(
        data_ingestion.create_pipeline() + latent_comparison.create_pipeline(),
        catalog,
        {
            "data_ingestion": typed_params(IngestionParams, "data_ingestion"),
            "training": typed_params(
                TrainingParams,
                "training",
                epochs=3,
                checkpoint_dir=str(data_root / "checkpoints"),
            ),
            **{
                f"latent_comparison.{name}": overrides
                for name, overrides in base_parameters()["latent_comparison"].items()
            },
        },
    )
    for name in VARIANTS:  # training.epochs reached every variant
        assert len(outputs[f"{name}.training_history"].load()["epoch"]) <= 3
    figure = list((data_root / "data/08_reporting").glob("latent_comparison.png/*/*"))
    assert len(figure) == 1
    with Image.open(figure[0]) as image:
        assert image.size[0] > 2 * image.size[1]  # three panels side by side


@pytest.mark.parametrize("variant", VARIANTS)
def test_latent_comparison_variants_override_the_training_parameters(variant):
    training_params = typed_params(
        TrainingParams, "training", epochs=7, learning_rate=0.01
    )
    overrides = base_parameters()["latent_comparison"][variant]
    merged = variant_training_params(training_params, overrides, variant=variant)
    assert merged.model.latent_dim == 2
    assert (merged.epochs, merged.learning_rate) == (7, 0.01)
    for name in training_params.model_dump():
        if name not in overrides:
            assert getattr(merged, name) == getattr(training_params, name), name
    for name, value in training_params.model.model_dump().items():
        if name not in overrides.get("model", {}):
            assert getattr(merged.model, name) == value, name


def test_a_bad_variant_override_names_the_parameter():
    with pytest.raises(InputDataError, match=r"latent_comparison\.kl_only\.epochs"):
        variant_training_params(
            typed_params(TrainingParams, "training"), {"epochs": -1}, variant="kl_only"
        )


def test_metrics_for_tracking_flattens_numbers_and_drops_the_rest():
    from vae_pipeline.pipelines.evaluation.nodes import metrics_for_tracking

    metrics = {
        "elbo": -90.5,
        "active_units": 7,
        "kl_per_dimension": [0.5, 1.5],
        "knn_accuracy": {"latent_means": 0.9, "pixels": float("nan")},
        "converged": True,
        "prior": "vamp",
    }
    assert metrics_for_tracking(metrics) == {
        "elbo": {"step": 0, "value": -90.5},
        "active_units": {"step": 0, "value": 7.0},
        "kl_per_dimension.0": {"step": 0, "value": 0.5},
        "kl_per_dimension.1": {"step": 0, "value": 1.5},
        "knn_accuracy.latent_means": {"step": 0, "value": 0.9},
        "converged": {"step": 0, "value": 1.0},
    }
