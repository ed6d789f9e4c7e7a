"""Tests of xraykit.runs (and its old name xraykit.regularization): gaps, runs table, kernels."""

import numpy as np
import pytest

from xraykit import runs


def test_gap_summary_reads_last_and_best_epoch():
    history = {"auc": [0.7, 0.9, 0.99], "val_auc": [0.75, 0.85, 0.8]}
    summary = runs.gap_summary(history)
    assert summary["train_auc"] == pytest.approx(0.99)
    assert summary["val_auc"] == pytest.approx(0.8)
    assert summary["gap"] == pytest.approx(0.19)
    assert summary["best_val_auc"] == pytest.approx(0.85)
    assert summary["best_epoch"] == 2 and summary["epochs"] == 3
    kept = runs.gap_summary(history, restored=True)  # early stopping's model
    assert kept["val_auc"] == pytest.approx(0.85) and kept["gap"] == pytest.approx(0.05)
    loss = runs.gap_summary({"loss": [1.0, 0.5], "val_loss": [0.9, 1.1]}, metric="loss")
    assert loss["best_epoch"] == 1  # lower is better for losses
    with pytest.raises(KeyError, match="val_auc"):
        runs.gap_summary({"auc": [0.5]})


def test_kernel_weights_and_l1_sparsity():
    import keras

    from xraykit.models import build_model

    model = build_model("small_cnn", width=4, depth=2, batch_norm=True)
    weights = runs.kernel_weights(model)
    kernels = [layer for layer in model.layers
               if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    assert weights.size == sum(int(np.prod(layer.kernel.shape)) for layer in kernels)
    # Zero half of every kernel: the statistics must see it.
    for layer in kernels:
        k = np.array(layer.kernel)
        k.ravel()[: k.size // 2] = 0.0
        layer.kernel.assign(k)
    stats = runs.weight_stats(model)
    assert 0.45 <= stats["near_zero"] <= 0.55
    assert 0.45 <= stats["exact_zero"] <= 0.55
    kept = np.concatenate([keras.ops.convert_to_numpy(layer.kernel).ravel() for layer in kernels])
    assert stats["count"] == weights.size
    assert stats["l2"] == pytest.approx(np.linalg.norm(kept.astype(np.float64)), rel=1e-6)
    assert stats["l1"] == pytest.approx(np.abs(kept.astype(np.float64)).sum(), rel=1e-6)


def test_exact_zero_differs_from_near_zero():
    from xraykit.models import build_model

    model = build_model("small_cnn", width=4, depth=1)
    layer = model.get_layer("block1_conv")
    k = np.array(layer.kernel)
    k.ravel()[:4] = 1e-6  # tiny but not zero: what L1 under Adam leaves
    k.ravel()[4:6] = 0.0
    layer.kernel.assign(k)
    stats = runs.weight_stats(model, tol=1e-3)
    assert stats["exact_zero"] == pytest.approx(2 / stats["count"])
    assert stats["near_zero"] >= 6 / stats["count"]


def test_summary_table_reads_histories_and_restored_runs(small_data):
    import keras

    from xraykit.models import build_model
    from xraykit.training import compile_model

    model = compile_model(build_model("small_cnn", width=4, depth=1), task="binary")
    history = model.fit(small_data.x_train[:64], small_data.y_train[:64], epochs=2,
                        validation_data=(small_data.x_val[:32], small_data.y_val[:32]),
                        verbose=0)
    assert isinstance(history, keras.callbacks.History)
    curves = {"auc": [0.7, 0.9, 0.99], "val_auc": [0.75, 0.85, 0.8]}
    table = runs.summary_table({"trained": history, "none": curves, "early": curves},
                               sort_by="val_auc", restored=["early"])
    order = [name for name in table.index if name != "trained"]
    assert order == ["early", "none"]  # none ends at 0.8, early keeps its best epoch's 0.85
    assert table.loc["early", "val_auc"] == pytest.approx(0.85)
    assert table.loc["early", "best_epoch"] == 2 and table.loc["none", "epochs"] == 3
    assert table.loc["trained", "val_auc"] == pytest.approx(history.history["val_auc"][-1])
    assert np.allclose(table["gap"], table["train_auc"] - table["val_auc"])
    with pytest.raises(TypeError, match="dict"):
        runs.summary_table([history])


def test_old_module_name_forwards():
    from xraykit import regularization

    for name in regularization.__all__:
        assert getattr(regularization, name) is getattr(runs, name)
