"""`course lab`: JupyterLab starts on the course with its environment, serves a lesson, stops."""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from xraykit import lab


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str, token: str):
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_lab_serves_a_lesson_through_the_server_api(tmp_path):
    folder = lab.course_folder()
    env = lab.lab_environment("smoke", tmp_path, "jax")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")  # no server files left elsewhere
    port, token = _free_port(), secrets.token_hex(16)
    log = open(tmp_path / "lab.log", "w")
    server = lab.start_lab(folder, env, port, open_browser=False, token=token,
                           stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, status = time.monotonic() + 90, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                status, _ = _get(f"{base}/api/status", token)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        assert status == 200, (tmp_path / "lab.log").read_text()[-2000:]
        status, model = _get(f"{base}/api/contents/00_xray_basics.ipynb?content=1", token)
        assert status == 200 and model["type"] == "notebook"
        assert model["content"]["cells"][0]["source"].startswith("# Lesson 0")
        with pytest.raises(urllib.error.HTTPError) as refused:  # the token is required
            _get(f"{base}/api/contents/00_xray_basics.ipynb", "wrong-token")
        assert refused.value.code == 403
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert server.returncode is not None


def test_lab_environment_sets_and_checks_the_course_variables(tmp_path):
    env = lab.lab_environment("cpu", tmp_path, None, base={"PATH": "/bin"})
    assert env["XRAYKIT_PROFILE"] == "cpu" and env["XRAYKIT_DATA"] == str(tmp_path.resolve())
    assert env["KERAS_BACKEND"] == "tensorflow" and env["PATH"] == "/bin"
    assert lab.lab_environment("smoke", base={"KERAS_BACKEND": "jax"})["KERAS_BACKEND"] == "jax"
    with pytest.raises(FileNotFoundError, match="--data .*no such folder"):
        lab.lab_environment("smoke", tmp_path / "missing")
    with pytest.raises(ValueError, match="choose one of tensorflow, jax, torch"):
        lab.lab_environment("smoke", backend="theano")
    command = lab.lab_command(tmp_path, 8890, open_browser=False, token="t")
    assert command[:4] == [sys.executable, "-m", "jupyter", "lab"]
    assert "--no-browser" in command and "--ServerApp.port=8890" in command


def test_the_setup_cell_shows_the_variables_lab_sets(tmp_path):
    """What every lesson's first cell prints (xraykit.environment()), in a fresh process."""
    env = lab.lab_environment("smoke", tmp_path, "tensorflow", base=dict(os.environ))
    code = "import xraykit; xraykit.quiet_start(); xraykit.environment()"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "profile: smoke" in done.stdout and f"data: {tmp_path.resolve()}" in done.stdout
    assert "backend: tensorflow" in done.stdout


def test_cli_lab_refuses_a_missing_data_folder(tmp_path):
    done = subprocess.run([sys.executable, "-m", "xraykit", "course", "lab", "--no-browser",
                           "--data", str(tmp_path / "missing")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.startswith("error: --data")
    assert "Traceback" not in done.stderr
