"""Every course notebook is stored clean and runs top to bottom in the smoke profile on real data.

Execution runs under the tensorflow backend only (see the Makefile); set XRAYKIT_SKIP_NOTEBOOKS=1
to skip it while iterating on the library.
"""

import os

import keras
import pytest

from xraykit import course

NOTEBOOKS = course.find_notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_clean(path):
    assert course.storage_problems(path) == []


def test_every_lesson_has_a_notebook():
    prefixes = {p.name[:2] for p in NOTEBOOKS}
    assert {"00", "01", "02", "03", "04", "05", "06", "07"} <= prefixes


def _run_in_smoke(path, out_dir, data, how: str) -> str:
    """Runs a notebook in smoke under TensorFlow; fails on an error or stderr; returns its JSON."""
    if os.environ.get("XRAYKIT_SKIP_NOTEBOOKS"):
        pytest.skip("XRAYKIT_SKIP_NOTEBOOKS is set")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("notebooks are executed under the tensorflow backend")
    run = course.run_notebook(path, out_dir, profile="smoke", data=data,
                              backend="tensorflow", timeout=600, html=False)
    assert run.status == "ok", f"{path.name} failed {how}: {run.error} (copy: {run.output})"
    assert run.stderr == [], f"{path.name} wrote to stderr {how} (a red block for the student)"
    return (out_dir / path.name).read_text()


@pytest.mark.notebooks
@pytest.mark.real_data
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_profile(path, shared_data, tmp_path):
    executed = _run_in_smoke(path, tmp_path, shared_data, "with the shared data")
    assert '"output_type": "error"' not in executed
    assert "image/png" in executed, f"{path.name} rendered no figure"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_offline_without_data(path, tmp_path, monkeypatch):
    """No XRAYKIT_DATA, an empty cache and no server: synthetic data, and one line per skip."""
    monkeypatch.delenv("XRAYKIT_DATA", raising=False)
    monkeypatch.setenv("XRAYKIT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("XRAYKIT_MIRROR_URL", "http://127.0.0.1:9")  # every download fails at once
    executed = _run_in_smoke(path, tmp_path, None, "offline")
    uses_samples = "course_sample(" in path.read_text()
    uses_dataset = "course_data(" in path.read_text()
    if uses_samples:
        assert "SKIPPED: the" in executed and "sample is not available" in executed
    if uses_dataset:
        assert "SYNTHETIC DATA" in executed
    assert uses_samples or uses_dataset
