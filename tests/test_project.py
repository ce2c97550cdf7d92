"""Project-level promises: set-up commands, telemetry, the registry."""

from __future__ import annotations

import ast
import logging
import re
import subprocess
import sys
from pathlib import Path

import yaml
from kedro.framework.project import find_pipelines
from kedro.framework.startup import bootstrap_project

from tests.conftest import PROJECT_ROOT


def readme_commands() -> list[str]:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    first_section = readme.split("\n## ")[1]
    return re.findall(r"```bash\n(.+?)\n```", first_section)


def test_readme_first_section_has_exactly_the_two_commands():
    run, test = readme_commands()
    assert run.startswith("python3 -m venv .venv && ") and run.endswith("kedro run")
    assert test.startswith("python3 -m venv .venv && ") and test.endswith("pytest")
    assert "-r requirements.lock" in run
    assert "-r requirements-airflow.lock" in test  # the DAG tests need Airflow
    assert "bash tests/install-system-packages" in test


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split("==", 1)
            pins[name] = version
    return pins


def test_the_airflow_lock_keeps_every_pin_of_the_main_lock():
    main = _pins(PROJECT_ROOT / "requirements.lock")
    airflow = _pins(PROJECT_ROOT / "requirements-airflow.lock")
    assert {name: airflow.get(name) for name in main} == main


def test_both_locks_hold_airflows_constraints_for_its_pinned_version():
    """Newer releases of Airflow's API-server stack break ``airflow dags test``:
    both locks keep the versions of ``constraints/airflow-3.2.2.txt``."""
    constraints = _pins(PROJECT_ROOT / "constraints" / "airflow-3.2.2.txt")
    airflow = _pins(PROJECT_ROOT / "requirements-airflow.lock")
    assert airflow["apache-airflow"] == "3.2.2"
    assert {name: airflow.get(name) for name in constraints} == constraints
    main = _pins(PROJECT_ROOT / "requirements.lock")
    shared = {name: version for name, version in constraints.items() if name in main}
    assert {name: main[name] for name in shared} == shared
    assert {"fastapi", "pydantic", "starlette"} <= set(shared)


def test_ci_runs_the_readme_test_command_verbatim():
    ci_script = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert readme_commands()[1] in ci_script.splitlines()


def test_telemetry_consent_is_false_for_every_user():
    telemetry = yaml.safe_load((PROJECT_ROOT / ".telemetry").read_text())
    assert telemetry == {"consent": False}
    ignored = (PROJECT_ROOT / ".gitignore").read_text().splitlines()
    assert ".telemetry" not in ignored


def test_default_pipeline_chains_ingestion_to_registration_and_generation():
    from vae_pipeline.pipeline_registry import register_pipelines

    bootstrap_project(PROJECT_ROOT)
    pipelines = register_pipelines()
    # Every pipeline folder is registered, but the building block that others
    # contain under their namespaces.
    assert set(find_pipelines()) - set(pipelines) == {"prepare_images"}
    # Retraining validates batch by batch while collecting, and only scales here.
    for name, namespace, steps in (
        (
            "data_ingestion",
            "ingestion",
            {"validate_sources_node", "scale_sources_node"},
        ),
        ("retraining", "incoming", {"scale_sources_node"}),
        ("scoring", "scoring", {"validate_sources_node", "scale_sources_node"}),
    ):
        names = {node.name for node in pipelines[name].nodes}
        assert {n for n in names if n.startswith(f"{namespace}.")} == {
            f"{namespace}.{step}" for step in steps
        }
    chain = ("data_ingestion", "training", "evaluation", "registration", "generation")
    default_nodes = {node.name for node in pipelines["__default__"].nodes}
    assert default_nodes == {
        node.name for name in chain for node in pipelines[name].nodes
    }
    order = [node.name for node in pipelines["__default__"].nodes]
    assert order.index("build_model_input_node") < order.index("train_vae_node")
    assert order.index("train_vae_node") < order.index(
        "compute_evaluation_metrics_node"
    )
    assert order.index("compute_evaluation_metrics_node") < order.index(
        "register_model_node"
    )
    assert "latent_comparison" in pipelines


def test_kedro_reads_the_type_of_every_node_input(caplog):
    """Kedro's parameter validator reads every node's type hints at each run; a
    hint it cannot resolve costs a warning in the log, and the check."""
    from kedro.validation import TypeExtractor

    from vae_pipeline.pipeline_registry import register_pipelines

    bootstrap_project(PROJECT_ROOT)
    with caplog.at_level(logging.WARNING, logger="kedro.validation"):
        TypeExtractor(register_pipelines()).extract_types_from_pipelines()
    assert [record.getMessage() for record in caplog.records] == []


def test_code_passes_ruff():
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run(
        [str(ruff), "check", "--no-cache", "."],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    modules |= {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    return modules


def test_no_pipeline_imports_another_pipelines_nodes():
    """Pipelines share code through vae_pipeline.data, vae_pipeline.train and
    models/, and each other's pipelines, never through another's nodes."""
    pipelines = PROJECT_ROOT / "src" / "vae_pipeline" / "pipelines"
    crossings = [
        f"{path.relative_to(pipelines)} imports {module}"
        for path in pipelines.rglob("*.py")
        for module in _imported_modules(path)
        if (found := re.fullmatch(r"vae_pipeline\.pipelines\.(\w+)\.nodes", module))
        and found[1] != path.relative_to(pipelines).parts[0]
    ]
    assert crossings == []


def test_benchmarks_never_import_the_tests():
    imports = {
        path.name: [m for m in _imported_modules(path) if m.split(".")[0] == "tests"]
        for path in (PROJECT_ROOT / "benchmarks").glob("*.py")
    }
    assert {name: found for name, found in imports.items() if found} == {}


def test_the_project_settings_do_not_import_tensorflow():
    """Kedro's CLI loads the project's settings (its hooks) for every command,
    ``kedro --help`` and ``kedro viz`` included: TensorFlow, seconds to import,
    is for the runs that train or score."""
    code = "import sys, vae_pipeline.settings; print('tensorflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
