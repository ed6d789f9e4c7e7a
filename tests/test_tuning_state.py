"""Tests of a search's failure modes: NaN trials, bad budgets and names, damaged state, no chief.

Before these checks: a trial whose loss was NaN ended ``COMPLETED`` (with the val AUC of a
diverged model), ``max_trials=0`` silently ran the profile's budget, ``--project-name ../x``
wrote (and with ``--workers`` deleted) outside ``--directory``, a truncated ``oracle.json``
gave a bare ``JSONDecodeError`` naming no file, and a worker without a chief waited an hour.
"""

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import write_phantom_npz

keras_tuner = pytest.importorskip("keras_tuner")

from xraykit import tuning  # noqa: E402
from xraykit.distribute import free_port, worker_env  # noqa: E402


@pytest.fixture(scope="module")
def tiny_data(small_data):
    """128 training / 64 validation images (28 px)."""
    return small_data.subset(128, 64, 64, seed=0)


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory, tiny_data):
    """The folder of a finished one-trial random search (copied by the tests that damage it)."""
    directory = tmp_path_factory.mktemp("finished")
    tuner = tuning.make_tuner("random", tuning.tiny_hypermodel(tiny_data), "smoke",
                              directory=directory, project_name="done", max_trials=1)
    tuning.run_search(tuner, tiny_data, epochs=1)
    return directory / "done"


@pytest.fixture
def phantom_npz(tmp_path):
    """A small binary dataset of synthetic phantoms (32 per split) in MedMNIST's npz layout."""
    return write_phantom_npz(tmp_path / "phantoms.npz", 32)


def _tune(*args, env=None, timeout=180):
    """``python -m xraykit tune ...`` in a fresh process; returns the finished process."""
    return subprocess.run([sys.executable, "-m", "xraykit", "tune", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def _one_line_error(result, status=1):
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# ------------------------------------------------------------------------------------------
# The library
# ------------------------------------------------------------------------------------------
class _NaNLossHyperModel(tuning.XRayHyperModel):
    """A trial whose loss is NaN on every backend (the log of a negative number)."""

    def build(self, hp):
        import keras

        model = super().build(hp)
        model.compile(optimizer="adam", metrics=[keras.metrics.AUC(name="auc")],
                      loss=lambda y, p: keras.ops.mean(keras.ops.log(p - 2.0)))
        return model


def test_a_trial_with_a_nan_loss_fails_and_is_never_completed(tmp_path, tiny_data):
    hypermodel = _NaNLossHyperModel.for_data(tiny_data, "tiny", class_weight=None)
    tuner = tuning.make_tuner("random", hypermodel, "smoke", directory=tmp_path, max_trials=1)
    with pytest.raises(tuning.TrialsFailedError, match="loss became nan at epoch 0"):
        tuning.run_search(tuner, tiny_data, epochs=2)
    frame = tuning.results_frame(tuner)
    assert list(frame["status"]) == ["FAILED"]  # before: COMPLETED, scored like any model
    assert np.isnan(frame["score"]).all()


@pytest.mark.parametrize("option, value, message", [
    ("max_trials", 0, "max_trials must be a whole number >= 1"),
    ("max_trials", -2, "max_trials must be a whole number >= 1"),
    ("max_epochs", 0, "max_epochs must be a whole number >= 1"),
    ("project_name", "../outside", "project_name '../outside' must be one folder name"),
    ("project_name", "a/b", "must be one folder name"),
    ("chief_timeout", 0, "chief_timeout must be a finite number"),
])
def test_make_tuner_refuses_bad_options(option, value, message, tmp_path, tiny_data):
    kind = "hyperband" if option == "max_epochs" else "random"
    with pytest.raises(ValueError, match=message):
        tuning.make_tuner(kind, tuning.tiny_hypermodel(tiny_data), "smoke",
                          directory=tmp_path / "search", **{option: value})
    assert not (tmp_path / "outside").exists()


def test_run_search_refuses_bad_epochs_and_data(tmp_path, tiny_data):
    tuner = tuning.make_tuner("random", tuning.tiny_hypermodel(tiny_data), "smoke",
                              directory=tmp_path, max_trials=1)
    with pytest.raises(ValueError, match="epochs must be a whole number >= 1, not 0"):
        tuning.run_search(tuner, tiny_data, epochs=0)
    one_class = (tiny_data.x_train, tiny_data.y_train, tiny_data.x_val,
                 np.zeros(len(tiny_data.y_val)))
    with pytest.raises(ValueError, match=r"data\.y_val holds one class only"):
        tuning.run_search(tuner, one_class, epochs=1)


def test_a_search_directory_that_is_a_file_is_named(tmp_path, tiny_data):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(OSError, match="not_a_folder is a file, not a folder"):
        tuning.make_tuner("random", tuning.tiny_hypermodel(tiny_data), "smoke",
                          directory=blocker)


def _truncate(path):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


@pytest.mark.parametrize("damaged", ["oracle.json", "trial_0/trial.json", "tuner0.json",
                                     "trials_tuner0.jsonl"])
def test_damaged_state_files_are_named_when_resuming(damaged, finished_search, tmp_path,
                                                     tiny_data):
    project = tmp_path / "done"
    shutil.copytree(finished_search, project)
    _truncate(project / damaged)
    with pytest.raises(tuning.SearchStateError, match=f"{damaged}: .*Delete the folder") as info:
        tuning.make_tuner("random", tuning.tiny_hypermodel(tiny_data), "smoke",
                          directory=tmp_path, project_name="done", overwrite=False)
    assert str(project) in str(info.value)
    if damaged != "tuner0.json":  # results_frame reads the trials and the trial log only
        with pytest.raises(tuning.SearchStateError, match=damaged):
            tuning.results_frame(project)


def test_a_structurally_wrong_trial_is_named(finished_search, tmp_path):
    project = tmp_path / "done"
    shutil.copytree(finished_search, project)
    (project / "trial_0" / "trial.json").write_text('{"trial_id": "0"}')
    with pytest.raises(tuning.SearchStateError, match=r"trial_0/trial\.json: not a KerasTuner"):
        tuning.load_trials(project)


def test_an_intact_search_still_resumes(finished_search, tmp_path, tiny_data):
    shutil.copytree(finished_search, tmp_path / "done")
    tuner = tuning.make_tuner("random", tuning.tiny_hypermodel(tiny_data), "smoke",
                              directory=tmp_path, project_name="done", overwrite=False)
    assert len(tuner.oracle.trials) == 1


# ------------------------------------------------------------------------------------------
# The command line (fresh processes: one line on stderr, never a traceback)
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, named", [
    (["--trials", "0"], "--trials: must be at least 1"),
    (["--epochs", "-1"], "--epochs: must be at least 1"),
    (["--max-train", "0"], "--max-train: must be at least 1"),
    (["--timeout", "0"], "--timeout: must be a finite number of seconds > 0"),
    (["--chief-timeout", "nan"], "--chief-timeout: must be a finite number of seconds > 0"),
])
def test_cli_refuses_bad_counts_with_status_2(args, named):
    assert named in _one_line_error(_tune(*args), status=2)


