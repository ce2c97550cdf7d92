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


def flat_params(values: dict[str, Any], prefix: str) -> dict[str, str]:
    """Nested parameters as ``prefix.key.subkey`` MLflow params."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}"
        flat |= (
            flat_params(value, name) if isinstance(value, dict) else {name: str(value)}
        )
    return flat
