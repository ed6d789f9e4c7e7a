"""Tests of what xraykit.training.fit refuses, and of a loss that becomes NaN during training.

Before these checks: ``epochs=0`` silently trained the profile's epochs, a validation split of
one class gave ``val_auc`` 0.0 and that epoch was saved as the best, NaN images trained to a
NaN loss whose epoch became ``best.keras``, and a NaN loss went on for every epoch asked.
"""

import types

import keras
import numpy as np
import pytest

from xraykit import training


def _data(**changes):
    rng = np.random.default_rng(0)
    data = dict(x_train=rng.random((32, 8, 8, 1), dtype=np.float32),
                y_train=np.tile([0, 1], 16),
                x_val=rng.random((16, 8, 8, 1), dtype=np.float32),
                y_val=np.tile([0, 1], 8), task="binary")
    data.update(changes)
    return types.SimpleNamespace(**data)


def _model():
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(1, activation="sigmoid")])
    training.compile_model(model, task="binary", learning_rate=1e-3)
    return model


@pytest.mark.parametrize("option, value", [("epochs", 0), ("epochs", -1), ("epochs", 1.5),
                                           ("batch_size", 0), ("batch_size", -4)])
def test_counts_are_refused_before_training(option, value, tmp_path):
    with pytest.raises(ValueError, match=f"{option} must be a whole number >= 1"):
        training.fit(_model(), _data(), "smoke", run_dir=tmp_path, verbose=0,
                     **{"epochs": 1, option: value})
    assert not (tmp_path / "history.csv").exists()  # refused before anything was written


def _with_bad_value(shape, value, where):
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    x[where] = value
    return x


@pytest.mark.parametrize("changes, message", [
    (dict(y_val=np.zeros(16, int)),
     r"data\.y_val holds one class only \(class 0\): val AUC is undefined"),
    (dict(y_train=np.ones(32, int)), r"data\.y_train holds one class only \(class 1\)"),
    (dict(y_val=np.full(16, np.nan)), r"data\.y_val holds one class only \(no known label\)"),
    (dict(x_train=_with_bad_value((32, 8, 8, 1), np.nan, (3, 2, 2, 0))),
     r"data\.x_train holds 1 NaN or infinite value\(s\) \(the first at index \(3, 2, 2, 0\)"),
    (dict(x_val=_with_bad_value((16, 8, 8, 1), np.inf, (1, 0, 0, 0))),
     r"data\.x_val holds 1 NaN or infinite"),
    (dict(y_train=np.r_[np.inf, np.tile([0.0, 1.0], 16)[1:]]), r"data\.y_train holds 1 infinite"),
    (dict(y_val=np.tile([0, 1], 4)), r"data\.x_val holds 16 images but data\.y_val 8 labels"),
    (dict(x_val=np.zeros((0, 8, 8, 1), np.float32), y_val=np.zeros(0)), r"data\.x_val is empty"),
    (dict(x_val=None), "data has no x_val"),
])
def test_bad_splits_are_refused_naming_the_split(changes, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        training.fit(_model(), _data(**changes), "smoke", epochs=1, run_dir=tmp_path,
                     verbose=0)
    assert not (tmp_path / "best.keras").exists()


def test_unknown_labels_need_a_loss_that_skips_them(tmp_path):
    labels = np.tile([0.0, 1.0], 16)
    labels[5] = np.nan
    with pytest.raises(ValueError, match=r"data\.y_train holds 1 unknown label\(s\) \(NaN or "
                                         r"-1\), but the loss .* does not skip them"):
        training.fit(_model(), _data(y_train=labels), "smoke", epochs=1, run_dir=tmp_path,
                     verbose=0)


def _nan_loss(y_true, y_pred):
    """A loss that is NaN on every backend: the log of a negative number."""
    return keras.ops.mean(keras.ops.log(y_pred - 2.0))


def test_a_nan_loss_stops_training_and_is_never_the_best_epoch(tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss=_nan_loss, metrics=[keras.metrics.AUC(name="auc")])
    with pytest.raises(training.NonFiniteLossError,
                       match="loss became nan at epoch 0, batch 0, so training stopped") as info:
        training.fit(model, _data(), "smoke", epochs=3, batch_size=8, run_dir=tmp_path,
                     verbose=0, class_weight=None)
    assert (info.value.epoch, info.value.batch) == (0, 0)
    assert "No epoch was kept" in str(info.value)
    assert len(info.value.history.history["loss"]) == 1  # stopped, not three NaN epochs
    assert not (tmp_path / "best.keras").exists()  # before: val_auc 0.0 saved as the best


def test_a_diverged_epoch_never_replaces_the_best(tmp_path):
    model = _model()
    checkpoint = training.BestCheckpoint(tmp_path, restore_best=False, save=False)
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    checkpoint.on_epoch_begin(0)
    checkpoint.on_epoch_end(0, {"loss": 0.6, "val_loss": 0.7, "val_auc": 0.61})
    for epoch, logs in ((1, {"loss": float("nan"), "val_loss": 0.5, "val_auc": 0.99}),
                        (2, {"loss": 0.4, "val_loss": float("inf"), "val_auc": 0.98})):
        checkpoint.on_epoch_end(epoch, logs)
    assert (checkpoint.best, checkpoint.best_epoch) == (0.61, 0)


def test_stop_on_non_finite_loss_records_where():
    callback = training.StopOnNonFiniteLoss()
    callback.set_model(_model())
    callback.on_epoch_begin(2)
    callback.on_batch_end(0, {"loss": 0.3})
    assert callback.epoch is None and not callback.model.stop_training
    callback.on_batch_end(7, {"loss": float("inf")})
    assert (callback.epoch, callback.batch, callback.loss) == (2, 7, float("inf"))
    assert callback.model.stop_training
    assert "epoch 2, batch 7" in callback.message(0.1)


@pytest.mark.parametrize("threshold", [1.5, -0.1, float("nan")])
def test_metric_thresholds_are_checked(threshold):
    with pytest.raises(ValueError, match="threshold must be a finite number in"):
        training.Specificity(threshold=threshold)
    with pytest.raises(ValueError, match="threshold must be a finite number in"):
        training.task_metrics("binary", threshold=threshold)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
@pytest.mark.parametrize("damaged", ["training_metadata.json", "latest.weights.h5"])
def test_a_damaged_backup_is_named_when_resuming(damaged, tmp_path):
    backup = tmp_path / "backup"
    backup.mkdir()
    model = _model()
    model.save_weights(backup / "latest.weights.h5")
    (backup / "training_metadata.json").write_text('{"epoch": 1, "batch": 0}')
    target = backup / damaged
    target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 3])
    with pytest.raises(ValueError, match="the backup of an interrupted run cannot be read.*"
                                         "delete this folder") as info:
        training.fit(model, _data(), "smoke", epochs=2, run_dir=tmp_path, verbose=0)
    assert str(backup) in str(info.value)