def test_cli_refuses_missing_data_escaping_names_and_bad_folders(tmp_path, phantom_npz):
    line = _one_line_error(_tune("--data", tmp_path / "nowhere.npz", "--directory", tmp_path))
    assert "--data" in line and "nowhere.npz: no such file or folder" in line
    victim = tmp_path / "victim"
    victim.mkdir()
    line = _one_line_error(_tune("--data", phantom_npz, "--directory", tmp_path / "search",
                                 "--project-name", "../victim", "--workers", "1"))
    assert "--project-name '../victim' must be one folder name" in line
    assert victim.is_dir()  # --workers would have deleted it before starting afresh
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    line = _one_line_error(_tune("--data", phantom_npz, "--directory", blocker))
    assert "--directory" in line and "blocker is a file, not a folder" in line
    line = _one_line_error(_tune("--data", phantom_npz, "--profile", "fast"))
    assert "fast" in line


def test_cli_names_a_damaged_search_when_resuming(finished_search, tmp_path, phantom_npz):
    shutil.copytree(finished_search, tmp_path / "done")
    (tmp_path / "done" / "oracle.json").write_text("")
    line = _one_line_error(_tune("--data", phantom_npz, "--directory", tmp_path,
                                 "--project-name", "done", "--profile", "smoke", "--space",
                                 "tiny", "--no-overwrite"))
    assert "oracle.json" in line and "Delete the folder" in line


def test_a_worker_without_a_chief_stops_within_its_timeout(tmp_path, phantom_npz):
    env = worker_env("tuner0", "127.0.0.1", free_port())  # nobody listens there
    start = time.perf_counter()
    result = _tune("--data", phantom_npz, "--directory", tmp_path, "--profile", "smoke",
                   "--space", "tiny", "--trials", "1", "--epochs", "1", "--chief-timeout", "2",
                   env=env, timeout=150)
    waited = time.perf_counter() - start
    line = _one_line_error(result)
    assert "Worker tuner0: no answer from the chief" in line and "within 2 s" in line
    assert waited < 120  # start-up and data loading plus 2 s, not KerasTuner's hour


def test_a_worker_whose_chief_dies_stops_with_a_message(tmp_path, phantom_npz):
    port = free_port()
    args = [sys.executable, "-m", "xraykit", "tune", "--data", str(phantom_npz), "--directory",
            str(tmp_path), "--profile", "smoke", "--space", "tiny", "--trials", "50",
            "--epochs", "2", "--chief-timeout", "3"]
    chief = subprocess.Popen(args, env=dict(os.environ, **worker_env("chief", port=port)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen(args, env=dict(os.environ, PYTHONUNBUFFERED="1",
                                             **worker_env("tuner0", port=port)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "tuner0: random search" in worker.stdout.readline()
        deadline = time.perf_counter() + 60  # the worker has trials: the chief serves
        while not list(tmp_path.glob("random/trial_*")) and time.perf_counter() < deadline:
            time.sleep(0.2)
        chief.kill()
        killed = time.perf_counter()
        _, stderr = worker.communicate(timeout=120)
        waited = time.perf_counter() - killed
    finally:
        for process in (chief, worker):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert worker.returncode == 1
    assert "Traceback" not in stderr
    assert "no answer from the chief" in stderr.strip().splitlines()[-1]
    assert waited < 90  # the rest of a 2-epoch trial plus a few answers of 3 s at most
