"""Start retraining when new data lands: an Airflow trigger for event-driven
scheduling.

The retraining DAG is scheduled on an asset, ``vae_pipeline.incoming``, with an
``AssetWatcher`` whose trigger is :class:`IncomingBatchTrigger`, or the daily clock,
whichever comes first (``AssetOrTimeSchedule``; see ``docs/operations.md``,
"Scheduling"). Airflow's triggerer runs the trigger; each event it yields becomes
an asset event, and the scheduler starts one DAG run for the events queued since
the last one.

Why a trigger of our own: an asset watcher needs an event trigger
(``BaseEventTrigger``), and the pinned providers have only local ones that fire on
one known file and delete it (``FileDeleteTrigger``); none watches an object-store
prefix. This one reads the same two catalog entries the retraining pipeline does,
through Kedro's own configuration and datasets, so it watches whatever the
environment's catalog says (a folder, a bucket):

- ``incoming_files``, in one fsspec listing, with a hash of each file's entry
  (size and times on a disk, size and ETag on object storage);
- ``current_data_version``, the latest committed record, which names every
  incoming file merged so far.

A batch is the files of one ``incoming/<batch>/`` folder that the record does not
name. It fires once it has not changed for ``quiet_seconds`` (as Amazon's
``S3KeysUnchangedSensor`` waits out an inactivity period), so a batch still
arriving in pieces does not start a run; it fires again only if more files land
in it. What a run merges is still decided by the pipeline (by content, each file
once), so an extra event costs one skipped run, never data merged twice.

Importing this module loads neither TensorFlow nor the project's pipelines:
Airflow's DAG processor imports it with the DAG file.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from kedro.io import DatasetError

INCOMING = "incoming_files"
RECORD = "current_data_version"

Batches = dict[str, frozenset[tuple[str, str]]]
"""Each batch's unmerged files: ``{batch: {(partition id, ukey), ...}}``."""


@dataclass(frozen=True)
class IncomingWatch:
    """The two catalog datasets the trigger looks at, built as Kedro builds them."""

    incoming: Any  # vae_pipeline.datasets.OptionalPartitionedDataset
    record: Any  # vae_pipeline.datasets.DataVersionDataset

    @classmethod
    def of_project(cls, project_path: Path, *, env: str) -> IncomingWatch:
        """The project's ``incoming_files`` and ``current_data_version`` in
        ``env``, from its configuration (no Kedro session: no hooks, no MLflow)."""
        from kedro.config import MissingConfigException
        from kedro.framework.project import settings
        from kedro.framework.startup import bootstrap_project
        from kedro.io import DataCatalog

        bootstrap_project(project_path)
        loader = settings.CONFIG_LOADER_CLASS(
            conf_source=str(project_path / settings.CONF_SOURCE),
            env=env,
            **settings.CONFIG_LOADER_ARGS,
        )
        try:
            credentials = loader["credentials"]
        except MissingConfigException:
            credentials = {}
        entries = {name: dict(loader["catalog"][name]) for name in (INCOMING, RECORD)}
        for entry in entries.values():  # relative to the project, not the triggerer
            for key in ("path", "filepath"):
                if key in entry and "://" not in entry[key]:
                    entry[key] = str(project_path / entry[key])
        catalog = DataCatalog.from_config(entries, credentials)
        return cls(incoming=catalog.get(INCOMING), record=catalog.get(RECORD))

    def unmerged(self) -> Batches:
        """The incoming files the latest data version has not merged, by batch."""
        from vae_pipeline.data.incoming import is_hidden

        merged = self.record.load().get("incoming", {}) if self.record.exists() else {}
        batches: defaultdict[str, set[tuple[str, str]]] = defaultdict(set)
        for partition_id, ukey in self.incoming.ukeys().items():
            if partition_id not in merged and not is_hidden(partition_id):
                batch = PurePosixPath(partition_id).parts[0]
                batches[batch].add((partition_id, ukey))
        return {batch: frozenset(files) for batch, files in batches.items()}


def settled(
    looks: dict[str, tuple[frozenset[tuple[str, str]], float]],
    fired: dict[str, frozenset[tuple[str, str]]],
    batches: Batches,
    *,
    now: float,
    quiet_seconds: float,
) -> list[str]:
    """The batches to fire for now, updating what was seen and fired.

    Args:
        looks: Each batch's files when they last changed, and since when.
        fired: Each batch's files when it last fired.
        batches: This look's unmerged batches.
        now: This look's time (monotonic seconds).
        quiet_seconds: How long a batch must stay unchanged.
    """
    for gone in set(looks) - set(batches):  # merged or quarantined
        del looks[gone]
        fired.pop(gone, None)
    ready = []
    for batch, files in sorted(batches.items()):
        if batch not in looks or looks[batch][0] != files:
            looks[batch] = (files, now)  # new, or still arriving
        if now - looks[batch][1] >= quiet_seconds and fired.get(batch) != files:
            fired[batch] = files
            ready.append(batch)
    return ready


class IncomingBatchTrigger(BaseEventTrigger):
    """Fires once for each batch that has landed and settled in the project's
    incoming folder (or bucket prefix) and is not merged yet.

    Args:
        project_path: The Kedro project's folder, on the triggerer's machine.
        env: The Kedro environment whose catalog says where ``incoming/`` is.
        quiet_seconds: How long a batch must stay unchanged before it fires.
        poke_interval: Seconds between two looks.
    """

    def __init__(
        self,
        *,
        project_path: str,
        env: str = "local",
        quiet_seconds: float = 60.0,
        poke_interval: float = 30.0,
    ) -> None:
        super().__init__()
        if quiet_seconds < 0:
            raise ValueError(f"quiet_seconds: {quiet_seconds} is negative")
        if poke_interval <= 0:
            raise ValueError(f"poke_interval: {poke_interval} is not positive")
        self.project_path = project_path
        self.env = env
        self.quiet_seconds = quiet_seconds
        self.poke_interval = poke_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "project_path": self.project_path,
                "env": self.env,
                "quiet_seconds": self.quiet_seconds,
                "poke_interval": self.poke_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watch = await asyncio.to_thread(
            IncomingWatch.of_project, Path(self.project_path), env=self.env
        )
        looks: dict[str, tuple[frozenset[tuple[str, str]], float]] = {}
        fired: dict[str, frozenset[tuple[str, str]]] = {}
        while True:
            try:
                batches = await asyncio.to_thread(watch.unmerged)
            except (OSError, DatasetError) as error:  # the next look may do
                self.log.warning("Could not look at the incoming data: %s", error)
                await asyncio.sleep(self.poke_interval)
                continue
            for batch in settled(
                looks,
                fired,
                batches,
                now=time.monotonic(),
                quiet_seconds=self.quiet_seconds,
            ):
                files = sorted(partition_id for partition_id, _ in batches[batch])
                self.log.info("New batch %s: %d unmerged files", batch, len(files))
                yield TriggerEvent({"batch": batch, "files": files})
            await asyncio.sleep(self.poke_interval)
