"""Scale-out on existing engines: KerasTuner chief/worker search, data-parallel training.

Both tests start fresh Python processes: the distributed search needs one process per role,
and virtual CPU devices must be configured before the backend initializes.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import write_phantom_npz

pytestmark = pytest.mark.distributed


def _backend():
    return os.environ.get("KERAS_BACKEND", "tensorflow")


needs_jax_or_tf = pytest.mark.skipif(
    _backend() == "torch", reason="data-parallel here covers jax and tensorflow; under torch "
    "test_data_parallel_is_refused_under_torch checks the message")


@pytest.fixture
def phantom_npz(tmp_path):
    """A small binary dataset of synthetic phantoms (64 per split) in MedMNIST's npz layout."""
    return write_phantom_npz(tmp_path / "phantoms.npz", 64)


def test_chief_and_two_workers_share_a_search(tmp_path, phantom_npz, capsys, monkeypatch):
    """``python -m xraykit tune --workers 2``: a chief and two workers started here."""
    pytest.importorskip("keras_tuner")
    pytest.importorskip("grpc")
    from xraykit import cli, tuning

    monkeypatch.setenv("KERAS_BACKEND", _backend())  # the processes' backend
    directory = tmp_path / "search"
    args = ["--kind", "random", "--directory", str(directory), "--project-name", "dist",
            "--profile", "smoke", "--space", "tiny", "--trials", "4", "--epochs", "1",
            "--max-train", "64", "--max-val", "64", "--data", str(phantom_npz)]
    assert cli.main(["tune", *args, "--workers", "2", "--timeout", "240"]) == 0

    frame = tuning.results_frame(directory / "dist")
    assert len(frame) == 4
    assert (frame["status"] == "COMPLETED").all()
    assert frame["score"].between(0.0, 1.0).all()
    # Trials ran in both worker processes and none in the chief, which only served the oracle.
    assert set(frame["tuner_id"]) == {"tuner0", "tuner1"}
    out = capsys.readouterr().out
    assert "a chief and 2 workers finished" in out
    best = frame.loc[frame["score"].idxmax()]
    assert f"best: trial {best['trial_id']}, score {best['score']:.4f}" in out


@needs_jax_or_tf
def test_data_parallel_training_on_two_virtual_devices():
    env = dict(os.environ, KERAS_BACKEND=_backend())
    result = subprocess.run(
        [sys.executable, "-m", "xraykit", "data-parallel", "--devices", "2", "--steps", "4",
         "--batch-size", "32"], env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("XRAYKIT_REPORT"))
    report = json.loads(line.split(" ", 1)[1])

    assert report["backend"] == _backend()
    expected = {"jax": "DataParallel", "tensorflow": "MirroredStrategy"}[_backend()]
    assert report["strategy"] == expected
    assert report["replicas"] == 2
    # The model's variables live on both devices (replicated), and training updated them.
    assert len(set(report["variable_devices"])) == 2
    assert report["weights_changed"] == report["weights_total"]
    assert all(v == v and v < 5 for v in report["loss"])  # finite
    assert result.stdout.startswith(f"{expected} over 2 devices ({_backend()})")


@pytest.mark.skipif(_backend() != "torch", reason="the torch refusal")
def test_data_parallel_is_refused_under_torch():
    env = dict(os.environ, KERAS_BACKEND="torch")
    result = subprocess.run(
        [sys.executable, "-m", "xraykit", "data-parallel", "--devices", "2", "--steps", "1"],
        env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode != 0
    assert "not torch" in result.stderr and "Traceback" not in result.stderr


@needs_jax_or_tf
def test_virtual_devices_refused_after_backend_start():
    import keras

    from xraykit import distribute

    keras.ops.ones((1,))  # the backend is running in this process with its default devices
    with pytest.raises(RuntimeError, match="fresh process"):
        distribute.virtual_cpu_devices(3)


def _platform_devices(backend):
    """The backend's own device listing: its GPUs, or its CPUs where it has none."""
    import keras

    if backend == "jax":
        try:
            gpus = keras.distribution.list_devices("gpu")
        except RuntimeError:  # no GPU platform in this JAX install
            gpus = []
        return gpus or keras.distribution.list_devices("cpu")
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


def _type_and_index(name):
    """``("cpu", 0)`` from ``"cpu:0"`` or ``"/job:localhost/replica:0/task:0/device:CPU:0"``."""
    kind, index = name.rsplit(":", 2)[-2:]
    return kind.rsplit("/", 1)[-1].split(":")[-1].lower(), int(index)


@needs_jax_or_tf
def test_default_devices_are_the_platforms_gpus_else_cpus():
    from xraykit.distribute.data_parallel import _devices

    devices = _devices(None)
    expected = _platform_devices(_backend())
    assert devices
    assert [_type_and_index(d) for d in devices] == [_type_and_index(d) for d in expected]
    assert _devices(("cpu:0",)) == ["cpu:0"]
