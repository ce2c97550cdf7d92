"""The MLflow tracking store: checked before a run starts, and never waited on
for minutes once it has.

MLflow's client retries a request that fails 7 times with a growing back-off
(over 4 minutes) and waits 120 s for each answer; a server that dies mid-run then
hangs the run long after training. :func:`bound_retries` sets shorter limits
through MLflow's own environment variables, unless the user set them.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

from vae_pipeline.errors import TrackingError

SERVER_TIMEOUT_SECONDS = 5.0
# MLflow's variables and the values a run uses unless they are set: a dead server
# fails a request after about 3 + 2 x 30 s at worst, instead of 7 retries.
REQUEST_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def bound_retries() -> None:
    """Shorten MLflow's retries and timeouts, keeping any the user set."""
    for name, value in REQUEST_LIMITS.items():
        os.environ.setdefault(name, value)


def redact(uri: str) -> str:
    """The URI without any password in it."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def check_tracking_server(uri: str, *, timeout: float = SERVER_TIMEOUT_SECONDS) -> None:
    """Raise :class:`TrackingError` unless an HTTP tracking server answers.

    Args:
        uri: The tracking URI; only ``http`` and ``https`` URIs are checked.
        timeout: Seconds to wait for an answer.

    Raises:
        TrackingError: The server refused, timed out or answered with an error,
            or a local SQLite store cannot be written.
    """
    if urlsplit(uri).scheme == "sqlite":
        check_sqlite_store(uri)
        return
    if urlsplit(uri).scheme not in ("http", "https"):
        return
    try:
        response = requests.get(f"{uri.rstrip('/')}/health", timeout=timeout)
        response.raise_for_status()
    except requests.RequestException as error:
        reason = type(error).__name__
        if isinstance(error, requests.HTTPError):
            reason = f"HTTP {error.response.status_code}"
        raise TrackingError(
            f"MLflow tracking server {redact(uri)} is unreachable ({reason}); "
            "start it, or set MLFLOW_TRACKING_URI or conf/local/mlflow.yml"
        ) from None


def absolute_sqlite_uri(uri: str, project_path: str | os.PathLike[str]) -> str:
    """A SQLite store's URI with a relative path made absolute against the project.

    kedro-mlflow makes relative *file* paths absolute, but leaves
    ``sqlite:///mlflow.db`` relative to the working folder: a notebook under
    ``notebooks/`` would open (and create) ``notebooks/mlflow.db`` instead of the
    project's store.
    """
    if not uri.startswith("sqlite:///") or uri == "sqlite:///:memory:":
        return uri
    path = Path(uri.removeprefix("sqlite:///"))
    return uri if path.is_absolute() else f"sqlite:///{Path(project_path) / path}"


def check_sqlite_store(uri: str) -> None:
    """Raise :class:`TrackingError` when a SQLite store (or the folder it would be
    created in) cannot be written: MLflow would fail later with a SQLAlchemy
    traceback, after the pipeline started."""
    if not uri.startswith("sqlite:///") or uri == "sqlite:///:memory:":
        return
    path = Path(uri.removeprefix("sqlite:///"))
    target = path if path.exists() else path.parent
    if target.exists() and not os.access(target, os.W_OK):
        raise TrackingError(
            f"MLflow tracking store {path} is read-only; make it writable, or set "
            "MLFLOW_TRACKING_URI or conf/local/mlflow.yml"
        )
