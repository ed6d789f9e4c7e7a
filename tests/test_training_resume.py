"""Tests of resuming an interrupted xraykit.training.fit run: best.keras, early stopping, history.

The fault test trains in a subprocess, kills it with SIGKILL after an epoch and resumes the run
in a fresh subprocess; the others interrupt training in-process with an exception raised from a
callback (what a crash between two callbacks looks like to the run folder).
"""

import csv
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import time
import types

import keras
import numpy as np
import pytest

from xraykit.models import build_model
from xraykit.training import BestCheckpoint, compile_model, fit


def _tiny_data(npz_path, n: int = 32, flip: bool = False):
    """32 normal + 32 pneumonia images per split from the real 28 px PneumoniaMNIST."""
    with np.load(npz_path) as d:
        split = {}
        for key in ("train", "val"):
            labels = d[f"{key}_labels"].ravel()
            idx = np.concatenate([np.flatnonzero(labels == c)[:n // 2] for c in (0, 1)])
            split[key] = (d[f"{key}_images"][idx, ..., None].astype("float32") / 255.0,
                          labels[idx, None].astype("float32"))
    (xt, yt), (xv, yv) = split["train"], split["val"]
    return types.SimpleNamespace(x_train=xt, y_train=1 - yt if flip else yt, x_val=xv,
                                 y_val=yv, task="binary")


def _model():
    keras.utils.set_random_seed(0)
    return compile_model(build_model("small_cnn", (28, 28, 1), width=4, depth=1),
                         learning_rate=1e-2,  # TF: no tracing is faster for 2 steps an epoch
                         run_eagerly=keras.backend.backend() == "tensorflow")


def _history(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        return [(int(r["epoch"]), float(r["val_auc"])) for r in csv.DictReader(f)]


class _Interrupt(keras.callbacks.Callback):
    """Raises at the end of an epoch, after fit's own callbacks saved it."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("simulated disconnect")


def test_resume_never_replaces_a_better_best_and_restores_it(pneumonia_npz, tmp_path):
    data, model = _tiny_data(pneumonia_npz), _model()  # one model: compiled once (faster)
    with pytest.raises(KeyboardInterrupt):
        fit(model, data, epochs=4, run_dir=tmp_path, verbose=0, callbacks=[_Interrupt(0)])
    # The stored best is artificially out of reach: no resumed epoch may replace best.keras.
    record = json.loads((tmp_path / "best.json").read_text())
    assert record["monitor"] == "val_auc" and record["epoch"] == 0
    record["best"] = 2.0
    (tmp_path / "best.json").write_text(json.dumps(record))
    best = tmp_path / "best.keras"
    before = (best.read_bytes(), best.stat().st_mtime_ns)

    history = fit(model, data, epochs=4, run_dir=tmp_path, verbose=0, early_stopping=1)

    assert (best.read_bytes(), best.stat().st_mtime_ns) == before
    assert json.loads((tmp_path / "best.json").read_text()) == record
    # Patience counts from the stored best epoch (0): one resumed epoch, then it stops ...
    assert len(history.history["loss"]) == 1
    assert [e for e, _ in _history(tmp_path)] == [0, 1]
    # ... and the model ends with the weights of the epoch before the interruption.
    stored = keras.saving.load_model(best)
    for got, want in zip(model.get_weights(), stored.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_rerun_epoch_is_logged_once_and_best_is_max_of_run(pneumonia_npz, tmp_path,
                                                           monkeypatch):
    data, model = _tiny_data(pneumonia_npz), _model()
    original = keras.callbacks.BackupAndRestore.on_epoch_end

    def dies_while_backing_up_epoch_1(self, epoch, logs=None):
        if epoch == 1:  # history.csv (and maybe best.keras) have epoch 1, the backup not
            raise KeyboardInterrupt("killed while saving the backup")
        original(self, epoch, logs)

    monkeypatch.setattr(keras.callbacks.BackupAndRestore, "on_epoch_end",
                        dies_while_backing_up_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        fit(model, data, epochs=3, run_dir=tmp_path, verbose=0, early_stopping=False)
    assert [e for e, _ in _history(tmp_path)] == [0, 1]
    monkeypatch.setattr(keras.callbacks.BackupAndRestore, "on_epoch_end", original)

    fit(model, data, epochs=3, run_dir=tmp_path, verbose=0, early_stopping=False)
    rows = _history(tmp_path)
    assert [e for e, _ in rows] == [0, 1, 2]  # epoch 1 re-ran: its first row is gone
    record = json.loads((tmp_path / "best.json").read_text())
    assert record["best"] >= max(auc for e, auc in rows if e != 1)

    # The run finished: the same folder now starts a new run, replacing its files. (A fresh
    # model: Keras keeps a resumed fit's first epoch on the model object for later fits.)
    with pytest.warns(UserWarning, match=f"{tmp_path}: no interrupted run to resume"):
        fit(_model(), data, epochs=1, run_dir=tmp_path, verbose=0, early_stopping=False)
    assert [e for e, _ in _history(tmp_path)] == [0]
    assert json.loads((tmp_path / "best.json").read_text())["epoch"] == 0


def test_interrupted_best_save_is_dropped_or_completed(tmp_path):
    best, record = tmp_path / "best.keras", tmp_path / "best.json"
    best.write_bytes(b"old model")
    record.write_text(json.dumps({"monitor": "val_auc", "mode": "max", "best": 0.7,
                                  "epoch": 2}))
    # Killed while writing the new model: the old pair stays, the partial files go.
    (tmp_path / "best.partial.keras").write_bytes(b"half a model")
    (tmp_path / "best.json.partial").write_text('{"monitor": "val_auc", "mode": "max", "best')
    callback = BestCheckpoint(tmp_path)
    callback.on_train_begin()
    assert (callback.best, callback.best_epoch) == (0.7, 2)
    assert best.read_bytes() == b"old model" and sorted(os.listdir(tmp_path)) == [
        "best.json", "best.keras"]
    # Killed between renaming the new model and its record: the record is completed.
    best.write_bytes(b"new model")
    (tmp_path / "best.json.partial").write_text(json.dumps(
        {"monitor": "val_auc", "mode": "max", "best": 0.8, "epoch": 3}))
    callback.on_train_begin()
    assert (callback.best, callback.best_epoch) == (0.8, 3)
    assert sorted(os.listdir(tmp_path)) == ["best.json", "best.keras"]


def test_bad_run_dir_is_named(tmp_path):
    model = _model()
    both_classes = np.array([[0], [1], [0], [1]])  # nothing for the class weights to warn about
    data = types.SimpleNamespace(x_train=np.zeros((4, 28, 28, 1)), y_train=both_classes,
                                 x_val=np.zeros((4, 28, 28, 1)), y_val=both_classes)
    a_file = tmp_path / "run.txt"
    a_file.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match=re.escape(f"{a_file} is a file")):
        fit(model, data, epochs=1, run_dir=a_file, verbose=0)
    under_a_file = re.escape(f"{a_file / 'run'} cannot be created")
    with pytest.raises(NotADirectoryError, match=under_a_file):
        fit(model, data, epochs=1, run_dir=a_file / "run", verbose=0)
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o555)
    if os.access(read_only, os.W_OK):  # root ignores permissions: use a kernel folder
        read_only = pathlib.Path("/proc/self")
        if not read_only.is_dir():
            pytest.skip("running as root without /proc: no unwritable folder to test")
    with pytest.raises(OSError, match=re.escape(f"{read_only} cannot be created or written")):
        fit(model, data, epochs=1, run_dir=read_only, verbose=0)
    assert not list(read_only.glob("history.csv"))


def test_damaged_run_folder_and_missing_monitor_are_named(pneumonia_npz, tmp_path):
    data = _tiny_data(pneumonia_npz, n=8)
    record = tmp_path / "best.json"
    record.write_text("{not json")
    with pytest.raises(ValueError, match=f"{record} is not a best-epoch record.*delete"):
        fit(_model(), data, epochs=1, run_dir=tmp_path, verbose=0)
    record.write_text(json.dumps({"monitor": "val_auc", "mode": "max", "best": 0.9,
                                  "epoch": 1}))
    with pytest.raises(ValueError, match=f"epoch 1 as the best, but {tmp_path / 'best.keras'}"
                                         " is missing"):
        fit(_model(), data, epochs=1, run_dir=tmp_path, verbose=0)
    record.unlink()
    (tmp_path / "history.csv").write_text("epoch,val_auc\n0,0.5\nzero,0.6\n")
    with pytest.raises(ValueError, match=r"history.csv, row 3, column 'epoch'"):
        fit(_model(), data, epochs=1, run_dir=tmp_path, verbose=0)
    (tmp_path / "history.csv").unlink()
    plain = build_model("small_cnn", (28, 28, 1), width=4, depth=1)
    plain.compile(optimizer="adam", loss="binary_crossentropy")  # no AUC metric
    with pytest.raises(ValueError, match="watches 'val_auc'.*compile_model"):
        fit(plain, data, epochs=1, run_dir=tmp_path / "plain", verbose=0)


CHILD = textwrap.dedent('''
    import json, pathlib, sys, time
    import keras
    from test_training_resume import _model, _tiny_data
    from xraykit.training import fit

    npz, run_dir, epochs, flip, stop_after = sys.argv[1:6]
    run_dir = pathlib.Path(run_dir)

    class Marker(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            (run_dir / f"epoch_{epoch}.done").touch()
            if epoch == int(stop_after):
                time.sleep(120)  # the parent kills the process here

    data = _tiny_data(npz, flip=flip == "flip")
    model = _model()
    fit(model, data, epochs=int(epochs), run_dir=run_dir, verbose=0, early_stopping=10,
        callbacks=[Marker()])
    auc = model.evaluate(data.x_val, data.y_val, verbose=0, return_dict=True)["auc"]
    (run_dir / "final.json").write_text(json.dumps({"val_auc": auc}))
''')


def _child(script, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigkilled_run_resumes_in_a_fresh_process(pneumonia_npz, tmp_path):
    script, run_dir = tmp_path / "child.py", tmp_path / "run"
    script.write_text(CHILD)
    first = _child(script, pneumonia_npz, run_dir, 4, "plain", 1)
    deadline = time.monotonic() + 120
    while not (run_dir / "epoch_1.done").exists():
        assert first.poll() is None, first.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the first part never finished epoch 1"
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait()
    best_before = json.loads((run_dir / "best.json").read_text())
    assert [e for e, _ in _history(run_dir)] == [0, 1]

    # The resumed part learns inverted labels, so its epochs are likely worse than the first.
    second = _child(script, pneumonia_npz, run_dir, 4, "flip", -1)
    output = second.communicate(timeout=180)[0]
    assert second.returncode == 0, output[-3000:]

    rows = _history(run_dir)
    assert [e for e, _ in rows] == [0, 1, 2, 3]
    best = json.loads((run_dir / "best.json").read_text())
    aucs = [auc for _, auc in rows]
    assert best["best"] == pytest.approx(max(aucs)) and best["epoch"] == int(np.argmax(aucs))
    assert best["best"] >= best_before["best"]
    # The inverted labels made the resumed epochs worse: the final model is best.keras's,
    # saved by the killed process and restored in the resumed one.
    assert best == best_before and max(aucs[2:]) < best["best"]
    final = json.loads((run_dir / "final.json").read_text())["val_auc"]
    assert final == pytest.approx(best["best"], abs=1e-6)
    data = _tiny_data(pneumonia_npz)
    reloaded = keras.saving.load_model(run_dir / "best.keras")  # saved by another process
    logs = reloaded.evaluate(data.x_val, data.y_val, verbose=0, return_dict=True)
    assert logs["auc"] == pytest.approx(best["best"], abs=1e-6)
