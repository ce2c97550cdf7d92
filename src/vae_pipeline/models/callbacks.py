"""Keras callbacks for VAE training."""

from __future__ import annotations

import logging
from typing import Any

import keras
import rich
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

logger = logging.getLogger(__name__)


class KLWarmup(keras.callbacks.Callback):
    """Raise the KL weight linearly from 0 to 1 over the first ``warmup_epochs``.

    Epoch ``e`` (from 0) trains with weight ``min(1, e / warmup_epochs)``. The weight
    follows the epoch number, so a resumed run picks up where it left off.
    """

    def __init__(self, warmup_epochs: int) -> None:
        super().__init__()
        self.warmup_epochs = warmup_epochs

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        weight = min(1.0, epoch / self.warmup_epochs) if self.warmup_epochs else 1.0
        self.model.kl_weight.assign(weight)


class EpochLogger(keras.callbacks.Callback):
    """One log line per epoch: loss, reconstruction, KL and their validation values."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        values = " ".join(
            f"{name}={logs[name]:.3f}"
            for name in (
                "loss",
                "reconstruction",
                "kl",
                "val_loss",
                "val_reconstruction",
                "val_kl",
            )
            if name in logs
        )
        logger.info("epoch %d/%d %s", epoch + 1, self.epochs, values)


class EpochProgress(keras.callbacks.Callback):
    """A live progress bar over the epochs, with the latest losses, for a terminal.

    It draws on rich's global console, which Kedro's log handler also writes to,
    so log lines scroll above the bar. Early stopping ends the bar where training
    ended. Updated once per epoch: no per-step work in the training loop.
    """

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs
        self._progress = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epochs"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[losses]}"),
            console=rich.get_console(),
            transient=False,
        )
        self._task: TaskID | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._progress.start()
        self._task = self._progress.add_task("training", total=self.epochs, losses="")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        losses = " ".join(
            f"{name} {logs[name]:.2f}" for name in ("loss", "val_loss") if name in logs
        )
        self._progress.update(self._task, completed=epoch + 1, losses=losses)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._progress.stop()


class RestoreFromChief(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` for a worker other than the chief in multi-worker
    training: it restores the chief's checkpoint, so every worker resumes from the
    same epoch, weights and optimizer state, and writes none of its own (Keras 3's
    callback would give each worker a checkpoint of its own, from epochs that
    differ when a worker was killed mid-epoch)."""

    def __init__(self, chief_backup_dir: str) -> None:
        super().__init__(
            chief_backup_dir, double_checkpoint=True, delete_checkpoint=False
        )

    def _save_model(self) -> None:
        """The chief saves."""
