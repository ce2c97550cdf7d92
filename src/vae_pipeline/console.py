"""What ``kedro run`` shows on a console: Kedro's rich log on a terminal, plain
lines elsewhere, and no advice that cannot help."""

from __future__ import annotations

import logging
import sys

import rich
from kedro.framework.hooks import hook_impl
from kedro.io import DatasetError
from kedro.logging import RichHandler
from kedro.validation import ParameterValidationError
from mlflow.exceptions import MlflowException

from vae_pipeline.errors import (
    InputDataError,
    RunSkipped,
    TrackingError,
    TrainingError,
)

# Errors that are the user's input (a bad parameter, a corrupt or misconfigured
# dataset) or the tracking store's (a server that stopped answering): ``kedro run``
# reports them as one line, without a traceback.
USER_ERRORS = (
    InputDataError,
    TrainingError,
    TrackingError,
    ParameterValidationError,
    DatasetError,
    MlflowException,
)
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def is_terminal() -> bool:
    """Whether output goes to an interactive terminal or a Jupyter notebook, where
    rich renders (not a file or a pipe)."""
    console = rich.get_console()
    return sys.stdout.isatty() or console.is_jupyter


def plain_console() -> logging.Handler:
    """A console handler writing unwrapped lines: time, level, logger, message."""
    logging.captureWarnings(True)  # as Kedro's RichHandler does
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    return handler


class ConsoleHooks:
    """Kedro's rich log on a terminal; plain, unwrapped lines in files and pipes.

    Rich lays records out in columns as wide as the terminal, and 80 columns when
    the output is a file or a pipe, which breaks long paths and messages over
    several lines of a log file. Kedro's logging configuration accepts handler
    classes from ``logging`` and ``kedro.logging`` only, so the choice is made
    here, when the session starts: a rich handler of the root logger becomes a
    plain one when standard output is not a terminal. Either way the console
    drops the advice that cannot help (:class:`UserErrorFilter`), and TensorFlow's
    C++ start-up lines (:mod:`vae_pipeline.models` imports it quietly).
    """

    @hook_impl(tryfirst=True)  # before other hooks log
    def after_context_created(self) -> None:
        root = logging.getLogger()
        for index, existing in enumerate(root.handlers):
            if not isinstance(existing, RichHandler):
                continue
            handler = existing
            if not is_terminal():
                handler = plain_console()
                handler.setLevel(existing.level)
                root.handlers[index] = handler
            if not any(isinstance(f, UserErrorFilter) for f in handler.filters):
                handler.addFilter(UserErrorFilter())
        # TensorFlow first, quietly: the catalog's TensorFlowModelDataset would
        # import it when a run first touches the model, its C++ start-up lines
        # and all. Commands that start no session (kedro --help) skip it.
        import vae_pipeline.models  # noqa: F401


class UserErrorFilter(logging.Filter):
    """Drop Kedro's own report of an error that ``kedro run`` prints as one line.

    For bad input or a bad parameter (one of :data:`USER_ERRORS`, printed as one
    ``Error:`` line) and for a run with nothing to do (:class:`RunSkipped`,
    printed as ``Nothing done: ...``), Kedro's node and runner log the same message
    again over several lines, with advice that cannot help (resuming with
    ``--from-nodes`` fails the same way on the same input). They log it while
    handling the exception, which is how the records are recognised. Kedro's
    parameter validator logs bad parameters before raising them: dropped too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = sys.exc_info()[1]
        if record.levelno < logging.WARNING:
            return True
        if record.name == "kedro.validation.parameter_validator":
            # Kedro logs pydantic's whole report of bad parameters before it
            # raises them: ``kedro run`` prints them as one line each. (Its
            # warnings about node type hints it cannot read stay.)
            return False
        if not isinstance(error, (RunSkipped, *USER_ERRORS)):
            return True
        return not record.name.startswith(("kedro.pipeline", "kedro.runner"))
