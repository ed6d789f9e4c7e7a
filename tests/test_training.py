"""Tests of xraykit.training: compile per task, fit on real data, metrics, callbacks."""

import keras
import numpy as np
import pytest

from xraykit.models import build_model
from xraykit.training import (
    Specificity,
    compile_model,
    fit,
    task_metrics,
)


def test_fit_one_epoch_on_real_data(small_data, tmp_path):
    model = build_model("small_cnn", small_data.image_shape, width=8, depth=2)
    compile_model(model, task="binary", optimizer="adam", learning_rate=1e-3)
    history = fit(model, small_data, profile="smoke", epochs=1, run_dir=tmp_path,
                  verbose=0)
    h = history.history
    for key in ("loss", "auc", "val_auc", "val_ap", "val_sensitivity", "val_specificity",
                "val_precision", "val_recall", "val_accuracy"):
        assert key in h and len(h[key]) == 1, key
    assert np.isfinite(h["loss"][0])
    # val_auc is the AUC on the validation split of the model fit returns (the best epoch).
    again = model.evaluate(small_data.x_val, small_data.y_val, verbose=0,
                           return_dict=True)
    assert h["val_auc"][0] == pytest.approx(again["auc"], abs=1e-5)
    assert h["val_sensitivity"][0] == pytest.approx(h["val_recall"][0])
    assert len(h["epoch_seconds"]) == 1 and h["epoch_seconds"][0] > 0
    assert (tmp_path / "best.keras").exists()
    assert "val_auc" in (tmp_path / "history.csv").read_text().splitlines()[0]
    reloaded = keras.saving.load_model(tmp_path / "best.keras")  # custom metrics deserialize
    assert reloaded.predict(small_data.x_val[:4], verbose=0).shape == (4, 1)


def test_specificity_and_sensitivity_match_hand_computation():
    y_true = np.array([[0], [0], [0], [1], [1], [0]], dtype="float32")
    y_pred = np.array([[0.1], [0.7], [0.4], [0.9], [0.3], [0.55]], dtype="float32")
    # threshold 0.5: negatives 0.1 0.7 0.4 0.55 -> TN 2, FP 2; positives 0.9 0.3 -> TP 1, FN 1
    metrics = {m.name: m for m in task_metrics("binary", threshold=0.5)}
    for name in ("specificity", "sensitivity", "precision"):
        metrics[name].update_state(y_true, y_pred)
    assert float(metrics["specificity"].result()) == pytest.approx(0.5)
    assert float(metrics["sensitivity"].result()) == pytest.approx(0.5)
    assert float(metrics["precision"].result()) == pytest.approx(1 / 3)
    weighted = Specificity(threshold=0.6)
    weighted.update_state(y_true, y_pred, sample_weight=np.array([1, 3, 1, 1, 1, 1.0]))
    assert float(weighted.result()) == pytest.approx(3 / 6)  # TN 1+1+1, FP 3


def test_compile_per_task_and_multiclass_auc():
    model = build_model("small_cnn", task="multiclass", num_classes=3, width=4, depth=1)
    compile_model(model, task=None)  # inferred from the softmax output
    names = [m.name for m in task_metrics("multiclass", num_classes=3)]
    assert names == ["accuracy", "auc"]
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert {"loss", "accuracy", "auc"} <= set(logs)
    multilabel = build_model("small_cnn", task="multilabel", num_classes=4, width=4, depth=1)
    compile_model(multilabel, task="multilabel", optimizer=keras.optimizers.SGD(0.01))
    yl = (np.random.default_rng(1).random((8, 4)) > 0.5).astype("float32")
    assert "auc" in multilabel.evaluate(x, yl, verbose=0, return_dict=True)


def test_fit_and_compile_errors(small_data):
    with pytest.raises(ValueError, match="not compiled"):
        fit(build_model("small_cnn", width=4, depth=1), small_data, epochs=1)
    with pytest.raises(ValueError, match="task"):
        task_metrics("regression")
    with pytest.raises(ValueError, match="optimizer"):
        compile_model(build_model("small_cnn", width=4, depth=1), optimizer="sgdd")
