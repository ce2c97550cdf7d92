"""Scheduled retraining as a user runs it, end to end through ``kedro run``, each
test on its own copy of a project whose first run made version 1 champion:
nothing new (no-op); batches arriving in pieces and out of order (every file
merged once, by content); two retrainings at once (one refuses); a corrupt file
(quarantined, named; nothing changes); a run failing after the merge (nothing
committed or registered); every registered version's report page; a drifted
batch (quarantined, then released by hand). Retraining killed with ``kill -9``:
``test_kill_points.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from tests.conftest import aliases, assert_ok, cli_env, kedro_command, model_report
from tests.pipelines.retraining.conftest import (
    INCOMING,
    MODEL_INPUT,
    committed,
    retrain,
    run_statuses,
    store,
    train_size,
    versions,
    write_batch,
    write_class_folders,
)
from vae_pipeline.data.incoming import IncomingFile


def refused(result: subprocess.CompletedProcess[str], project: Path, batch: str):
    """A retraining the drift gate ended in one line, its batch moved to
    quarantine: the line, the batch's quarantine folder and its reason file."""
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    quarantined = project / "data/01_raw/quarantine" / batch
    assert line.startswith(
        f"Error: the drift gate refused new data, nothing merged: {batch} (moved "
        f"to {quarantined}): "
    ), line
    assert not (project / INCOMING / batch).exists()
    return line, quarantined, (quarantined / ".quarantine-reason.txt").read_text()


@pytest.fixture
def client(project: Path) -> MlflowClient:
    return store(project)


def test_retraining_with_nothing_new_does_nothing(project, client):
    runs_before = len(run_statuses(client))
    record = committed(project)
    result = retrain(project)
    assert result.returncode == 0
    assert result.stderr.strip().splitlines()[-1] == (
        "Nothing done: no new files in data/01_raw/incoming since data version "
        f"{record['version']}: nothing to do"
    )
    assert "ERROR" not in result.stdout and "WARNING" not in result.stdout
    assert versions(client) == [1]
    assert len(run_statuses(client)) == runs_before
    assert committed(project) == record


def test_files_count_by_content_whatever_their_batch_and_order(project, client):
    start = train_size(project)
    first_piece = write_class_folders(project, "2026-11-30", range(5, 10))
    assert_ok(retrain(project))
    assert train_size(project) == start + first_piece - round(0.1 * first_piece)
    # The rest of the batch arrives later in the same folder, and another batch
    # whose name sorts before every other.
    second_piece = write_class_folders(project, "2026-11-30", range(5))
    write_batch(project, "2000-01-01", seed=4, count=100)
    result = retrain(project)
    assert_ok(result)
    merged = committed(project)["incoming"]
    assert "2000-01-01/digits-4.npz" in merged
    assert sum(pid.startswith("2026-11-30/") for pid in merged) == 55 + second_piece
    assert "New data: 2000-01-01/digits-4.npz, 2026-11-30/images" in result.stdout


def test_two_retraining_runs_at_once_one_refuses(project, client):
    before, size = versions(client), train_size(project)
    write_batch(project, "2026-12-01", seed=5)
    runs = [
        subprocess.Popen(
            kedro_command("run", "--pipelines", "retraining"),
            cwd=project,
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = sorted(
        (run.wait(timeout=600), run.stderr.read().strip().splitlines()) for run in runs
    )
    assert [code for code, _ in results] == [0, 1], results
    # The second to reach training finds the first training on the same data (the
    # training lock), or, if it got there after the first finished training, it
    # loses the data version commit. Runs started in the same millisecond share
    # Kedro's save version: the second to save a split is refused there.
    last_line = results[1][1][-1]
    assert last_line.startswith("Error: ") and (
        last_line.startswith("Error: another training run (pid ")
        or "but another run committed" in last_line
        or "being saved by another run started in the same millisecond" in last_line
    ), last_line
    assert versions(client) == [*before, before[-1] + 1]
    assert train_size(project) == size + 270  # merged once
    assert sorted(run_statuses(client)[-2:]) == ["FAILED", "FINISHED"]


def test_a_corrupt_file_is_quarantined_and_changes_nothing(project, client):
    aliases_before, record = aliases(client), committed(project)
    folder = project / INCOMING / "2026-12-02"
    folder.mkdir()
    (folder / "digits.npz").write_bytes(b"PK\x03\x04 not really a zip archive")
    line, quarantined, reason = refused(retrain(project), project, "2026-12-02")
    assert f"(moved to {quarantined}): cannot be read: " in line
    assert "2026-12-02/digits.npz: not a readable NPZ archive" in line
    assert "not a readable NPZ archive" in reason
    assert aliases(client) == aliases_before
    assert committed(project) == record
    shutil.rmtree(quarantined)


def test_a_run_failing_after_the_merge_commits_and_registers_nothing(project, client):
    before_versions, record = versions(client), committed(project)
    write_batch(project, "2026-12-03", seed=6)
    result = retrain(project, "--params", "training.learning_rate=1e12")
    assert result.returncode == 1
    assert "training diverged" in result.stderr.strip().splitlines()[-1]
    assert committed(project) == record
    assert versions(client) == before_versions
    assert run_statuses(client)[-1] == RunStatus.to_string(RunStatus.FAILED)


def test_every_registered_version_has_its_report(project, client):
    write_batch(project, "2026-12-03", seed=8)
    assert_ok(retrain(project))
    found = client.search_model_versions("name='vae_pipeline'")
    assert len(found) == 2  # the default run's and the retraining's
    for version in found:
        page = model_report(client, project, version)
        if version.tags.get("promotion") is not None:  # decided by a retraining
            assert "validation negative ELBO" in page or "no champion" in page
            record = json.loads(
                (project / MODEL_INPUT / "data_version.json")
                .joinpath(version.tags["data_version"], "data_version.json")
                .read_text()
            )
            for digest in record["incoming"].values():
                assert digest in page


def test_a_drifted_batch_is_quarantined_then_released_by_hand(project, client):
    before_versions, record = versions(client), committed(project)
    path = write_batch(project, "2026-12-04", seed=7)
    with np.load(path) as batch:  # the same digits, inverted
        np.savez_compressed(path, x=1.0 - batch["x"], y=batch["y"])
    digest = IncomingFile(path).content_sha256()
    line, quarantined, reason = refused(retrain(project), project, "2026-12-04")
    assert f"(moved to {quarantined}): its images' negative log-likelihoods are" in line
    assert line.endswith("--params 'retraining.drift.admit=[2026-12-04]'")
    assert (quarantined / "digits-7.npz").is_file()
    assert "Kolmogorov-Smirnov" in reason
    assert committed(project) == record
    assert versions(client) == before_versions
    run = client.search_runs(
        [client.get_experiment_by_name("vae_pipeline").experiment_id],
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    assert run.info.status == RunStatus.to_string(RunStatus.FAILED)
    assert run.data.metrics["drift.2026-12-04.ks_statistic"] > 0.5
    reports = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert "reports/drift_decision.json" in reports
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert "figures/drift_histogram.png" in figures

    # Released by hand, as the message says: back to incoming, admitted by name.
    quarantined.rename(project / INCOMING / "2026-12-04")
    result = retrain(project, "--params", "retraining.drift.admit=[2026-12-04]")
    assert_ok(result)
    assert committed(project)["incoming"]["2026-12-04/digits-7.npz"] == digest
    assert versions(client) == [*before_versions, before_versions[-1] + 1]
