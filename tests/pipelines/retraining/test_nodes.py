"""Retraining nodes on their own: new files by content, grouping new data, and
the promotion rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kedro.io import DataCatalog, MemoryDataset

from tests.conftest import model_options, run_in_memory, typed_params
from vae_pipeline.data import idx, npz
from vae_pipeline.data.idx import write_idx
from vae_pipeline.data.incoming import IncomingFile
from vae_pipeline.data.sources import array_source
from vae_pipeline.datasets import ShardedArrayDataset
from vae_pipeline.errors import InputDataError, NothingToRetrain
from vae_pipeline.models import build_vae
from vae_pipeline.models.evaluation import summarize_latents
from vae_pipeline.pipelines.data_ingestion.params import IngestionParams
from vae_pipeline.pipelines.evaluation.params import EvaluationParams
from vae_pipeline.pipelines.prepare_images.nodes import scale_sources, validate_sources
from vae_pipeline.pipelines.registration.params import RegistrationParams
from vae_pipeline.pipelines.retraining.nodes import (
    collect_incoming_sources,
    decide_promotion,
    merge_training_data,
    score_for_promotion,
    select_new_files,
)
from vae_pipeline.pipelines.retraining.params import RetrainingParams
from vae_pipeline.pipelines.retraining.pipeline import (
    create_pipeline as create_retraining,
)
from vae_pipeline.tracking.champion import Champion

CHAMPION = {"champion": "1"}


def files(*names: str) -> dict[str, IncomingFile]:
    return {name: IncomingFile(Path("/incoming") / name) for name in names}


def written(root: Path) -> dict[str, IncomingFile]:
    """Two readable batches: an NPZ file, and an IDX pair of images and labels."""
    images = np.random.default_rng(0).integers(0, 256, (5, 4, 4), dtype=np.uint8)
    (root / "b1").mkdir(parents=True)
    np.savez(root / "b1" / "a.npz", x=images / 255.0)
    (root / "b2").mkdir()
    write_idx(root / "b2" / "new-images-idx3-ubyte", images)
    write_idx(root / "b2" / "new-labels-idx1-ubyte", np.arange(5, dtype=np.uint8))
    return {
        name: IncomingFile(root / name)
        for name in ("b1/a.npz", "b2/new-images-idx3-ubyte", "b2/new-labels-idx1-ubyte")
    }


def test_batches_group_npz_and_idx_pairs(tmp_path: Path):
    params = typed_params(IngestionParams, "data_ingestion")
    sources, profiles, unreadable = collect_incoming_sources(written(tmp_path), params)
    assert unreadable == {}
    assert set(sources) == {"b1/a.npz", "b2/new-images-idx3-ubyte"}
    assert sources["b1/a.npz"].kind == "npz"
    assert sources["b2/new-images-idx3-ubyte"].kind == "idx"
    # What image preparation's validation gives, so retraining need not run it.
    expected = validate_sources(sources, params)
    assert profiles.keys() == expected.keys()
    for name, profile in profiles.items():
        assert profile.raw_sha256 == expected[name].raw_sha256
        assert profile.num_images == expected[name].num_images == 5
        assert profile.image_shape == expected[name].image_shape


def test_retraining_reads_each_incoming_file_once_before_merging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Set aside, validated and scaled: one pass over each new file until the
    merge consumes the scaled images (on object storage, one download)."""
    reads: list[str] = []
    for module, reader, magic in (
        (npz, "iter_npz", None),
        (idx, "iter_idx", idx.IDX_IMAGES_MAGIC),
    ):
        original = getattr(module, reader)

        def counted(*args, original=original, reader=reader, magic=magic):
            if magic is None or args[1] == magic:  # an IDX pair: count the images
                reads.append(reader)
            return original(*args)

        monkeypatch.setattr(module, reader, counted)
    steps = (
        create_retraining()
        .from_nodes("collect_incoming_sources_node")
        .to_outputs("incoming_images")
    )
    outputs = run_in_memory(
        steps,
        DataCatalog({"new_incoming_files": MemoryDataset(written(tmp_path))}),
        {"data_ingestion": typed_params(IngestionParams, "data_ingestion")},
    )
    assert sorted(reads) == ["iter_idx", "iter_npz"]
    images = outputs["incoming_images"].load()
    assert set(images) == {"b1/a.npz", "b2/new-images-idx3-ubyte"}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("b3/notes.txt", b"hello", "/b3/notes.txt: not new data"),
        ("b3/x-labels-idx1-ubyte", b"", "IDX labels without their images file"),
        ("b3/x.npz", b"PK\x03\x04 no zip", "b3/x.npz: not a readable NPZ archive"),
    ],
)
def test_a_batch_that_cannot_be_read_is_set_aside_with_its_reason(
    tmp_path: Path, name: str, content: bytes, message: str
):
    """The other batches go on; the unreadable one goes to the drift gate."""
    found = written(tmp_path)
    (tmp_path / name).parent.mkdir()
    (tmp_path / name).write_bytes(content)
    found[name] = IncomingFile(tmp_path / name)
    sources, _, unreadable = collect_incoming_sources(
        found, typed_params(IngestionParams, "data_ingestion")
    )
    assert set(sources) == {"b1/a.npz", "b2/new-images-idx3-ubyte"}
    assert list(unreadable) == ["b3"]
    assert message in unreadable["b3"]
    assert "\n" not in unreadable["b3"]


