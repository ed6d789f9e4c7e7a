"""Course notebooks: stored clean, a solution after every exercise, run top to bottom.

The smoke profile runs under TensorFlow, with the real data and offline (marker ``notebooks``);
the gpu-smoke profile (every choice of the gpu profile at smoke sizes, mixed precision forced)
runs under JAX, the backend the GPU path is written for (marker ``gpu_smoke``: ``make test-jax``
runs the lessons of ``GPU_SMOKE_IN_CI``, ``make test-gpu-smoke`` all of them).
Set XRAYKIT_SKIP_NOTEBOOKS=1 to skip execution while iterating on the library.
"""

import json
import os
import re

import keras
import pytest

from xraykit import course

NOTEBOOKS = course.find_notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_clean(path):
    assert course.storage_problems(path) == []
    # nbformat 4.5 cells carry unique ids; a missing one makes nbformat warn on stderr.
    ids = [cell.get("id") for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]]
    assert None not in ids and len(set(ids)) == len(ids)


SHARED_FOLDER = re.compile(r"gettempdir\(\)|[\"']/tmp/|[\"']~/")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_lesson_writes_to_a_fixed_shared_folder(path):
    """Two runs of a lesson at once (two students on one server, two test workers) share no files.

    A fixed folder in the system's temporary directory let two runs of lesson 6 overwrite each
    other's trial checkpoints (HDF5 refused the lock, or a kernel died); each run now makes its
    own with ``tempfile.mkdtemp`` or writes beside the notebook.
    """
    code = "\n".join("".join(cell["source"]) for cell in
                     json.loads(path.read_text(encoding="utf-8"))["cells"]
                     if cell["cell_type"] == "code")
    assert not SHARED_FOLDER.search(code), SHARED_FOLDER.search(code)


def test_the_shared_folder_check_can_fail():
    assert SHARED_FOLDER.search('os.path.join(tempfile.gettempdir(), "runs")')
    assert SHARED_FOLDER.search('RUN_DIR = "/tmp/tuning"')
    assert not SHARED_FOLDER.search('tempfile.mkdtemp(prefix="xraykit_06_")')


def test_every_lesson_has_a_notebook():
    prefixes = {p.name[:2] for p in NOTEBOOKS}
    assert {"00", "01", "02", "03", "04", "05", "06", "07", "08"} <= prefixes


def _exercises(path):
    """``(exercise number, the cell after it)`` for every ``**N.**`` exercise of a notebook."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    start = next(i for i, c in enumerate(cells) if "## Exercises" in "".join(c["source"]))
    found = []
    for i, cell in enumerate(cells[start:], start):
        text = "".join(cell["source"])
        if cell["cell_type"] != "markdown" or text.startswith("## References"):
            continue
        for match in re.finditer(r"^\*\*(\d+)\.\*\*", text, re.M):
            rest = text[match.end():]
            following = re.search(r"^\*\*\d+\.\*\*", rest, re.M)
            answer = rest[:following.start()] if following else rest
            nxt = cells[i + 1] if i + 1 < len(cells) and not following else None
            found.append((match.group(1), answer, nxt))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_is_followed_by_its_solution(path):
    """A collapsed solution cell (outputs hidden) or a <details> answer after each exercise."""
    exercises = _exercises(path)
    assert exercises, f"{path.name} has no exercise"
    for number, own_text, following in exercises:
        if "<details>" in own_text:
            continue
        assert following is not None and following["cell_type"] == "code", \
            f"{path.name}: exercise {number} has no solution cell or <details> answer after it"
        meta = following["metadata"]
        assert "solution" in meta.get("tags", []), f"{path.name}: exercise {number}"
        assert meta.get("jupyter", {}) == {"source_hidden": True, "outputs_hidden": True}, \
            f"{path.name}: exercise {number}'s solution is not collapsed with outputs hidden"


# "Run it and see" exercises, answered by a runnable solution rather than prose.
EXPERIMENTS = {"01": {"4", "6", "7"}, "02": {"2"}, "05": {"3"}, "06": {"2"}}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_are_numbered_and_experiments_solved_by_code(path):
    exercises = _exercises(path)
    numbers = [number for number, _, _ in exercises]
    assert numbers == [str(i) for i in range(1, len(numbers) + 1)], f"{path.name}: {numbers}"
    for number, _, following in exercises:
        if number in EXPERIMENTS.get(path.name[:2], ()):
            assert following is not None and following["cell_type"] == "code", \
                f"{path.name}: experiment {number} has no runnable solution"


PROFILE_NAME_TESTS = re.compile(
    r"profile\.name\s*(==|!=|in\b)|\[profile\.name\]|get_profile\(\"gpu\"\)|\bON_GPU\b")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lessons_read_profile_fields_not_its_name(path):
    """Branches read the profile's fields, so gpu-smoke takes exactly the gpu branches."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    lines = [line for cell in cells if cell["cell_type"] == "code"
             for line in "".join(cell["source"]).splitlines() if PROFILE_NAME_TESTS.search(line)]
    assert lines == [], f"{path.name} tests the profile's name: {lines}"


