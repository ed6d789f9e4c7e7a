"""xraykit.tasks: one list of task names, one message for a wrong one, one way to infer a task."""

import re

import keras
import numpy as np
import pytest

from xraykit import datasets, inference, models, synthetic, tasks, training

BAD = "multi-label"
MESSAGE = re.escape(f"task must be one of {tasks.TASKS}, not {BAD!r} (did you mean 'multilabel'?)")


def _npz(tmp_path):
    path = tmp_path / "tiny.npz"
    images = np.zeros((4, 8, 8), np.uint8)
    labels = np.array([[0], [1], [0], [1]])
    np.savez(path, **{f"{s}_{k}": v for s in ("train", "val", "test")
                      for k, v in (("images", images), ("labels", labels))})
    return path


def _sigmoid_model(units=1):
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(units, activation="sigmoid")])


def test_a_misspelt_task_is_refused_with_the_same_message_everywhere(tmp_path):
    callers = {
        "check_task": lambda: tasks.check_task(BAD),
        "load_npz": lambda: datasets.load_npz(_npz(tmp_path), task=BAD),
        "build_model": lambda: models.build_model("small_cnn", (28, 28, 1), task=BAD),
        "task_metrics": lambda: training.task_metrics(BAD),
        "compile_model": lambda: training.compile_model(_sigmoid_model(), task=BAD),
    }
    for name, call in callers.items():
        with pytest.raises(ValueError, match=MESSAGE):
            call()
    # Where only some tasks make sense, the message lists those and still suggests.
    with pytest.raises(ValueError, match=re.escape("one of ('binary', 'multilabel'), not "
                                                   "'multi-label' (did you mean 'multilabel'?)")):
        synthetic.phantoms(4, task=BAD)
    # A saved model's settings name the file, then the same message.
    with pytest.raises(ValueError, match=r"save_model\(.*\): argument 'task' must be one of .*"
                                         r"did you mean 'multilabel'"):
        inference.save_model(_sigmoid_model(3), tmp_path / "m.keras", task=BAD)


def test_tuning_refuses_a_misspelt_task_with_the_same_message():
    tuning = pytest.importorskip("xraykit.tuning")
    with pytest.raises(ValueError, match=MESSAGE):
        tuning.XRayHyperModel(task=BAD)


@pytest.mark.parametrize("task, hint", [("Binary", "binary"), ("multi_class", "multiclass"),
                                        ("regression", None), (None, None)])
def test_check_task_suggests_only_close_spellings(task, hint):
    with pytest.raises(ValueError) as caught:
        tasks.check_task(task)
    assert ("did you mean" in str(caught.value)) == (hint is not None)
    if hint:
        assert f"did you mean {hint!r}" in str(caught.value)


def test_task_from_labels():
    assert tasks.task_from_labels(np.array([[0], [1], [1]])) == "binary"
    assert tasks.task_from_labels(np.array([0.0, np.nan, 1.0])) == "binary"  # NaN is unknown
    assert tasks.task_from_labels(np.array([0, 2, 1])) == "multiclass"
    assert tasks.task_from_labels(np.array([[0, 1], [1, 0]])) == "multilabel"


def test_load_npz_infers_the_task_with_task_from_labels(tmp_path):
    path = _npz(tmp_path)
    assert datasets.load_npz(path, name="tiny").task == "binary"
    with np.load(path) as archive:
        arrays = dict(archive)
    arrays["train_labels"] = np.array([[0], [2], [1], [1]])
    np.savez(path, **arrays)
    assert datasets.load_npz(path, name="tiny").task == "multiclass"


@pytest.mark.parametrize("units, activation, expected", [
    (1, "sigmoid", ("binary", 1)), (4, "sigmoid", ("multilabel", 4)),
    (3, "softmax", ("multiclass", 3)),
])
def test_training_and_inference_read_the_task_from_the_model_alike(units, activation, expected):
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(units, activation=activation)])
    assert tasks.task_from_model(model) == expected
    assert inference.model_config(model).task == expected[0]
    loss = training.compile_model(model, task=None).loss
    wanted = {"binary": "binary", "multilabel": "binary", "multiclass": "sparse_categorical"}
    assert wanted[expected[0]] in type(loss).__name__.lower() + str(loss).lower()


def test_tasks_does_not_import_keras():
    import subprocess
    import sys

    code = "import sys, xraykit.tasks; print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
