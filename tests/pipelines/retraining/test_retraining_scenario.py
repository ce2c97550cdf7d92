"""Scheduled retraining as a hostile user runs it, end to end through ``kedro run``.

One project copy, in order: a default run killed while training, then resumed
(v1 champion) -> a batch, a retraining killed while training, the same command
again (merged once, resumed, v2) -> nothing new (no-op) -> a retraining killed
right after registering (its version is removed; merged once) -> a batch in two
pieces and a batch whose name sorts first (every file merged once) -> two
retraining runs at once (one refuses) -> a corrupt file (quarantined, named;
nothing changes)
-> a run failing after the merge (nothing committed or registered) -> every
registered version has its report page -> a batch of inverted digits is
quarantined by the drift gate, then released by hand and merged.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient
from PIL import Image
from sklearn.datasets import load_digits

from tests.conftest import (
    aliases,
    assert_ok,
    cli_env,
    kedro_cli,
    kedro_command,
    make_project_copy,
    model_report,
)
from vae_pipeline.data.incoming import IncomingFile

INCOMING = Path("data/01_raw/incoming")
MODEL_INPUT = Path("data/05_model_input")
DIGITS = load_digits()


def write_batch(project: Path, batch: str, *, seed: int, count: int = 300) -> Path:
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(DIGITS.images), count, replace=False)
    folder = project / INCOMING / batch
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"digits-{seed}.npz"
    np.savez_compressed(
        path, x=(DIGITS.images[chosen] / 16).astype(np.float32), y=DIGITS.target[chosen]
    )
    return path


def write_class_folders(project: Path, batch: str, labels: range) -> int:
    """PNG images in one folder per class, as a labelling tool delivers them."""
    count = 0
    for label in labels:
        folder = project / INCOMING / batch / str(label)
        folder.mkdir(parents=True)
        for index in np.flatnonzero(DIGITS.target == label)[:11]:
            pixels = (DIGITS.images[index] * 255 / 16).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(folder / f"{index}.png")
            count += 1
    return count


def versions(client: MlflowClient) -> list[int]:
    found = client.search_model_versions("name='vae_pipeline'")
    return sorted(int(v.version) for v in found)


def committed(project: Path) -> dict:
    """The latest committed data version record."""
    records = sorted((project / MODEL_INPUT / "data_version.json").glob("*/*.json"))
    return json.loads(records[-1].read_text())


def split_folders(project: Path, split: str) -> list[str]:
    return sorted(p.name for p in (project / MODEL_INPUT / split).iterdir())


def train_size(project: Path) -> int:
    return committed(project)["splits"]["train"]["num_examples"]


def retrain(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return kedro_cli(project, "run", "--pipelines", "retraining", *args)


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


def kill_when(project: Path, seen: Callable[[str], bool], *args: str) -> str:
    """Start ``kedro run <args>``, ``kill -9`` it at the first line ``seen``
    accepts, and return its output up to there."""
    process = subprocess.Popen(
        kedro_command("run", *args),
        cwd=project,
        env=cli_env({"PYTHONUNBUFFERED": "1"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = ""
    for line in process.stdout:
        output += line
        if seen(line):
            process.kill()
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, output[-3000:]
    return output


def at_epoch(number: int) -> Callable[[str], bool]:
    return lambda line: f"epoch {number}/" in line


def run_statuses(client: MlflowClient) -> list[str]:
    experiment = client.get_experiment_by_name("vae_pipeline").experiment_id
    runs = client.search_runs([experiment], order_by=["attributes.start_time ASC"])
    return [run.info.status for run in runs]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project_copy(tmp_path_factory.mktemp("retraining") / "project")


@pytest.fixture(scope="module")
def client(project: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{project / 'mlflow.db'}")


def test_1_a_default_run_killed_while_training_resumes(project, client):
    kill_when(project, at_epoch(3))
    result = kedro_cli(project, "run")
    assert_ok(result)
    assert "Resuming training from the checkpoint" in result.stdout
    assert run_statuses(client) == ["KILLED", "FINISHED"]
    assert versions(client) == [1]
    assert aliases(client) == {"champion": 1}
    assert not any((project / "data/06_models/checkpoints").iterdir())


def test_2_a_retraining_killed_while_training_merges_the_batch_once(project, client):
    before, folders = committed(project), split_folders(project, "train")
    write_batch(project, "2026-11-24", seed=1)
    output = kill_when(project, at_epoch(2), "--pipelines", "retraining")
    assert "Training data: 1438 -> 1708 images" in output
    assert committed(project) == before  # nothing of the killed run is visible
    [killed] = set(split_folders(project, "train")) - set(folders)  # uncommitted

    result = retrain(project)
    assert_ok(result)
    assert "Training data: 1438 -> 1708 images" in result.stdout  # not 1978
    assert "Resuming training from the checkpoint" in result.stdout
    assert "which died before committing it" in result.stdout
    record = committed(project)
    assert record["parent"] == before["version"]
    assert list(record["incoming"]) == ["2026-11-24/digits-1.npz"]
    assert record["splits"]["test"] == before["splits"]["test"]
    assert split_folders(project, "train") == sorted([*folders, record["version"]])
    assert killed not in split_folders(project, "train")
    assert run_statuses(client) == ["KILLED", "FINISHED", "KILLED", "FINISHED"]
    assert versions(client) == [1, 2]
    version = client.get_model_version("vae_pipeline", "2")
    outcome = version.tags["promotion"]
    assert "validation negative ELBO" in version.tags["promotion.reason"]
    assert version.tags["data_version"] == record["version"]
    expected = (
        {"champion": 2} if outcome == "champion" else {"champion": 1, "challenger": 2}
    )
    assert aliases(client) == expected
    run = client.get_run(version.run_id)
    assert run.info.run_name == "retraining"
    assert run.data.tags["promotion"] == outcome
    assert "promotion.champion_negative_elbo" in run.data.metrics


def test_3_retraining_with_nothing_new_does_nothing(project, client):
    runs_before = len(run_statuses(client))
    record = committed(project)
    result = retrain(project)
    assert result.returncode == 0
    assert result.stderr.strip().splitlines()[-1] == (
        "Nothing done: no new files in data/01_raw/incoming since data version "
        f"{record['version']}: nothing to do"
    )
    assert "ERROR" not in result.stdout and "WARNING" not in result.stdout
    assert versions(client) == [1, 2]
    assert len(run_statuses(client)) == runs_before
    assert committed(project) == record


def test_4_a_retraining_killed_after_registering_leaves_no_orphan(project, client):
    before = committed(project)
    write_batch(project, "2026-11-25", seed=2)
    kill_when(
        project,
        lambda line: "Registered model 'vae_pipeline' version 3" in line,
        "--pipelines",
        "retraining",
    )
    assert versions(client) == [1, 2, 3]
    assert committed(project) == before

    result = retrain(project)
    assert_ok(result)
    assert "Deleted model 'vae_pipeline' version 3, registered by the killed run" in (
        result.stdout
    )
    assert versions(client) == [1, 2, 4]
    assert train_size(project) == before["splits"]["train"]["num_examples"] + 270


def test_5_files_count_by_content_whatever_their_batch_and_order(project, client):
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


def test_6_two_retraining_runs_at_once_one_refuses(project, client):
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


def test_7_a_corrupt_file_is_quarantined_and_changes_nothing(project, client):
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


def test_8_a_run_failing_after_the_merge_commits_and_registers_nothing(project, client):
    before_versions, record = versions(client), committed(project)
    write_batch(project, "2026-12-03", seed=6)
    result = retrain(project, "--params", "training.learning_rate=1e12")
    assert result.returncode == 1
    assert "training diverged" in result.stderr.strip().splitlines()[-1]
    assert committed(project) == record
    assert versions(client) == before_versions
    assert run_statuses(client)[-1] == RunStatus.to_string(RunStatus.FAILED)


def test_9_every_registered_version_has_its_report(project, client):
    found = client.search_model_versions("name='vae_pipeline'")
    assert len(found) >= 3  # the default run's and the retrainings'
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


def test_10_a_drifted_batch_is_quarantined_then_released_by_hand(project, client):
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
