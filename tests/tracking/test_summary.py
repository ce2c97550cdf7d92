"""The end-of-run summary's lines."""

from __future__ import annotations

import logging

from kedro.io import DataCatalog
from mlflow.entities.model_registry import ModelVersion, ModelVersionTag

from vae_pipeline.tracking.summary import (
    RunSummaryHooks,
    metric_lines,
)

METRICS = {
    "negative_elbo": 24.19,
    "reconstruction": 20.82,
    "kl": 3.37,
    "iwae_samples": 100,
    "iwae_negative_log_likelihood": 23.81,
    "active_units": 4,
    "active_unit_threshold": 0.01,
    "latent_dim": 3,
    "kl_per_dimension": [0.004, 0.98, 2.385],
}


def version(number: int, **tags: str) -> ModelVersion:
    tags_ = [ModelVersionTag(key, value) for key, value in tags.items()]
    return ModelVersion("vae_pipeline", str(number), 0, tags=tags_)


def test_metric_lines_put_the_kl_per_dimension_beside_active_units():
    elbo, units = metric_lines(METRICS)
    assert elbo == (
        "test NLL 23.81 nats/image (IWAE, K=100); -ELBO 24.19 (reconstruction "
        "20.82 + KL 3.37)"
    )
    assert units == (
        "active units 4/3 (Var_x E(z|x) > 0.01); KL per dimension (nats): "
        "0.00 0.98 2.38"
    )
    assert metric_lines({}) == []


def test_a_cross_entropy_is_not_called_a_likelihood():
    metrics = dict(METRICS)
    metrics["iwae_cross_entropy"] = metrics.pop("iwae_negative_log_likelihood")
    elbo, _ = metric_lines(metrics)
    assert elbo == (
        "test -ELBO 24.19 (reconstruction 20.82 + KL 3.37) nats/image; IWAE bound "
        "(K=100) 23.81: Bernoulli cross-entropies, not log-likelihoods (the pixels "
        "are not binary)"
    )
    assert "NLL" not in elbo


def hooks() -> RunSummaryHooks:
    summary = RunSummaryHooks()
    summary._model_name, summary._champion = "vae_pipeline", "champion"
    return summary


def test_a_new_version_that_is_champion_says_why():
    line = hooks()._version_line(version(1), version(1))
    assert (
        line == "registered 'vae_pipeline' version 1, now @champion: the first version"
    )
    promoted = version(3, **{"promotion.reason": "-ELBO 20.1 beats 21.0"})
    assert (
        hooks()
        ._version_line(promoted, promoted)
        .endswith("now @champion: -ELBO 20.1 beats 21.0")
    )


def test_a_version_that_is_not_champion_says_which_is_and_how_to_change_it():
    line = hooks()._version_line(version(2), version(1))
    assert line.startswith(
        "registered 'vae_pipeline' version 2; @champion stays version 1 "
        "(the first version): only the retraining pipeline promotes"
    )
    assert "set_registered_model_alias('vae_pipeline', 'champion', 2)" in line
    challenger = version(4, **{"promotion.reason": "-ELBO 22.0 does not beat 21.0"})
    assert hooks()._version_line(challenger, version(1)) == (
        "registered 'vae_pipeline' version 4, not promoted: -ELBO 22.0 does not "
        "beat 21.0; @champion stays version 1"
    )


def test_saved_paths_keep_their_protocol_and_local_ones_read_from_the_project(
    tmp_path, caplog
):
    """The summary finds a saved dataset's versioned path from its catalog entry
    (through a wrapper such as CachedDataset) and the run's save version."""
    local = tmp_path / "data" / "06_models" / "vae.keras"
    catalog = DataCatalog.from_config(
        {
            "data_version": {
                "type": "json.JSONDataset",
                "filepath": "s3://bucket/data/05_model_input/data_version.json",
                "versioned": True,
            },
            "vae_model": {
                "type": "CachedDataset",
                "versioned": True,
                "dataset": {"type": "pickle.PickleDataset", "filepath": str(local)},
            },
            "unversioned": {"type": "pickle.PickleDataset", "filepath": "a.pkl"},
        }
    )
    summary = hooks()
    summary._root = tmp_path  # noqa: SLF001 (set by after_context_created)
    summary.after_catalog_created(catalog, save_version="V1")
    for name in ("data_version", "vae_model", "unversioned"):
        summary.after_dataset_saved(name, {})
    with caplog.at_level(logging.INFO, logger="vae_pipeline.tracking.summary"):
        summary.after_pipeline_run()
    assert caplog.messages == [
        "Run summary:",
        "  model: data/06_models/vae.keras/V1/vae.keras",
        "  data version: V1 (s3://bucket/data/05_model_input)",
    ]
