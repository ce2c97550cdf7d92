"""The drift gate on its own: a champion trained on digits scores new batches.

Held-out digits pass; noise, inverted digits and another dataset's images are
refused with their figures; a batch admitted by hand passes unscored.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from tests.conftest import model_options, typed_params
from vae_pipeline.data.sources import array_source
from vae_pipeline.errors import BatchQuarantined
from vae_pipeline.models import build_vae
from vae_pipeline.pipelines.data_ingestion.params import IngestionParams
from vae_pipeline.pipelines.prepare_images.nodes import scale_sources, validate_sources
from vae_pipeline.pipelines.retraining.nodes import (
    admit_incoming,
    check_incoming_drift,
    quarantine_refused,
)
from vae_pipeline.pipelines.retraining.params import RetrainingParams
from vae_pipeline.serving import LatentReference
from vae_pipeline.tracking.champion import Champion

DIGITS = (load_digits().images / 16.0).astype(np.float32)[..., np.newaxis]
TRAIN, HELD_OUT = DIGITS[:1200], DIGITS[1200:]


@pytest.fixture(scope="module")
def champion() -> Champion:
    keras.utils.set_random_seed(0)
    model = build_vae((8, 8, 1), seed=0, **model_options(latent_dim=4))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(TRAIN, epochs=40, batch_size=100, verbose=0)
    sample = TRAIN[np.random.default_rng(0).permutation(len(TRAIN))[:500]]
    reference = LatentReference(
        latent_means=np.zeros((0, 4), np.float32),
        image_ids=np.zeros(0, np.int64),
        data_version=None,
        log_likelihoods=model.log_likelihood(sample, num_samples=20, seed=0),
        iwae_samples=20,
        outlier_quantile=0.99,
    )
    found = Champion("vae_pipeline", version="1", image_shape=(8, 8, 1))
    found.__dict__["model"] = model  # as loaded from the registry
    found.__dict__["reference"] = reference
    return found


def prepared(batches: dict[str, np.ndarray]):
    ingestion = typed_params(IngestionParams, "data_ingestion")
    sources = {
        f"{name}/images.npz": array_source(images, None, kind="npz", description=name)
        for name, images in batches.items()
    }
    profiles = validate_sources(sources, ingestion)
    return scale_sources(sources, profiles, ingestion), profiles


def shifted() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    other = rng.random((200, 8, 8, 1)).astype(np.float32) < 0.15  # sparse dots
    return {
        "noise": rng.random((200, 8, 8, 1)).astype(np.float32),
        "inverted": 1.0 - HELD_OUT[:200],
        "other-dataset": other.astype(np.float32),
    }


def test_held_out_digits_pass_shifted_batches_are_refused(champion):
    batches = {"held-out-1": HELD_OUT[:200], "held-out-2": HELD_OUT[200:400]}
    images, profiles = prepared(batches | shifted())
    params = typed_params(RetrainingParams, "retraining")
    decision, metrics, figure = check_incoming_drift(champion, images, {}, params)
    verdicts = {name: entry["admitted"] for name, entry in decision["batches"].items()}
    assert verdicts == {
        "held-out-1": True,
        "held-out-2": True,
        "inverted": False,
        "noise": False,
        "other-dataset": False,
    }
    for name in ("noise", "inverted", "other-dataset"):
        entry = decision["batches"][name]
        assert entry["ks_statistic"] > params.drift.max_ks_statistic
        assert "Kolmogorov-Smirnov" in entry["reason"]
    assert set(metrics) >= {"noise.ks_statistic", "held-out-1.outlier_fraction"}
    assert len(figure.axes[0].patches) > 0
    refused = quarantine_refused(decision)
    assert sorted(refused) == ["inverted", "noise", "other-dataset"]
    where = {name: f"data/01_raw/quarantine/{name}" for name in refused}
    with pytest.raises(BatchQuarantined) as raised:
        admit_incoming(decision, where, images, profiles)
    message = str(raised.value)
    assert "\n" not in message
    assert "noise (moved to data/01_raw/quarantine/noise)" in message
    assert "retraining.drift.admit=[inverted,noise,other-dataset]" in message


def test_a_batch_admitted_by_hand_passes_unscored(champion):
    images, profiles = prepared({"noise": shifted()["noise"]})
    params = typed_params(RetrainingParams, "retraining", drift={"admit": ["noise"]})
    decision, metrics, _ = check_incoming_drift(champion, images, {}, params)
    assert decision["batches"]["noise"] == {
        "admitted": True,
        "reason": "admitted by hand",
    }
    assert metrics == {}
    assert quarantine_refused(decision) == {}
    assert admit_incoming(decision, {}, images, profiles) == (images, profiles)


def test_without_a_champion_every_batch_passes():
    images, _ = prepared({"noise": shifted()["noise"]})
    params = typed_params(RetrainingParams, "retraining")
    decision, _, _ = check_incoming_drift(Champion("vae_pipeline"), images, {}, params)
    assert decision["batches"]["noise"]["admitted"] is True


@pytest.mark.parametrize("admit", [[], ["broken"]])
def test_a_batch_that_cannot_be_read_is_refused_even_without_a_champion(admit):
    images, profiles = prepared({"digits": HELD_OUT[:100]})
    params = typed_params(RetrainingParams, "retraining", drift={"admit": admit})
    reason = "data/01_raw/incoming/broken/x.npz: not a readable NPZ archive"
    decision, _, _ = check_incoming_drift(
        Champion("vae_pipeline"), images, {"broken": reason}, params
    )
    assert decision["batches"]["broken"] == {
        "admitted": False,
        "reason": f"cannot be read: {reason}",
    }
    assert decision["batches"]["digits"]["admitted"] is True
    assert quarantine_refused(decision) == {"broken": f"cannot be read: {reason}"}
    with pytest.raises(BatchQuarantined, match="broken \\(moved to q\\): cannot be"):
        admit_incoming(decision, {"broken": "q"}, images, profiles)
