"""The end-of-run summary: what a run produced and where to find it.

A cross-cutting report, so a hook: after every successful ``kedro run`` (and after
the model was registered) it logs the metrics that matter, where the model,
figures and data version are, the MLflow run, the model version and which
version is champion and why.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from vae_pipeline.data.shards import ShardedArrays
from vae_pipeline.tracking.registry import version_by_alias
from vae_pipeline.tracking.server import redact

logger = logging.getLogger(__name__)

MODEL = "vae_model"
SPLITS = ("train_split", "validation_split", "test_split")
DATA_VERSION = "data_version"  # the record a run commits
REPORT = "model_report"  # the registered version's page
CURRENT_DATA_VERSION = "current_data_version"  # the record a run starts from
REGISTERED_MODEL = "registered_vae_model"  # a registered model a run loads


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


def _relative(path: str, root: Path | None) -> str:
    """A local path relative to the project; a URL (``s3://...``) as it is."""
    if root is None or "://" in path:
        return path
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def _up(path: str, levels: int = 1) -> str:
    """The folder ``levels`` above a path or URL (PurePath would fold ``s3://``)."""
    return path.rsplit("/", levels)[0]


def _model_version(client: MlflowClient, model_uri: str) -> str:
    """``models:/name@alias`` or ``models:/name/3`` as ``'name' version 3``."""
    location = model_uri.removeprefix("models:/")
    if "@" in location:
        name, alias = location.split("@", 1)
        version = client.get_model_version_by_alias(name, alias).version
        return f"'{name}' @{alias}, version {version}"
    if location.count("/") == 1:
        name, version = location.split("/")
        return f"'{name}' version {version}"
    return model_uri


class RunSummaryHooks:
    """See the module docstring."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._catalog: DataCatalog | None = None
        self._save_version: str | None = None
        self._run_id: str | None = None
        self._metrics: dict[str, Any] | None = None
        self._saved: dict[str, str] = {}
        self._data: tuple[str, str] | None = None  # (version, layer) loaded
        self._loaded_model: str | None = None

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self._reset()
        self._root = context.project_path
        registry = context.config_loader["globals"].get("model_registry", {})
        self._model_name = registry.get("name", "vae_pipeline")
        self._champion = registry.get("champion_alias", "champion")

    @hook_impl
    def after_catalog_created(self, catalog: DataCatalog, save_version: str) -> None:
        self._catalog, self._save_version = catalog, save_version

    def _filepath(self, dataset_name: str) -> tuple[str, bool] | None:
        """The ``filepath`` of a dataset's catalog entry (that of the dataset a
        wrapper such as ``CachedDataset`` holds), and whether it is versioned."""
        if self._catalog is None:
            return None
        config = self._catalog.config_resolver.resolve_pattern(dataset_name)
        versioned = False
        while isinstance(config, dict):
            versioned = versioned or bool(config.get("versioned"))
            if "filepath" in config:
                return str(config["filepath"]), versioned
            config = config.get("dataset")
        return None

    @hook_impl(trylast=True)  # after kedro-mlflow opened the run
    def before_pipeline_run(self) -> None:
        run = mlflow.active_run()
        self._run_id = run.info.run_id if run else None

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        if dataset_name in SPLITS and isinstance(data, ShardedArrays) and data.version:
            self._data = (data.version, _up(str(data.directory), 3))
        elif dataset_name == CURRENT_DATA_VERSION and isinstance(data, dict):
            layer = self._path_of(dataset_name)
            self._data = (data["version"], _up(layer, 1) if layer else "")
        elif dataset_name == REGISTERED_MODEL and self._catalog is not None:
            self._loaded_model = getattr(
                self._catalog.get(dataset_name), "model_uri", None
            )

    def _path_of(self, dataset_name: str) -> str | None:
        entry = self._filepath(dataset_name)
        return None if entry is None else entry[0]

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if dataset_name == "evaluation_metrics" and isinstance(data, dict):
            self._metrics = data
        entry = self._filepath(dataset_name)
        if entry is not None and entry[1]:  # Kedro's <filepath>/<version>/<name>
            filepath = entry[0]
            name = filepath.rsplit("/", 1)[-1]
            self._saved[dataset_name] = f"{filepath}/{self._save_version}/{name}"

    @hook_impl(trylast=True)  # after the model was registered
    def after_pipeline_run(self) -> None:
        lines = metric_lines(self._metrics or {})
        if MODEL in self._saved:
            lines.append(f"model: {_relative(self._saved[MODEL], self._root)}")
        if DATA_VERSION in self._saved:  # committed by this run
            record = self._saved[DATA_VERSION]  # <layer>/data_version.json/<V>/...
            self._data = (_up(record).rsplit("/", 1)[-1], _up(record, 3))
        if self._data is not None:
            version, layer = self._data
            lines.append(f"data version: {version} ({_relative(layer, self._root)})")
        figures = sorted(path for path in self._saved.values() if path.endswith(".png"))
        if figures:
            folder = _relative(_up(figures[0], 3), self._root)
            lines.append(f"figures: {len(figures)} under {folder}")
        if REPORT in self._saved:
            lines.append(f"report: {_relative(self._saved[REPORT], self._root)}")
        if self._loaded_model is not None:
            try:
                used = _model_version(MlflowClient(), self._loaded_model)
            except MlflowException as error:  # the summary never fails a run
                used = f"{self._loaded_model} ({error.message})"
            lines.append(f"model used: {used}")
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
