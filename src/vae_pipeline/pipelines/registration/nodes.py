"""Nodes of the registration pipeline.

They decide what to register and which aliases to move; the catalog's
``registered_model`` and ``model_aliases`` datasets
(:mod:`vae_pipeline.tracking.registry`) do the registry's I/O when Kedro saves
their outputs. Registration runs after evaluation, so a version always carries its
test metrics; a failure in any node of the run removes what the run registered
(:class:`vae_pipeline.tracking.hooks.TrackingHooks`).
"""

from __future__ import annotations

import logging
from numbers import Real
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from vae_pipeline.data.shards import ShardedArrays
from vae_pipeline.models import VAE
from vae_pipeline.pipelines.registration.params import RegistrationParams
from vae_pipeline.reporting import model_report
from vae_pipeline.serving import LatentReference
from vae_pipeline.tracking.registry import ModelRelease, metric_tags
from vae_pipeline.tracking.vae_flavor import ServableVAE

logger = logging.getLogger(__name__)


def abandoned_versions(model_versions: list[dict[str, Any]]) -> list[str]:
    """The versions a killed run registered that no alias holds, to delete.

    A ``kill -9`` ends a run before anything can undo it (a run that fails is
    undone at once, by :class:`vae_pipeline.tracking.hooks.TrackingHooks`), and
    the next run marks it KILLED. Its version is then either chosen (an alias
    points at it: the run was killed after moving it, and the version stays) or
    nobody's model, which this node gives to ``abandoned_model_versions`` to
    delete. The data that version was trained on is trained on again by the next
    retraining (``select_new_files``).

    Args:
        model_versions: Every version of the registered model, with the status of
            the run that registered it and the aliases that point at it.

    Returns:
        The numbers of the versions to delete.
    """
    return [
        version["version"]
        for version in model_versions
        if version["run_status"] == "KILLED" and not version["aliases"]
    ]


def latent_reference(
    vae_model: VAE, train_split: ShardedArrays, params: RegistrationParams
) -> LatentReference:
    """What the version keeps of its training images: the latent means of the
    first ``reference_images`` (nearest-neighbour search) and the IWAE
    log-likelihoods of a random ``reference_likelihood_images`` (outlier
    thresholds), read in bounded chunks."""
    count = min(params.reference_images, len(train_split))
    ids = np.arange(count)
    means = np.concatenate(
        [
            vae_model.encode(train_split.select(ids[start : start + 8192])[0])[0]
            for start in range(0, count, 8192)
        ]
    )
    rng = np.random.default_rng(params.seed)
    sample = np.sort(
        rng.permutation(len(train_split))[: params.reference_likelihood_images]
    )
    log_likelihoods = vae_model.log_likelihood(
        train_split.select(sample)[0],
        num_samples=params.reference_iwae_samples,
        seed=params.seed,
    )
    return LatentReference(
        latent_means=means,
        image_ids=ids,
        data_version=train_split.version,
        log_likelihoods=log_likelihoods,
        iwae_samples=params.reference_iwae_samples,
        outlier_quantile=params.outlier_quantile,
    )


def release_model(
    vae_model: VAE,
    train_split: ShardedArrays,
    validation_split: ShardedArrays,
    evaluation_metrics: dict[str, Any],
    params: RegistrationParams,
) -> ModelRelease:
    """The evaluated model to log and register, tagged with its test metrics and
    the data version it was trained on, with what it keeps of its training
    images (:func:`latent_reference`).

    Args:
        vae_model: The trained VAE.
        train_split: Its training images.
        validation_split: Validation images; the first few become the MLflow
            input example.
        evaluation_metrics: The model's test metrics.
        params: Registration parameters.

    Returns:
        The model, its input example, its reference and its version tags.
    """
    count = min(params.input_example_images, len(validation_split))
    images, _ = validation_split.select(np.arange(count))
    tags = metric_tags(
        {
            f"test.{name}": float(value)
            for name, value in evaluation_metrics.items()
            if isinstance(value, Real) and not isinstance(value, bool)
        }
    )
    if validation_split.version:
        tags["data_version"] = validation_split.version
    servable = ServableVAE(
        model=vae_model,
        input_example=images,
        reference=latent_reference(vae_model, train_split, params),
    )
    return ModelRelease(servable, tags)


def decide_first_champion(
    current_aliases: dict[str, str], params: RegistrationParams
) -> dict[str, Any]:
    """Make the first registered version champion; later ones wait for a
    retraining run to promote them (or for the user to move the alias).

    Args:
        current_aliases: The registered model's aliases before this run.
        params: Registration parameters (``champion_alias``).

    Returns:
        The decision, in the form retraining's ``decide_promotion`` gives it:
        ``promote``, ``champion_version`` and ``reason``.
    """
    champion = current_aliases.get(params.champion_alias)
    return {
        "promote": champion is None,
        "champion_version": champion,
        "reason": (
            "no champion yet: the first version becomes champion"
            if champion is None
            else f"@{params.champion_alias} stays version {champion}: only the "
            "retraining pipeline promotes a better model"
        ),
    }


def assign_first_champion(
    registered_model: dict[str, str],
    promotion_decision: dict[str, Any],
    data_version: dict[str, Any],
    model_report: str,
    params: RegistrationParams,
) -> dict[str, Any]:
    """Apply :func:`decide_first_champion`'s decision to the aliases.

    Args:
        registered_model: The version this run registered.
        promotion_decision: Whether it becomes champion.
        data_version: The committed data it was trained on.
        model_report: Its report page, written before an alias points at it.
        params: Registration parameters (``champion_alias``).

    Returns:
        The alias update for ``model_aliases``.
    """
    aliases = [params.champion_alias] if promotion_decision["promote"] else []
    if aliases:
        logger.info(
            "Version %s (data version %s) becomes @%s: the first version",
            registered_model["version"],
            data_version["version"],
            params.champion_alias,
        )
    return {"version": registered_model["version"], "aliases": aliases, "tags": {}}


def report_model_version(
    registered_model: dict[str, str],
    evaluation_metrics: dict[str, Any],
    data_version: dict[str, Any],
    promotion_decision: dict[str, Any],
    **figures: Figure,
) -> str:
    """One self-contained HTML page for the registered version: its test
    metrics, its figures, the data it was trained on and the promotion decision
    (:func:`vae_pipeline.reporting.model_report`)."""
    return model_report(
        registered_model,
        metrics=evaluation_metrics,
        data_version=data_version,
        decision=promotion_decision,
        figures=figures,
    )
