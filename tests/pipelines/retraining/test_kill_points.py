"""A real ``kill -9`` of a real ``kedro run`` at every point where a run changes
the registry or the data, for the default run and for retraining.

The rule the next run applies (``remove_abandoned_versions_node`` of
``registration.release``, and ``select_new_files``): a version that holds an alias
is never deleted; one a killed run registered that holds none is deleted;
committed data whose model holds no alias is trained on again. (Killed while
training and killed right after registering a retraining's model:
``test_retraining_scenario.py``.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import aliases, assert_ok, kedro_cli, make_project_copy
from tests.pipelines.retraining.test_retraining_scenario import (
    committed,
    kill_when,
    retrain,
    run_statuses,
    train_size,
    versions,
    write_batch,
)


def store(project: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{project / 'mlflow.db'}")


def registered(version: int):
    return lambda line: f"Registered model 'vae_pipeline' version {version}" in line


def data_committed(line: str) -> bool:
    return "Data version " in line and " committed" in line


def alias_moved(line: str) -> bool:
    return "Model 'vae_pipeline' version" in line and "is now '@" in line


@pytest.fixture
def fresh_project(tmp_path: Path) -> Path:
    return make_project_copy(tmp_path / "project")


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project after its first ``kedro run``: version 1 is champion."""
    project = make_project_copy(tmp_path_factory.mktemp("trained") / "project")
    assert_ok(kedro_cli(project, "run"))
    return project


@pytest.fixture
def retraining_project(trained_project: Path, tmp_path: Path) -> Path:
    """A copy of the trained project with a new batch in ``incoming/``."""
    project = tmp_path / "project"
    shutil.copytree(trained_project, project)
    write_batch(project, "2026-12-02", seed=11)
    return project


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
