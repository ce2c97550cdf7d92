"""The console: plain lines off a terminal, no resume hint after bad input."""

from __future__ import annotations

import logging
import sys

import pytest
from kedro.logging import RichHandler

from vae_pipeline import console
from vae_pipeline.errors import InputDataError

HINT = (
    "There are 14 nodes that have not run.\nYou can resume the pipeline run from "
    "the nearest nodes with persisted inputs by adding the following argument to "
    'your previous command:\n  --from-nodes "train_vae_node"'
)


def runner_record(
    message: str,
    *,
    name: str = "kedro.runner.sequential_runner",
    level: int = logging.WARNING,
) -> logging.LogRecord:
    return logging.LogRecord(
        name,
        level,
        __file__,
        1,
        message,
        (),
        None,
    )


@pytest.mark.parametrize(
    ("error", "shown"),
    [(InputDataError("data.npz: bad"), False), (MemoryError(), True), (None, True)],
)
def test_kedro_reports_of_bad_input_are_dropped_only_after_bad_input(error, shown):
    """Kedro's node error (the message again, on two lines) and the runner's
    resume hint: the CLI prints the one ``Error:`` line instead."""
    keep = console.UserErrorFilter().filter
    node_error = runner_record(
        "Node validate_node failed with error: \ndata.npz: bad",
        name="kedro.pipeline.node",
        level=logging.ERROR,
    )
    if error is None:
        assert keep(runner_record(HINT)) is shown
        return
    try:
        raise error
    except (InputDataError, MemoryError):
        assert keep(runner_record(HINT)) is shown
        assert keep(node_error) is shown
        assert keep(runner_record("Running node", level=logging.INFO)) is True
        assert keep(runner_record("bad", name="vae_pipeline.x")) is True
    validation = runner_record(
        "Parameter 'training': Failed to instantiate TrainingParams\nepochs\n  ...",
        name="kedro.validation.parameter_validator",
        level=logging.ERROR,
    )
    assert keep(validation) is False
    unreadable_hint = runner_record(
        "Could not extract type hints from function f: name 'X' is not defined",
        name="kedro.validation.type_extractor",
        level=logging.WARNING,
    )
    assert keep(unreadable_hint) is True


@pytest.fixture
def root_handlers():
    root = logging.getLogger()
    saved = list(root.handlers)
    yield root
    root.handlers[:] = saved


@pytest.mark.parametrize("terminal", [True, False])
def test_rich_console_becomes_plain_lines_off_a_terminal(
    root_handlers, monkeypatch, capsys, terminal
):
    monkeypatch.setattr(console, "is_terminal", lambda: terminal)
    rich = RichHandler()
    root_handlers.handlers[:] = [rich]
    console.ConsoleHooks().after_context_created()
    (handler,) = root_handlers.handlers
    assert isinstance(handler, RichHandler) is terminal
    assert any(isinstance(f, console.UserErrorFilter) for f in handler.filters)
    if not terminal:
        assert handler.stream is sys.stdout
        long_path = "data/06_models/vae.keras/" + "x" * 120 + "/vae.keras"
        handler.handle(
            logging.LogRecord("vae_pipeline", logging.INFO, "", 1, long_path, (), None)
        )
        (line,) = capsys.readouterr().out.splitlines()
        assert line.endswith(f" INFO vae_pipeline: {long_path}")
