"""A real ``kill -9`` of a real ``kedro run`` at every point where a run changes
the registry or the data, for the default run and for retraining.

The rule the next run applies (``remove_abandoned_versions_node`` of
``registration.release``, and ``select_new_files``): a version that holds an alias
is never deleted; one a killed run registered that holds none is deleted;
committed data whose model holds no alias is trained on again. Killed while
training, the same command resumes from the last epoch's checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import aliases, assert_ok, kedro_cli
from tests.pipelines.retraining.conftest import (
    committed,
    kill_when,
    retrain,
    run_statuses,
    split_folders,
    store,
    train_size,
    versions,
    write_batch,
)


def registered(version: int):
    return lambda line: f"Registered model 'vae_pipeline' version {version}" in line


def data_committed(line: str) -> bool:
    return "Data version " in line and " committed" in line


def alias_moved(line: str) -> bool:
    return "Model 'vae_pipeline' version" in line and "is now '@" in line


def at_epoch(number: int):
    return lambda line: f"epoch {number}/" in line


@pytest.fixture
def retraining_project(project: Path) -> Path:
    """A copy of the trained project with a new batch in ``incoming/``."""
    write_batch(project, "2026-12-02", seed=11)
    return project


def test_default_run_killed_while_training_resumes(fresh_project):
    kill_when(fresh_project, at_epoch(3))
    client = store(fresh_project)
    result = kedro_cli(fresh_project, "run")
    assert_ok(result)
    assert "Resuming training from the checkpoint" in result.stdout
    assert run_statuses(client) == ["KILLED", "FINISHED"]
    assert versions(client) == [1]
    assert aliases(client) == {"champion": 1}
    assert not any((fresh_project / "data/06_models/checkpoints").iterdir())


def test_retraining_killed_while_training_merges_the_batch_once(project):
    client = store(project)
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
    assert run_statuses(client) == ["FINISHED", "KILLED", "FINISHED"]
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


def test_default_run_killed_after_registering_leaves_no_orphan(fresh_project):
    kill_when(fresh_project, registered(1))
    assert versions(store(fresh_project)) == [1]
    result = kedro_cli(fresh_project, "run")
    assert_ok(result)
    assert "Deleted model 'vae_pipeline' version 1, registered by the killed run" in (
        result.stdout
    )
    assert versions(store(fresh_project)) == [2]
    assert aliases(store(fresh_project)) == {"champion": 2}


def test_default_run_killed_after_the_data_commit_runs_again(fresh_project):
    kill_when(fresh_project, data_committed)
    assert versions(store(fresh_project)) == []
    assert_ok(kedro_cli(fresh_project, "run"))
    assert aliases(store(fresh_project)) == {"champion": 1}


def test_default_run_killed_after_the_alias_move_keeps_its_champion(fresh_project):
    kill_when(fresh_project, alias_moved)
    client = store(fresh_project)
    assert run_statuses(client) == ["RUNNING"]
    assert aliases(client) == {"champion": 1}
    result = kedro_cli(fresh_project, "run")
    assert_ok(result)
    assert run_statuses(client) == ["KILLED", "FINISHED"]
    assert versions(client) == [1, 2]
    assert aliases(client) == {"champion": 1}
    generation = kedro_cli(fresh_project, "run", "--pipelines", "generation")
    assert_ok(generation)
    assert "model used: 'vae_pipeline' @champion, version 1" in generation.stdout


def test_retraining_killed_after_registering_leaves_no_orphan(project):
    client, before = store(project), committed(project)
    write_batch(project, "2026-11-25", seed=2)
    kill_when(project, registered(2), "--pipelines", "retraining")
    assert versions(client) == [1, 2]
    assert committed(project) == before

    result = retrain(project)
    assert_ok(result)
    assert "Deleted model 'vae_pipeline' version 2, registered by the killed run" in (
        result.stdout
    )
    assert versions(client) == [1, 3]
    assert train_size(project) == before["splits"]["train"]["num_examples"] + 270


def test_retraining_killed_after_the_data_commit_trains_on_that_data_again(
    retraining_project,
):
    project, client = retraining_project, store(retraining_project)
    before = committed(project)
    kill_when(project, data_committed, "--pipelines", "retraining")
    killed_commit = committed(project)
    assert killed_commit["parent"] == before["version"]
    assert killed_commit["model_version"] == "2"
    assert aliases(client) == {"champion": 1}  # the alias never moved

    result = retrain(project)
    assert_ok(result)
    assert "Deleted model 'vae_pipeline' version 2, registered by the killed run" in (
        result.stdout
    )
    assert "died before promoting its model (version 2, deleted)" in result.stdout
    record = committed(project)
    assert f"data version: {record['version']} (data/05_model_input)" in (result.stdout)
    assert record["parent"] == killed_commit["version"]
    assert record["model_version"] == "3"
    assert record["incoming"] == killed_commit["incoming"]  # merged once
    assert train_size(project) == killed_commit["splits"]["train"]["num_examples"]
    assert versions(client) == [1, 3]
    assert aliases(client) in ({"champion": 3}, {"champion": 1, "challenger": 3})
    nothing = retrain(project)  # the data has its model now
    assert nothing.stderr.strip().splitlines()[-1].startswith("Nothing done: ")


def test_retraining_killed_after_the_alias_move_keeps_the_version(
    retraining_project,
):
    project, client = retraining_project, store(retraining_project)
    kill_when(project, alias_moved, "--pipelines", "retraining")
    moved = aliases(client)
    assert 2 in moved.values()
    assert run_statuses(client)[-1] == "RUNNING"

    result = retrain(project)
    assert result.returncode == 0
    assert result.stderr.strip().splitlines()[-1].startswith("Nothing done: ")
    assert versions(client) == [1, 2]
    assert aliases(client) == moved
    assert run_statuses(client)[-1] == "KILLED"
