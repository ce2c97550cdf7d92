"""What a run records about itself: its code's git commit and its parameters."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def git_tags(project_path: Path) -> dict[str, str]:
    """The project's git commit (and whether the tree had changes), if in git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=project_path, capture_output=True, text=True,
            check=True, timeout=10,
        ).stdout.strip()  # fmt: skip

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"mlflow.source.git.commit": commit, "git.dirty": str(dirty).lower()}


def flatten(
    values: Any, prefix: str = "", *, expand_lists: bool = False
) -> dict[str, Any]:
    """Nested dicts (and lists, with ``expand_lists``) as ``prefix.key.index``
    leaves: the names MLflow params and metrics take. The project's one flattener
    (kedro-mlflow's is private); every value that is not a container is a leaf."""
    if isinstance(values, dict):
        items = values.items()
    elif expand_lists and isinstance(values, list | tuple):
        items = enumerate(values)
    else:
        return {prefix: values}
    flat: dict[str, Any] = {}
    for key, value in items:
        name = f"{prefix}.{key}" if prefix else str(key)
        flat |= flatten(value, name, expand_lists=expand_lists)
    return flat
