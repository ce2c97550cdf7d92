"""Project CLI: Kedro's own ``run``, with bad input reported on one line.

Kedro prints a full traceback for any exception. For errors that are the user's
input (a bad parameter, a corrupt or misconfigured dataset) the traceback only
hides the message, so ``kedro run`` prints ``Error: <message>`` and exits with 1.
Set ``VAE_PIPELINE_TRACEBACK=1`` to see the traceback anyway.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from collections.abc import Callable
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.io import DatasetError
from kedro.validation import ParameterValidationError

from vae_pipeline.console import USER_ERRORS
from vae_pipeline.errors import InputDataError, RunSkipped

_PYDANTIC_LINK = re.compile(r"\s*For further information visit \S+")
_PARAMETER = re.compile(r"^- Parameter '(?P<name>[^']+)': (?P<rest>.*)$")
_PYDANTIC_DETAIL = re.compile(
    r"^(?P<message>.*?)\s*\[type=[^,\]]+(?:, input_value=(?P<value>.*?), "
    r"input_type=\w+)?\]$"
)


def _parameter_errors(lines: list[str]) -> list[str]:
    """Turn Kedro's pydantic report into ``parameter a.b: problem (got x)`` items."""
    errors: list[str] = []
    name, location = "", None
    for line in lines:
        if match := _PARAMETER.match(line):
            name, location = match["name"], None
            if "validation error" not in match["rest"]:
                errors.append(f"parameter {name}: {match['rest']}")
        elif location is None and "validation error" not in line:
            location = line
        elif location is not None and (detail := _PYDANTIC_DETAIL.match(line)):
            where = name if location in ("", "__root__") else f"{name}.{location}"
            got = f" (got {detail['value']})" if detail["value"] else ""
            errors.append(f"parameter {where}: {detail['message']}{got}")
            location = None
    return errors


def one_line(error: BaseException) -> str:
    """Render an error as a single line, dropping pydantic's help links.

    Args:
        error: The exception to render.

    Returns:
        The message on one line; parameter errors as ``parameter a.b: problem``.
    """
    cause = error
    while isinstance(cause, DatasetError) and cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, InputDataError):  # raised in a dataset: Kedro's framing
        error = cause  # ("Failed while loading data from dataset ...") adds nothing
    text = _PYDANTIC_LINK.sub("", str(error))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    if isinstance(error, ParameterValidationError):
        errors = _parameter_errors(lines[1:])
        if errors:
            return "; ".join(errors)
    return "; ".join(lines)


def _report_user_errors(callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except RunSkipped as skipped:
            click.echo(f"Nothing done: {skipped}", err=True)
            return None
        except USER_ERRORS as error:
            if os.environ.get("VAE_PIPELINE_TRACEBACK"):
                raise
            raise click.ClickException(one_line(error)) from None

    return wrapper


@click.group(name="vae-pipeline")
def cli() -> None:
    """Commands of the vae-pipeline project."""


run = copy.copy(kedro_run)
run.callback = _report_user_errors(kedro_run.callback)
cli.add_command(run)
