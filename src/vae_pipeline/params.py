"""Base of the pipelines' typed parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from omegaconf import OmegaConf
from pydantic import BaseModel, ConfigDict, ValidationError

from vae_pipeline.errors import InputDataError


class StrictParams(BaseModel):
    """Parameters that Kedro validates at start-up: no unknown keys, no coercion.

    ``strict`` rejects ``"4096"`` for an integer and ``1.5`` for a seed rather than
    converting them; ``frozen`` keeps nodes from changing what they were given.

    Fields have no defaults: every value lives in ``conf/base/parameters_*.yml``,
    the one place a user reads and overrides it, and a key missing there is an
    error at start-up rather than a silent second default.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


P = TypeVar("P", bound=StrictParams)


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in, nested mappings key by key (as
    Kedro merges configuration: OmegaConf)."""
    return OmegaConf.to_container(OmegaConf.merge(base, overrides), resolve=False)


def with_overrides(params: P, overrides: Mapping[str, Any], *, name: str) -> P:
    """A copy of typed parameters with some values (nested ones too) replaced.

    Args:
        params: The parameters to start from.
        overrides: Values to replace, e.g. ``{"model": {"latent_dim": 2}}``.
        name: The parameter group of the overrides, named in errors.

    Returns:
        Validated parameters of the same type.

    Raises:
        InputDataError: An override names an unknown key or has a bad value.
    """
    try:
        return type(params).model_validate(merged(params.model_dump(), overrides))
    except ValidationError as error:
        problems = "; ".join(
            f"parameter {name}.{'.'.join(map(str, item['loc']))}: {item['msg']}"
            for item in error.errors()
        )
        raise InputDataError(problems) from None
