"""Retraining nodes on their own: grouping new data and the promotion rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import typed_params
from vae_pipeline.datasets.image_sources import IDXSource, NPZSource
from vae_pipeline.datasets.incoming import IncomingFile
from vae_pipeline.errors import InputDataError
from vae_pipeline.pipelines.data_ingestion.params import IngestionParams
from vae_pipeline.pipelines.retraining.nodes import (
    collect_incoming_sources,
    decide_promotion,
)
from vae_pipeline.pipelines.retraining.params import RetrainingParams


def files(*names: str) -> dict[str, IncomingFile]:
    return {name: IncomingFile(Path("/incoming") / name) for name in names}


def test_batches_group_npz_idx_pairs_and_ignore_hidden_files():
    sources = collect_incoming_sources(
        files(
            ".gitkeep",
            "b1/a.npz",
            "b2/new-images-idx3-ubyte.gz",
            "b2/new-labels-idx1-ubyte.gz",
        ),
        typed_params(IngestionParams, "data_ingestion"),
    )
    assert set(sources) == {"b1/a.npz", "b2/new-images-idx3-ubyte.gz"}
    assert isinstance(sources["b1/a.npz"], NPZSource)
    assert isinstance(sources["b2/new-images-idx3-ubyte.gz"], IDXSource)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["b1/notes.txt"], r"incoming/b1/notes.txt: not new data"),
        (["b1/x-labels-idx1-ubyte"], r"IDX labels without their images file"),
        (["loose.npz"], r"incoming/loose.npz: new data goes in a batch folder"),
        ([".gitkeep"], r"no new batches"),
    ],
)
def test_what_is_not_new_data_is_named(names, message):
    with pytest.raises(InputDataError, match=message):
        collect_incoming_sources(
            files(*names), typed_params(IngestionParams, "data_ingestion")
        )


def decide(challenger: float, champion: float | None, margin: float):
    decision, metrics = decide_promotion(
        {"negative_elbo": challenger},
        {"version": None if champion is None else "4", "negative_elbo": champion},
        typed_params(RetrainingParams, "retraining", promotion_margin=margin),
    )
    return decision, metrics


def test_first_model_is_promoted():
    decision, metrics = decide(30.0, None, margin=1.0)
    assert decision["promote"] is True
    assert "first model" in decision["reason"]
    assert "champion_negative_elbo" not in metrics


@pytest.mark.parametrize(
    ("challenger", "margin", "promote"),
    [(24.0, 0.5, True), (24.6, 0.5, False), (25.5, 0.0, False), (24.99, 0.0, True)],
)
def test_promotion_needs_to_beat_the_champion_by_the_margin(
    challenger, margin, promote
):
    decision, metrics = decide(challenger, 25.0, margin=margin)
    assert decision["promote"] is promote
    assert decision["champion_negative_elbo"] == 25.0
    assert decision["challenger_negative_elbo"] == challenger
    assert "champion v4 25.000" in decision["reason"]
    assert metrics["promoted"]["value"] == float(promote)
    assert np.isclose(metrics["champion_negative_elbo"]["value"], 25.0)
