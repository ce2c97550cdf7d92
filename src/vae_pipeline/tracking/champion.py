"""The registered champion model, as a read-only Kedro dataset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kedro.io import AbstractDataset, DatasetError
from mlflow.tracking import MlflowClient

from vae_pipeline.models import VAE
from vae_pipeline.tracking.registry import version_by_alias
from vae_pipeline.tracking.vae_flavor import load_model


@dataclass(frozen=True)
class Champion:
    """The model behind the champion alias; ``version`` is None before the first."""

    name: str
    version: str | None = None
    model: VAE | None = None


class ChampionDataset(AbstractDataset[None, Champion]):
    """Loads the version of a registered model that an alias points at.

    Unlike a ``models:/name@alias`` URI, a missing alias is not an error: the
    first retraining has no champion to beat.
    """

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = "champion",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._model_name = model_name
        self._alias = alias
        self.metadata = metadata

    def load(self) -> Champion:
        version = version_by_alias(MlflowClient(), self._model_name, self._alias)
        if version is None:
            return Champion(name=self._model_name)
        model_uri = f"models:/{self._model_name}/{version.version}"
        return Champion(
            name=self._model_name,
            version=str(version.version),
            model=load_model(model_uri),
        )

    def save(self, data: Champion) -> None:
        raise DatasetError("the champion is chosen by promotion, not saved")

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "alias": self._alias}
