"""Errors the project raises for bad input, each meant to read as one line."""

from __future__ import annotations


class InputDataError(ValueError):
    """Raw input or configuration that the pipelines cannot use.

    The message always names the file, dataset or parameter at fault and says what
    is wrong with it, on a single line, so that ``kedro run`` can print it as is.
    """


class TrainingError(RuntimeError):
    """Training that produced no usable model, such as a loss that became NaN."""


class TrackingError(RuntimeError):
    """MLflow tracking or the model registry cannot be used, such as a tracking
    server that does not answer; the message names the URI."""


class RunSkipped(Exception):  # noqa: N818 (not an error: a run with nothing to do)
    """A run that has nothing to do; ``kedro run`` reports it and exits 0."""


class BatchQuarantined(InputDataError):
    """The drift gate refused new batches: moved to quarantine, nothing merged."""


class NothingToRetrain(RunSkipped):
    """No incoming file that the latest data version has not merged."""


def printable(name: str) -> str:
    """A file name as one line of a log or a message: control characters (a
    newline in a file name) escaped as Python writes them, the rest as it is."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in name)
