"""The registered champion served by ``mlflow models serve`` where the project is
not installed, answering MLflow's REST protocol on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pytest

from tests.conftest import PROJECT_ROOT, free_port, serve_command, wait_for
from vae_pipeline.datasets import ShardedArrayDataset
from vae_pipeline.serving import MAX_IMAGES

CHAMPION = "models:/vae_pipeline@champion"


def without_the_project() -> dict[str, str]:
    """This process's environment without what leads to the project's source:
    Kedro's project bootstrap (in-process tests) puts ``src`` on PYTHONPATH."""
    return {
        key: value
        for key, value in os.environ.items()
        if key != "PYTHONPATH" and not key.startswith("VIRTUAL_ENV")
    }


@pytest.fixture(scope="module")
def serving_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with the locked dependencies but not the project.

    Its site-packages reaches this environment's through a ``.pth`` line, which
    adds that folder but runs none of its ``.pth`` files: the project's editable
    install (``__editable__.vae_pipeline-*.pth``) stays out, so ``vae_pipeline``
    can only come from the model's own ``code/`` folder. The ``uvicorn`` that
    ``mlflow models serve`` starts is this environment's too.
    """
    root = tmp_path_factory.mktemp("serving") / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)], check=True
    )
    python = root / "bin" / "python"
    site = subprocess.run(
        [
            str(python),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "locked-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    uvicorn = root / "bin" / "uvicorn"
    uvicorn.write_text(f"#!{python}\nfrom uvicorn.main import main\nmain()\n")
    uvicorn.chmod(0o755)
    probe = subprocess.run(
        [str(python), "-c", "import mlflow, keras, sklearn; import vae_pipeline"],
        capture_output=True,
        text=True,
        cwd=root,
        env=without_the_project(),
        check=False,
    )
    assert "No module named 'vae_pipeline'" in probe.stderr, probe.stderr[-500:]
    return python


@pytest.fixture(scope="module")
def server(tracked_project: Path, serving_python: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **without_the_project(),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tracked_project / 'mlflow.db'}",
        "PATH": f"{serving_python.parent}:/usr/bin:/bin",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    log = (serving_python.parent.parent / "serve.log").open("w")
    process = subprocess.Popen(
        serve_command(serving_python, port=port, model_uri=CHAMPION),
        cwd=serving_python.parent.parent,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for(f"{url}/ping", seconds=180, process=process)
        except (RuntimeError, TimeoutError) as error:
            pytest.fail(f"{error}\n{Path(log.name).read_text()[-3000:]}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def test_images(tracked_project: Path) -> np.ndarray:
    from kedro.io import Version

    split = ShardedArrayDataset(
        filepath=str(tracked_project / "data/05_model_input/test"),
        version=Version(None, None),
    ).load()
    return split.images()[:16]


@pytest.fixture(scope="module")
def in_process(tracked_project: Path):
    """The same champion, loaded in this process (with the project installed)."""
    mlflow.set_tracking_uri(f"sqlite:///{tracked_project / 'mlflow.db'}")
    try:
        yield mlflow.pyfunc.load_model(CHAMPION)
    finally:
        mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])


def invoke(url: str, payload: dict) -> httpx.Response:
    return httpx.post(
        f"{url}/invocations",
        content=json.dumps(payload),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )


def test_rest_answers_what_the_model_answers_in_process(
    server, test_images, in_process
):
    params = {"iwae_samples": 30, "neighbors": 3, "seed": 5}
    expected = in_process.predict(test_images, params=params)
    flat = test_images.reshape(len(test_images), -1)
    for payload in (
        {"inputs": test_images.tolist(), "params": params},
        {
            "dataframe_split": {
                "columns": [f"p{i}" for i in range(flat.shape[1])],
                "data": flat.tolist(),
            },
            "params": params,
        },
    ):
        response = invoke(server, payload)
        assert response.status_code == 200, response.text  # noqa: PLR2004
        answer = response.json()["predictions"]
        for name in ("z_mean", "z_log_var", "reconstruction"):
            np.testing.assert_allclose(answer[name], expected[name], atol=1e-5)
        np.testing.assert_allclose(
            answer["log_likelihood"], expected["log_likelihood"], rtol=1e-5
        )
        assert answer["outlier"] == expected["outlier"].tolist()
        np.testing.assert_array_equal(answer["neighbor_ids"], expected["neighbor_ids"])


def test_rest_samples_the_prior_on_request(server, test_images):
    response = invoke(
        server, {"inputs": test_images[:1].tolist(), "params": {"prior_samples": 5}}
    )
    assert response.status_code == 200, response.text  # noqa: PLR2004
    samples = np.asarray(response.json()["predictions"]["prior_samples"])
    assert samples.shape == (5, *test_images.shape[1:])
    assert 0 <= samples.min() <= samples.max() <= 1


def bad_requests(images: np.ndarray) -> dict[str, tuple[dict | str, str]]:
    one = images[:2].tolist()
    return {
        "wrong shape": ({"inputs": images[:2, :4].tolist()}, "images must have shape"),
        "NaN": (
            json.dumps({"inputs": np.full((1, *images.shape[1:]), np.nan).tolist()}),
            "NaN or infinite",
        ),
        "out of range": ({"inputs": (images[:2] * 300).tolist()}, "must lie in [0, 1]"),
        "not numbers": ({"inputs": [["a", "b"]]}, "images must"),
        "too many images": (
            {"inputs": np.zeros((MAX_IMAGES + 1, *images.shape[1:])).tolist()},
            f"1 to {MAX_IMAGES} images",
        ),
        "K zero": ({"inputs": one, "params": {"iwae_samples": 0}}, "iwae_samples"),
        "K too big": (
            {"inputs": one, "params": {"iwae_samples": 10**9}},
            "iwae_samples",
        ),
    }


def test_what_mlflow_itself_rejects_is_a_400_too(server, test_images):
    """Parameters of the wrong type and bodies that are not JSON never reach the
    model: MLflow's server answers 400 with its own (longer) message."""
    for payload, message in (
        ({"inputs": test_images[:1].tolist(), "params": {"iwae_samples": "x"}}, "x"),
        ("{inputs: [", "Invalid input"),
    ):
        response = httpx.post(
            f"{server}/invocations",
            content=payload if isinstance(payload, str) else json.dumps(payload),
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        assert response.status_code == 400, response.text[:500]  # noqa: PLR2004
        assert message in response.json()["message"]


@pytest.mark.parametrize("case", list(bad_requests(np.zeros((2, 8, 8, 1)))))
def test_bad_requests_get_400_and_one_line(server, test_images, case):
    payload, message = bad_requests(test_images)[case]
    start = time.monotonic()
    response = httpx.post(
        f"{server}/invocations",
        content=payload if isinstance(payload, str) else json.dumps(payload),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert time.monotonic() - start < 30  # noqa: PLR2004 (an answer, not a hang)
    assert response.status_code == 400, response.text[:500]  # noqa: PLR2004
    error = response.json()["message"]
    assert message in error
    assert "\n" not in error.strip() and len(error) < 500  # noqa: PLR2004


EXAMPLES = PROJECT_ROOT / "examples"


def score_image(*args: str) -> subprocess.CompletedProcess[str]:
    """``python examples/score_image.py <args>``, as the README runs it."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / "score_image.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_shipped_request_and_client_get_the_documented_answer(server):
    """README: ``curl -d @examples/request.json`` and ``examples/score_image.py``
    answer ``{"predictions": {...}}`` with one entry per image."""
    payload = json.loads((EXAMPLES / "request.json").read_text())
    response = invoke(server, payload)
    assert response.status_code == 200, response.text  # noqa: PLR2004
    answer = response.json()["predictions"]
    assert len(answer["neighbor_ids"]) == 1 and len(answer["neighbor_ids"][0]) == 3
    digit = str(EXAMPLES / "digit.png")
    client = score_image(digit, digit, "--url", server, "--neighbors", "2")
    assert client.returncode == 0, client.stderr
    printed = json.loads(client.stdout)["predictions"]
    assert set(printed) >= {
        "z_mean",
        "z_log_var",
        "reconstruction",
        "log_likelihood",
        "outlier",
        "outlier_threshold",
        "neighbor_ids",
        "neighbor_distances",
    }
    assert np.asarray(printed["reconstruction"]).shape == (2, 8, 8, 1)
    assert len(printed["log_likelihood"]) == 2
    # The PNG is the request's image: the same answer.
    np.testing.assert_allclose(printed["z_mean"][0], answer["z_mean"][0], atol=1e-3)
    wrong = score_image(digit, "--url", server, "--shape", "4x4x1")
    assert wrong.returncode == 1
    [line] = wrong.stderr.strip().splitlines()
    assert line.startswith("Error: 400 ") and "must have shape (n, 8, 8, 1)" in line