def test_a_file_outside_a_batch_folder_fails_the_run():
    with pytest.raises(InputDataError, match="incoming/loose.npz: new data goes in "):
        collect_incoming_sources(
            files("loose.npz"), typed_params(IngestionParams, "data_ingestion")
        )


def on_disk(root: Path, contents: dict[str, bytes]) -> dict[str, object]:
    """Files written under ``root`` as PartitionedDataset hands them over."""
    handles = {}
    for name, content in contents.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        handles[name] = lambda path=path: IncomingFile(path)
    return handles


def record(**merged: str) -> dict[str, object]:
    return {"version": "V1", "incoming": merged, "model_version": "1"}


def select(handles, data_version, aliases=CHAMPION):
    return select_new_files(
        handles,
        data_version,
        aliases,
        typed_params(RegistrationParams, "registration"),
    )


def test_new_files_are_told_apart_by_content_not_by_name_or_order(tmp_path):
    first = on_disk(tmp_path, {"2026-12/5.png": b"five", ".gitkeep": b""})
    new = select(first, record())
    assert list(new) == ["2026-12/5.png"]
    merged = {pid: file.sha256 for pid, file in new.items()}
    # The same batch folder grows, and a batch that sorts first arrives later.
    later = on_disk(tmp_path, {"2026-12/0.png": b"zero", "2025-01/1.png": b"one"})
    new = select(first | later, record(**merged))
    assert sorted(new) == ["2025-01/1.png", "2026-12/0.png"]


def test_the_same_content_twice_is_merged_once(tmp_path):
    handles = on_disk(tmp_path, {"a/x.npz": b"same", "b/x.npz": b"same"})
    assert list(select(handles, record())) == ["a/x.npz"]
    merged = {"a/x.npz": IncomingFile(tmp_path / "a/x.npz").content_sha256()}
    with pytest.raises(NothingToRetrain, match=r"since data version V1: nothing"):
        select(handles, record(**merged))


def test_a_merged_file_that_changed_is_refused_by_name(tmp_path):
    handles = on_disk(tmp_path, {"a/x.npz": b"new content"})
    with pytest.raises(InputDataError, match=r"/a/x.npz: changed since data"):
        select(handles, record(**{"a/x.npz": "0" * 64}))


