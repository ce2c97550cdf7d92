"""Base of the pipelines' typed parameters."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictParams(BaseModel):
    """Parameters that Kedro validates at start-up: no unknown keys, no coercion.

    ``strict`` rejects ``"4096"`` for an integer and ``1.5`` for a seed rather than
    converting them; ``frozen`` keeps nodes from changing what they were given.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