def test_the_profile_name_check_can_fail():
    assert PROFILE_NAME_TESTS.search('if profile.name == "gpu":')
    assert PROFILE_NAME_TESTS.search("epochs = EPOCHS[profile.name]")
    assert not PROFILE_NAME_TESTS.search("print(profile.name, profile.image_size)")


def test_the_solution_check_can_fail(tmp_path):
    lesson = tmp_path / "99_example.ipynb"
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["## Exercises\n\n**1.** Try."]},
             {"cell_type": "code", "metadata": {}, "source": ["print(1)"], "outputs": [],
              "execution_count": None}]
    lesson.write_text(json.dumps({"cells": cells}), encoding="utf-8")
    ((number, _, following),) = _exercises(lesson)
    assert number == "1" and "solution" not in following["metadata"].get("tags", [])


def _run(path, out_dir, data, how: str, profile: str = "smoke",
         backend: str = "tensorflow") -> str:
    """Runs a notebook; fails on an error or stderr; returns the executed notebook's JSON."""
    if os.environ.get("XRAYKIT_SKIP_NOTEBOOKS"):
        pytest.skip("XRAYKIT_SKIP_NOTEBOOKS is set")
    if keras.backend.backend() != backend:
        pytest.skip(f"{profile} notebooks are executed under the {backend} backend")
    run = course.run_notebook(path, out_dir, profile=profile, data=data,
                              backend=backend, timeout=600, html=False)
    assert run.status == "ok", f"{path.name} failed {how}: {run.error} (copy: {run.output})"
    assert run.stderr == [], f"{path.name} wrote to stderr {how} (a red block for the student)"
    return (out_dir / path.name).read_text()


@pytest.mark.notebooks
@pytest.mark.real_data
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_profile(path, shared_data, tmp_path):
    executed = _run(path, tmp_path, shared_data, "with the shared data")
    assert '"output_type": "error"' not in executed
    assert "image/png" in executed, f"{path.name} rendered no figure"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_offline_without_data(path, tmp_path, monkeypatch):
    """No XRAYKIT_DATA, an empty cache and no server: synthetic data, and one line per skip."""
    monkeypatch.delenv("XRAYKIT_DATA", raising=False)
    monkeypatch.setenv("XRAYKIT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("XRAYKIT_MIRROR_URL", "http://127.0.0.1:9")  # every download fails at once
    executed = _run(path, tmp_path, None, "offline")
    uses_samples = "course_sample(" in path.read_text()
    uses_dataset = "course_data(" in path.read_text()
    if uses_samples:
        assert "SKIPPED: the" in executed and "sample is not available" in executed
    if uses_dataset:
        assert "SYNTHETIC DATA" in executed
    assert uses_samples or uses_dataset


# The lessons whose gpu-smoke run CI holds within its 25 minutes on two cores (cold JAX cache,
# about 2.6 CPU-minutes together): 0, the first a Colab student runs; 6, whose distributed
# chief-and-workers search runs in the gpu profiles only; 7, a bfloat16 model evaluated over two
# seeds, with Grad-CAM. The other six (about 21 CPU-minutes) are marked `extended`: they run in
# `make test-gpu-smoke`.
GPU_SMOKE_IN_CI = ("00", "06", "07")
GPU_SMOKE_RUNS = [pytest.param(path, id=path.stem, marks=() if path.name[:2] in GPU_SMOKE_IN_CI
                               else pytest.mark.extended) for path in NOTEBOOKS]


@pytest.mark.gpu_smoke
@pytest.mark.real_data
@pytest.mark.parametrize("path", GPU_SMOKE_RUNS)
def test_notebook_runs_in_gpu_smoke_profile_under_jax(path, shared_data, tmp_path, monkeypatch):
    """The gpu profile's branches (64 px, mixed_bfloat16, pretrained attempt offline, seeds)."""
    monkeypatch.setenv("XRAYKIT_MIRROR_URL", "http://127.0.0.1:9")  # no ImageNet weights here
    executed = _run(path, tmp_path, shared_data, "in gpu-smoke under JAX", profile="gpu-smoke",
                    backend="jax")
    if "set_precision(" in path.read_text(encoding="utf-8"):  # every lesson that trains (not 0)
        assert "mixed_bfloat16" in executed, f"{path.name} did not run in mixed precision"