@pytest.mark.parametrize(
    ("aliases", "trained_by", "retrains"),
    [
        ({"champion": "1"}, "1", False),  # the committed data has its model
        ({"champion": "1", "challenger": "2"}, "2", False),
        ({"champion": "1"}, "2", True),  # v2's run died before its alias moved
        ({}, None, True),  # no champion yet (a first run killed before it)
        ({"champion": "1"}, None, False),  # ingested data, its first model chosen
    ],
)
def test_committed_data_without_a_chosen_model_is_trained_on_again(
    tmp_path, aliases, trained_by, retrains
):
    handles = on_disk(tmp_path, {"a/x.npz": b"merged"})
    merged = {"a/x.npz": IncomingFile(tmp_path / "a/x.npz").content_sha256()}
    data_version = {**record(**merged), "model_version": trained_by}
    if retrains:
        assert select(handles, data_version, aliases) == {}
    else:
        with pytest.raises(NothingToRetrain):
            select(handles, data_version, aliases)


def decide(challenger: float, champion: float | None, margin: float):
    decision, metrics = decide_promotion(
        {
            "split": "validation",
            "images": 40,
            "challenger": challenger,
            "champion": champion,
            "champion_version": None if champion is None else "4",
        },
        typed_params(RetrainingParams, "retraining", promotion_margin=margin),
    )
    return decision, metrics


def test_promotion_scores_both_models_on_the_validation_split(tmp_path):
    """The decision never reads the test split, whose figures the reports quote."""
    rng = np.random.default_rng(0)
    splits = {}
    for name, count in (("validation", 12), ("test", 20)):
        dataset = ShardedArrayDataset(filepath=str(tmp_path / name))
        dataset.save(rng.random((count, 8, 8, 1), dtype=np.float32))
        splits[name] = dataset.load()
    models = [
        build_vae((8, 8, 1), seed=seed, **model_options(latent_dim=2))
        for seed in (1, 2)
    ]
    champion = Champion("vae_pipeline", version="3", image_shape=(8, 8, 1))
    champion.__dict__["model"] = models[1]  # as loaded from the registry
    params = typed_params(EvaluationParams, "evaluation")

    scores = score_for_promotion(models[0], champion, splits["validation"], params)

    def negative_elbo(model, split):
        summary = summarize_latents(
            model, split.images(), num_samples=params.elbo_samples, seed=params.seed
        )
        return float(summary.negative_elbo.mean())

    assert scores["split"] == "validation"
    assert scores["images"] == 12
    assert scores["champion_version"] == "3"
    assert scores["challenger"] == negative_elbo(models[0], splits["validation"])
    assert scores["champion"] == negative_elbo(models[1], splits["validation"])
    assert scores["champion"] != negative_elbo(models[1], splits["test"])
    first = score_for_promotion(
        models[0], Champion("vae_pipeline"), splits["validation"], params
    )
    assert first["champion"] is None
    assert first["challenger"] == scores["challenger"]


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
    assert "validation negative ELBO" in decision["reason"]
    assert "champion v4 25.000" in decision["reason"]
    assert metrics["promoted"]["value"] == float(promote)
    assert np.isclose(metrics["champion_negative_elbo"]["value"], 25.0)


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (np.zeros((6, 4, 4, 1), np.float32), np.arange(6), r"images are 4x4x1, the "),
        (np.zeros((6, 8, 8, 1), np.float32), None, r"unlabelled images cannot join"),
    ],
)
def test_new_images_must_match_the_training_data(tmp_path, images, labels, message):
    """Prepared like any images, then refused at the merge, in one line."""
    splits = {}
    for name in ("train", "validation"):
        dataset = ShardedArrayDataset(filepath=str(tmp_path / name))
        dataset.save((np.zeros((10, 8, 8, 1), np.float32), np.arange(10) % 2))
        splits[name] = dataset.load()
    ingestion = typed_params(IngestionParams, "data_ingestion")
    sources = {"b1/new.npz": array_source(images, labels, kind="npz", description="b1")}
    profiles = validate_sources(sources, ingestion)
    with pytest.raises(InputDataError, match=f"^b1: {message}"):
        merge_training_data(
            splits["train"],
            splits["validation"],
            scale_sources(sources, profiles, ingestion),
            profiles,
            typed_params(RetrainingParams, "retraining"),
        )
