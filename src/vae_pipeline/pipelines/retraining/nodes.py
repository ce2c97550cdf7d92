"""Nodes of the retraining pipeline.

New files under ``data/01_raw/incoming/<batch>/`` (those whose content the latest
data version has not merged) are validated like ingested data, scaled, and
appended to the current training and validation splits; the test split stays as
it is, so that every model is scored on the same held-out images. A challenger is
trained (from the champion's weights, or afresh), registered, and the merged data
committed as a new data version that records the files it merged; the challenger
becomes champion only when its negative ELBO on the merged validation split beats
the champion's by ``retraining.promotion_margin`` nats (the test split only
reports).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from vae_pipeline import plotting
from vae_pipeline.data import (
    ImageStream,
    SourceProfile,
    check_one_shape,
    profile_source,
)
from vae_pipeline.data.file_sources import file_sources
from vae_pipeline.data.incoming import (
    IncomingFile,
    batch_of,
    is_hidden,
    partition_folder,
)
from vae_pipeline.data.shards import ShardedArrays
from vae_pipeline.data.sources import ImageSource
from vae_pipeline.data.splits import split_indices
from vae_pipeline.data.versions import split_entry
from vae_pipeline.errors import (
    BatchQuarantined,
    InputDataError,
    NothingToRetrain,
    printable,
)
from vae_pipeline.models import VAE
from vae_pipeline.models.evaluation import summarize_latents
from vae_pipeline.pipelines.data_ingestion.params import IngestionParams
from vae_pipeline.pipelines.evaluation.params import EvaluationParams
from vae_pipeline.pipelines.registration.params import RegistrationParams
from vae_pipeline.pipelines.retraining.params import RetrainingParams
from vae_pipeline.pipelines.training.params import TrainingParams
from vae_pipeline.tracking.champion import Champion
from vae_pipeline.train import train_vae

logger = logging.getLogger(__name__)

INCOMING = "data/01_raw/incoming"


def select_new_files(
    incoming: dict[str, Callable[[], IncomingFile]],
    data_version: dict[str, Any],
    current_aliases: dict[str, str],
    registration: RegistrationParams,
) -> dict[str, IncomingFile]:
    """The incoming files whose content the latest data version has not merged.

    Files count by content (SHA-256), not by name or order: a batch folder may
    have any name, may get more files later, and a rerun after a failure or a
    kill merges each file exactly once.

    With no new files there is still something to do when the committed data has
    no chosen model: no champion yet (a first run killed before its alias
    moved), or the latest data version's model holds no alias (its run was killed
    between the data commit and the alias move, and the clean-up of killed runs
    deleted the version). Then the challenger trains on the committed data as
    it is.

    Args:
        incoming: Lazy handles of every file under ``data/01_raw/incoming``, by
            partition id (``<batch>/<path>``), from PartitionedDataset.
        data_version: The latest committed data version record.
        current_aliases: The registered model's aliases, ``{alias: version}``.
        registration: Registration parameters (the champion alias).

    Returns:
        The new files by partition id, with their content hashes (empty when
        the committed data is trained on again).

    Raises:
        InputDataError: A file that was merged changed since (new data goes in
            new files).
        NothingToRetrain: No new files, and the committed data has its model.
    """
    merged: dict[str, str] = data_version.get("incoming", {})
    seen = {digest: partition_id for partition_id, digest in merged.items()}
    new: dict[str, IncomingFile] = {}
    folder = partition_folder(incoming, default=INCOMING)
    for partition_id, load in sorted(incoming.items()):
        if is_hidden(partition_id):
            continue
        batch_of(partition_id, folder=folder)  # a file directly in it is an error
        file = load()
        digest = file.content_sha256()
        if partition_id in merged and merged[partition_id] != digest:
            raise InputDataError(
                f"{folder}/{printable(partition_id)}: changed since data version "
                f"{data_version['version']} merged it; new data goes in new files"
            )
        if digest in seen:
            if seen[digest] != partition_id:
                logger.info(
                    "%s/%s: the same content as %s, merged once only",
                    folder,
                    printable(partition_id),
                    printable(seen[digest]),
                )
            continue
        seen[digest] = partition_id
        new[partition_id] = IncomingFile(file.path, sha256=digest)
    if new:
        return new
    trained_by = data_version.get("model_version")
    if registration.champion_alias not in current_aliases:
        logger.info(
            "No new files, and no @%s: training on data version %s",
            registration.champion_alias,
            data_version["version"],
        )
    elif trained_by is not None and str(trained_by) not in current_aliases.values():
        logger.info(
            "No new files; data version %s was committed by a run that died before "
            "promoting its model (version %s, deleted): training on it again",
            data_version["version"],
            trained_by,
        )
    else:
        raise NothingToRetrain(
            f"no new files in {folder} since data version "
            f"{data_version['version']}: nothing to do"
        )
    return new


def collect_incoming_sources(
    files: dict[str, IncomingFile], params: IngestionParams
) -> tuple[dict[str, ImageSource], dict[str, SourceProfile], dict[str, str]]:
    """Group the new files into image sources, one per file or image folder,
    validate them batch by batch and set aside the batches that cannot be read.

    Each batch's sources are read through once, by the same validation as image
    preparation's (:func:`~vae_pipeline.data.profile_source`): a batch with a file
    that is not data, corrupt or out of range goes to the drift gate as
    unreadable (to be quarantined with its one-line reason) instead of failing
    the run for every batch. Batches of different image shapes fail the run, as
    they do in ingestion.

    Args:
        files: New files by partition id (``<batch>/<path>``).
        params: Ingestion parameters (image folders' size and colour mode).

    Returns:
        The readable batches' image sources by ``<batch>/<name>``, their
        profiles, and the unreadable batches with their reasons.
    """
    batches: dict[str, dict[str, IncomingFile]] = defaultdict(dict)
    folder = partition_folder(files, default=INCOMING)
    for partition_id, file in files.items():
        batch = batch_of(partition_id, folder=folder)
        batches[batch][partition_id[len(batch) + 1 :]] = file
    sources: dict[str, ImageSource] = {}
    profiles: dict[str, SourceProfile] = {}
    unreadable: dict[str, str] = {}
    preparation = params.preparation()
    for batch, batch_files in sorted(batches.items()):
        try:
            found = file_sources(
                batch_files,
                where=f"{folder}/{batch}",
                prefix=batch,
                image_folder=params.image_folder,
                npz=params.npz,
                numeric_labels=True,
            )
            found_profiles = {
                name: profile_source(source, preparation)
                for name, source in found.items()
            }
        except InputDataError as error:
            unreadable[batch] = str(error)
            logger.warning("Batch %s cannot be read: %s", printable(batch), error)
            continue
        sources |= found
        profiles |= found_profiles
    check_one_shape(profiles)  # as image preparation does for ingestion
    if sources:
        logger.info("New data: %s", ", ".join(map(printable, sources)))
    return sources, profiles, unreadable


def _check_joins(profile: SourceProfile, train_split: ShardedArrays) -> None:
    """New images must be of the training data's shape, and labelled as it is."""
    where = profile.description
    if profile.image_shape != train_split.image_shape:
        raise InputDataError(
            f"{where}: images are {'x'.join(map(str, profile.image_shape))}, "
            f"the training data {'x'.join(map(str, train_split.image_shape))}"
        )
    if (profile.labels is not None) != train_split.has_labels:
        raise InputDataError(
            f"{where}: {'labelled' if profile.labels is not None else 'unlabelled'}"
            " images cannot join "
            f"{'labelled' if train_split.has_labels else 'unlabelled'} training data"
        )


def _drift_reasons(stats: dict[str, float], threshold: float, params: Any) -> list:
    reasons = []
    if (
        stats["ks_statistic"] > params.max_ks_statistic
        and stats["p_value"] < params.significance
    ):
        reasons.append(
            f"its images' negative log-likelihoods are {stats['ks_statistic']:.2f} "
            "(Kolmogorov-Smirnov distance) from those of the champion's training "
            f"images (p = {stats['p_value']:.2g}), more than "
            f"retraining.drift.max_ks_statistic {params.max_ks_statistic:g}"
        )
    if stats["outlier_fraction"] > params.max_outlier_fraction:
        reasons.append(
            f"{stats['outlier_fraction']:.0%} of its images are outliers for the "
            f"champion (above {threshold:.1f} nats, "
            f"{stats['expected_outlier_fraction']:.0%} expected), more than "
            f"retraining.drift.max_outlier_fraction {params.max_outlier_fraction:g}"
        )
    return reasons


def check_incoming_drift(
    champion: Champion,
    images: dict[str, ImageStream],
    unreadable: dict[str, str],
    params: RetrainingParams,
) -> tuple[dict[str, Any], dict[str, dict[str, float]], Figure]:
    """The drift gate: does each new batch look like the champion's training data?

    The champion scores every image of a batch (IWAE negative log-likelihood,
    with the K of the training reference its version keeps); the batch is
    refused when the distribution of those scores is far from the reference's
    (two-sample Kolmogorov-Smirnov distance above ``max_ks_statistic``,
    significant at ``significance``) or when too many of its images are
    outliers (above the version's outlier threshold). A batch is read chunk by
    chunk; only its scores are held. Batches in ``retraining.drift.admit``
    (released by hand) and every batch before a champion with a reference
    exists pass; a batch that cannot be read is refused whatever they say.

    Returns:
        The decision per batch (``admitted``, ``reason`` and the figures), the
        figures as MLflow metrics (``drift.<batch>.ks_statistic``, ...) and
        the batches' score histograms over the reference's.
    """
    reference = champion.reference
    threshold = reference.outlier_threshold() if reference is not None else 0.0
    by_batch: dict[str, list[ImageStream]] = defaultdict(list)
    for source_id, stream in images.items():
        by_batch[source_id.split("/", 1)[0]].append(stream)
    batches: dict[str, dict[str, Any]] = {
        batch: {"admitted": False, "reason": f"cannot be read: {reason}"}
        for batch, reason in unreadable.items()
    }
    scores: dict[str, np.ndarray] = {}
    metrics: dict[str, dict[str, float]] = {}
    for batch, streams in sorted(by_batch.items()):
        if batch in params.drift.admit:
            batches[batch] = {"admitted": True, "reason": "admitted by hand"}
            continue
        if reference is None:
            batches[batch] = {"admitted": True, "reason": "no champion reference"}
            continue
        champion.check_takes(
            streams[0].image_shape, what=f"the images of new batch {batch}"
        )
        scores[batch] = -np.concatenate(
            [
                champion.model.log_likelihood(
                    chunk, num_samples=reference.iwae_samples, seed=params.seed
                )
                for stream in streams
                for chunk, _ in stream.iter_chunks()
            ]
        )
        stats = reference.compare(scores[batch])
        reasons = _drift_reasons(stats, threshold, params.drift)
        batches[batch] = {
            "admitted": not reasons,
            "reason": "; ".join(reasons) or "like the champion's training data",
            "images": len(scores[batch]),
            **stats,
        }
        metrics |= {
            f"{batch}.{name}": {"step": 0, "value": value}
            for name, value in stats.items()
        }
        logger.info(
            "Drift gate: batch %s %s (KS %.3f, p %.2g, outliers %.1f%%)",
            batch,
            "admitted" if not reasons else "REFUSED",
            stats["ks_statistic"],
            stats["p_value"],
            100 * stats["outlier_fraction"],
        )
    figure = plotting.drift_histograms(
        np.zeros(0) if reference is None else -reference.log_likelihoods,
        scores,
        threshold=threshold,
        title=f"New batches scored by champion v{champion.version}",
    )
    decision = {"champion_version": champion.version, "batches": batches}
    return decision, metrics, figure


def quarantine_refused(drift_decision: dict[str, Any]) -> dict[str, str]:
    """The refused batches, with their reasons, to move to quarantine."""
    return {
        batch: entry["reason"]
        for batch, entry in drift_decision["batches"].items()
        if not entry["admitted"]
    }


def admit_incoming(
    drift_decision: dict[str, Any],
    quarantined: dict[str, str],
    images: dict[str, ImageStream],
    profiles: dict[str, SourceProfile],
) -> tuple[dict[str, ImageStream], dict[str, SourceProfile]]:
    """Let the new images through to the merge, or stop the run.

    Args:
        drift_decision: The gate's decision.
        quarantined: Every batch in quarantine, by name, with its folder.
        images: The new images.
        profiles: Their profiles.

    Returns:
        The images and profiles, unchanged, when every batch was admitted.

    Raises:
        BatchQuarantined: Naming each refused batch, where it went and why, and
            how to release it; nothing is merged.
    """
    refused = [
        batch
        for batch, entry in drift_decision["batches"].items()
        if not entry["admitted"]
    ]
    if refused:
        described = "; ".join(
            f"{batch} (moved to {quarantined.get(batch, 'quarantine')}): "
            f"{drift_decision['batches'][batch]['reason']}"
            for batch in refused
        )
        names = ",".join(refused)
        raise BatchQuarantined(
            f"the drift gate refused new data, nothing merged: {described}. To "
            "merge a batch anyway, move it back to incoming and run with "
            f"--params 'retraining.drift.admit=[{names}]'"
        )
    return images, profiles


def merge_training_data(
    current_train_split: ShardedArrays,
    current_validation_split: ShardedArrays,
    images: dict[str, ImageStream],
    profiles: dict[str, SourceProfile],
    params: RetrainingParams,
) -> tuple[ImageStream, ImageStream, dict[str, Any]]:
    """Append the new images to the training and validation splits.

    Each new source is split at random (``retraining.seed``) into validation
    (``retraining.validation_fraction``) and training images, scaled as at
    ingestion; the test split is left alone.

    Args:
        current_train_split: The committed training split.
        current_validation_split: The committed validation split.
        images: The new sources' scaled images (image preparation).
        profiles: Their profiles.
        params: Retraining parameters.

    Returns:
        The merged training and validation streams and a summary of the merge.

    Raises:
        InputDataError: New images of another shape than the training data, or
            labelled differently.
    """
    for profile in profiles.values():
        _check_joins(profile, current_train_split)
    rng = np.random.default_rng(params.seed)
    train_parts = [current_train_split.stream()]
    validation_parts = [current_validation_split.stream()]
    added: dict[str, dict[str, int]] = {}
    fraction = params.validation_fraction
    for name, stream in images.items():
        profile = profiles[name]
        parts = split_indices(
            profile.num_images, {"validation": fraction, "train": 1 - fraction}, rng=rng
        )
        for merged, indices in (
            (validation_parts, parts["validation"]),
            (train_parts, parts["train"]),
        ):
            if len(indices):
                merged.append(stream.take(indices))
        added[name] = {
            "images": profile.num_images,
            **{split: len(indices) for split, indices in parts.items()},
            "raw_sha256": profile.raw_sha256,
        }
    train = ImageStream.concatenate(train_parts)
    validation = ImageStream.concatenate(validation_parts)
    summary = {
        "added": added,
        "train": {"before": len(current_train_split), "after": train.num_examples},
        "validation": {
            "before": len(current_validation_split),
            "after": validation.num_examples,
        },
    }
    logger.info(
        "Training data: %d -> %d images, validation %d -> %d",
        len(current_train_split),
        train.num_examples,
        len(current_validation_split),
        validation.num_examples,
    )
    return train, validation, summary


def retrain_vae(
    train_split: ShardedArrays,
    validation_split: ShardedArrays,
    training: TrainingParams,
    champion: Champion,
    params: RetrainingParams,
) -> tuple[VAE, dict[str, list[float]]]:
    """Train the challenger, from the champion's weights when ``warm_start``.

    Returns:
        The challenger and its per-epoch history.
    """
    champion.check_takes(train_split.image_shape, what="the training data")
    initial = champion.model if params.warm_start else None
    logger.info(
        "Training the challenger %s",
        f"from champion version {champion.version}" if initial else "from scratch",
    )
    return train_vae(
        train_split,
        validation_split,
        training,
        initial_model=initial,
        keep_until_released=True,
    )


def _negative_elbo(model: VAE, images: np.ndarray, params: EvaluationParams) -> float:
    summary = summarize_latents(
        model, images, num_samples=params.elbo_samples, seed=params.seed
    )
    return float(summary.negative_elbo.mean())


def score_for_promotion(
    challenger: VAE,
    champion: Champion,
    validation_split: ShardedArrays,
    params: EvaluationParams,
) -> dict[str, Any]:
    """Both models' negative ELBO on the merged validation split, with the same
    estimator and seed.

    The promotion is decided on the validation split, not the test split, so the
    test figures that reports quote stay an unbiased estimate: no model is chosen
    on them. (The challenger's early stopping watched the validation split too, a
    small optimism that ``retraining.promotion_margin`` can absorb.)

    Returns:
        ``split``, ``images``, ``challenger`` and ``champion`` (nats per image;
        ``champion`` None when there is no champion yet) and ``champion_version``.
    """
    images = validation_split.images()
    scores: dict[str, Any] = {
        "split": "validation",
        "images": len(validation_split),
        "challenger": _negative_elbo(challenger, images, params),
        "champion": None,
        "champion_version": champion.version,
    }
    if champion.version is not None:
        champion.check_takes(validation_split.image_shape, what="the validation split")
        scores["champion"] = _negative_elbo(champion.model, images, params)
    return scores


def decide_promotion(
    promotion_scores: dict[str, Any], params: RetrainingParams
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """Promote the challenger when it beats the champion by the margin.

    Args:
        promotion_scores: Both models' negative ELBO on the validation split
            (:func:`score_for_promotion`).
        params: Retraining parameters (``promotion_margin``).

    Returns:
        The decision with both scores and the reason, and the same as MLflow
        metrics (``promotion.*``).
    """
    challenger = float(promotion_scores["challenger"])
    champion_negative_elbo = promotion_scores["champion"]
    champion_version = promotion_scores["champion_version"]
    split = promotion_scores["split"]
    margin = params.promotion_margin
    if champion_negative_elbo is None:
        promote = True
        reason = "no champion yet: the first model becomes champion"
    else:
        improvement = champion_negative_elbo - challenger
        promote = improvement > margin
        reason = (
            f"{split} negative ELBO {challenger:.3f} vs champion "
            f"v{champion_version} {champion_negative_elbo:.3f}: "
            f"{'better' if improvement > 0 else 'not better'} by {improvement:.3f} "
            f"nats, {'more' if promote else 'not more'} than the margin {margin:g}"
        )
    decision = {
        "promote": promote,
        "challenger_negative_elbo": challenger,
        "champion_negative_elbo": champion_negative_elbo,
        "champion_version": champion_version,
        "margin": margin,
        "split": split,
        "images": promotion_scores["images"],
        "reason": reason,
    }
    logger.info("Promotion: %s (%s)", "yes" if promote else "no", reason)
    metrics = {
        "challenger_negative_elbo": {"step": 0, "value": challenger},
        "promoted": {"step": 0, "value": float(promote)},
    }
    if champion_negative_elbo is not None:
        metrics["champion_negative_elbo"] = {"step": 0, "value": champion_negative_elbo}
    return decision, metrics


def commit_merged_data(
    current_data_version: dict[str, Any],
    train_split: ShardedArrays,
    validation_split: ShardedArrays,
    new_files: dict[str, IncomingFile],
    retraining_summary: dict[str, Any],
    registered_model: dict[str, str],
) -> dict[str, Any]:
    """Commit the merged splits as a new data version on top of the current one.

    The record lists every incoming file merged so far, by content, so the next
    run merges only what is new; it commits only if no other run committed on
    top of the same version meanwhile (the dataset checks).

    Returns:
        The data version record.
    """
    version = current_data_version["version"]
    merged = dict(current_data_version.get("incoming", {}))
    merged |= {partition_id: file.sha256 for partition_id, file in new_files.items()}
    return {
        "parent": version,
        "splits": {
            "train": split_entry(train_split),
            "validation": split_entry(validation_split),
            "test": current_data_version["splits"]["test"],
        },
        "summary": retraining_summary,
        "incoming": merged,
        "model_version": registered_model["version"],
    }


def promote_model(
    registered_model: dict[str, str],
    decision: dict[str, Any],
    data_version: dict[str, Any],
    model_report: str,
    params: RegistrationParams,
) -> dict[str, Any]:
    """Point the champion alias at the new version when the decision says so,
    the challenger alias otherwise; tag the version and its run with the outcome.

    Runs once the merged data is committed (``data_version``) and the version's
    report written (``model_report``), so an alias never points at a model whose
    data no reader can see, or that has no report.

    Returns:
        The alias update for ``model_aliases``.
    """
    outcome = "champion" if decision["promote"] else "challenger"
    alias = params.champion_alias if decision["promote"] else params.challenger_alias
    logger.info(
        "Version %s (data version %s) is %s: %s",
        registered_model["version"],
        data_version["version"],
        outcome,
        decision["reason"],
    )
    return {
        "version": registered_model["version"],
        "aliases": [alias],
        "tags": {"promotion": outcome, "promotion.reason": decision["reason"]},
    }
