"""The end-of-run summary: what a run produced and where to find it.

A cross-cutting report, so a hook: after every successful ``kedro run`` (and after
the model was registered) it logs the metrics that matter, where the model,
figures and data version are, the MLflow run, the model version and which
version is champion and why.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePath
from typing import Any

import mlflow
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import AbstractVersionedDataset, DataCatalog
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from vae_pipeline.datasets import ShardedArrays
from vae_pipeline.tracking.registry import version_by_alias
from vae_pipeline.tracking.server import redact

logger = logging.getLogger(__name__)

MODEL = "vae_model"
SPLITS = ("train_split", "validation_split", "test_split")


def metric_lines(metrics: dict[str, Any]) -> list[str]:
    """The evaluation metrics that matter, as short labelled lines."""
    lines = []
    elbo = (
        f"-ELBO {metrics.get('negative_elbo', 0):.2f} (reconstruction "
        f"{metrics.get('reconstruction', 0):.2f} + KL {metrics.get('kl', 0):.2f})"
    )
    if "iwae_negative_log_likelihood" in metrics:
        lines.append(
            f"test NLL {metrics['iwae_negative_log_likelihood']:.2f} nats/image "
            f"(IWAE, K={metrics['iwae_samples']}); {elbo}"
        )
    elif "iwae_cross_entropy" in metrics:
        lines.append(
            f"test {elbo} nats/image; IWAE bound (K={metrics['iwae_samples']}) "
            f"{metrics['iwae_cross_entropy']:.2f}: Bernoulli cross-entropies, not "
            "log-likelihoods (the pixels are not binary)"
        )
    if "active_units" in metrics:
        kl = " ".join(f"{value:.2f}" for value in metrics["kl_per_dimension"])
        lines.append(
            f"active units {metrics['active_units']}/{metrics['latent_dim']} "
            f"(Var_x E(z|x) > {metrics['active_unit_threshold']:g}); "
            f"KL per dimension (nats): {kl}"
        )
    return lines


def _relative(path: PurePath, root: Path | None) -> str:
    try:
        return str(Path(path).relative_to(root)) if root else str(path)
    except ValueError:
        return str(path)


class RunSummaryHooks:
    """See the module docstring."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._catalog: DataCatalog | None = None
        self._run_id: str | None = None
        self._metrics: dict[str, Any] | None = None
        self._saved: dict[str, PurePath] = {}
        self._data: PurePath | None = None

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self._reset()
        self._root = context.project_path
        registry = context.config_loader["globals"].get("model_registry", {})
        self._model_name = registry.get("name", "vae_pipeline")
        self._champion = registry.get("champion_alias", "champion")

    @hook_impl
    def after_catalog_created(self, catalog: DataCatalog) -> None:
        self._catalog = catalog

    @hook_impl(trylast=True)  # after kedro-mlflow opened the run
    def before_pipeline_run(self) -> None:
        run = mlflow.active_run()
        self._run_id = run.info.run_id if run else None

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        if dataset_name in SPLITS and isinstance(data, ShardedArrays):
            self._data = data.directory.parent

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if dataset_name == "evaluation_metrics" and isinstance(data, dict):
            self._metrics = data
        dataset = self._catalog.get(dataset_name) if self._catalog else None
        version = (
            dataset.resolve_save_version()
            if isinstance(dataset, AbstractVersionedDataset)
            else None
        )
        if version is not None:
            path = dataset._get_versioned_path(version)  # noqa: SLF001 (no public API)
            self._saved[dataset_name] = PurePath(str(path))

    @hook_impl(trylast=True)  # after the model was registered
    def after_pipeline_run(self) -> None:
        lines = metric_lines(self._metrics or {})
        if MODEL in self._saved:
            lines.append(f"model: {_relative(self._saved[MODEL], self._root)}")
        data = next(
            (self._saved[name].parent for name in SPLITS if name in self._saved),
            self._data,
        )
        if data is not None:
            layer = _relative(data.parent.parent, self._root)
            lines.append(f"data version: {data.name} ({layer})")
        figures = sorted(path for path in self._saved.values() if path.suffix == ".png")
        if figures:
            folder = _relative(figures[0].parent.parent.parent, self._root)
            lines.append(f"figures: {len(figures)} under {folder}")
        if self._run_id is not None:
            lines += self._tracking_lines(self._run_id)
        if lines:
            logger.info("Run summary:")
            for line in lines:
                logger.info("  %s", line)
        self._reset()

    def _tracking_lines(self, run_id: str) -> list[str]:
        client = MlflowClient()
        lines = [f"MLflow run {run_id} in {redact(mlflow.get_tracking_uri())}"]
        try:
            versions = client.search_model_versions(
                f"name = '{self._model_name}' and run_id = '{run_id}'"
            )
            champion = version_by_alias(client, self._model_name, self._champion)
        except MlflowException as error:  # the summary never fails a run
            logger.warning("No registry summary: %s", error.message)
            return lines
        for version in versions:
            lines.append(self._version_line(version, champion))
        return lines

    def _version_line(
        self, version: ModelVersion, champion: ModelVersion | None
    ) -> str:
        name, alias = self._model_name, self._champion
        registered = f"registered '{name}' version {version.version}"
        if champion is not None and str(champion.version) == str(version.version):
            reason = version.tags.get("promotion.reason", "the first version")
            return f"{registered}, now @{alias}: {reason}"
        if champion is None:
            return f"{registered}; '{name}' has no @{alias}"
        why = champion.tags.get("promotion.reason", "the first version")
        reason = version.tags.get("promotion.reason")
        if reason is not None:  # a retraining decided
            return (
                f"{registered}, not promoted: {reason}; @{alias} stays version "
                f"{champion.version}"
            )
        return (
            f"{registered}; @{alias} stays version {champion.version} ({why}): "
            "only the retraining pipeline promotes a better model, or move the "
            f"alias yourself (MlflowClient().set_registered_model_alias('{name}', "
            f"'{alias}', {version.version}))"
        )
