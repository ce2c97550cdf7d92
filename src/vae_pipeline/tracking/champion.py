"""The registered champion model, as a read-only Kedro dataset."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from kedro.io import AbstractDataset, DatasetError
from mlflow.tracking import MlflowClient

from vae_pipeline.errors import InputDataError
from vae_pipeline.models import VAE
from vae_pipeline.serving import LatentReference
from vae_pipeline.tracking.registry import version_by_alias
from vae_pipeline.tracking.vae_flavor import REFERENCE_FOLDER, load_model


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


@dataclass(frozen=True)
class Champion:
    """The version behind the champion alias; ``version`` is None before the
    first. Its image shape comes from the MLmodel file; the model itself is
    loaded when first asked for."""

    name: str
    alias: str = "champion"
    version: str | None = None
    image_shape: tuple[int, ...] | None = None
    model_uri: str | None = None

    @functools.cached_property
    def model(self) -> VAE | None:
        return None if self.model_uri is None else load_model(self.model_uri)

    @functools.cached_property
    def reference(self) -> LatentReference | None:
        """What the version keeps of its training images (None for a version
        saved before references were kept)."""
        if self.model_uri is None:
            return None
        folder = mlflow.artifacts.download_artifacts(artifact_uri=self.model_uri)
        return LatentReference.load(Path(folder) / REFERENCE_FOLDER)

    def check_takes(self, image_shape: tuple[int, ...], *, what: str) -> None:
        """Refuse, on one line and before any work, images of another shape than
        the champion's: a model trained on them cannot replace it, nor can the
        champion score them.

        Raises:
            InputDataError: Saying what to do instead.
        """
        if self.image_shape is None or tuple(image_shape) == self.image_shape:
            return
        raise InputDataError(
            f"{what} are {_shape(tuple(image_shape))} images, but '{self.name}' "
            f"@{self.alias} (version {self.version}) takes "
            f"{_shape(self.image_shape)}: give this data an environment of its own "
            "(copy conf/own_images_template to conf/<name>: its own data_root and "
            "model_registry.name, then kedro run --env <name>), or point "
            f"@{self.alias} at a version trained on images of this shape"
        )


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
            return Champion(name=self._model_name, alias=self._alias)
        model_uri = f"models:/{self._model_name}/{version.version}"
        shape = (mlflow.models.get_model_info(model_uri).metadata or {}).get(
            "image_shape"
        )
        return Champion(
            name=self._model_name,
            alias=self._alias,
            version=str(version.version),
            image_shape=tuple(shape) if shape else None,
            model_uri=model_uri,
        )

    def save(self, data: Champion) -> None:
        raise DatasetError("the champion is chosen by promotion, not saved")

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "alias": self._alias}
