"""Tests of xraykit.regularization: gap summaries, kernel weights, a real tiny variant."""

import numpy as np
import pytest

from xraykit import regularization


def test_gap_summary_reads_last_and_best_epoch():
    history = {"auc": [0.7, 0.9, 0.99], "val_auc": [0.75, 0.85, 0.8]}
    summary = regularization.gap_summary(history)
    assert summary["train_auc"] == pytest.approx(0.99)
    assert summary["val_auc"] == pytest.approx(0.8)
    assert summary["gap"] == pytest.approx(0.19)
    assert summary["best_val_auc"] == pytest.approx(0.85)
    assert summary["best_epoch"] == 2 and summary["epochs"] == 3
    kept = regularization.gap_summary(history, restored=True)  # early stopping's model
    assert kept["val_auc"] == pytest.approx(0.85) and kept["gap"] == pytest.approx(0.05)
    loss = regularization.gap_summary({"loss": [1.0, 0.5], "val_loss": [0.9, 1.1]}, metric="loss")
    assert loss["best_epoch"] == 1  # lower is better for losses
    with pytest.raises(KeyError, match="val_auc"):
        regularization.gap_summary({"auc": [0.5]})


def test_kernel_weights_and_l1_sparsity():
    import keras

    from xraykit.models import build_model

    model = build_model("small_cnn", width=4, depth=2, batch_norm=True)
    weights = regularization.kernel_weights(model)
    kernels = [layer for layer in model.layers
               if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    assert weights.size == sum(int(np.prod(layer.kernel.shape)) for layer in kernels)
    # Zero half of every kernel: the statistics must see it.
    for layer in kernels:
        k = np.array(layer.kernel)
        k.ravel()[: k.size // 2] = 0.0
        layer.kernel.assign(k)
    stats = regularization.weight_stats(model)
    assert 0.45 <= stats["near_zero"] <= 0.55
    kept = np.concatenate([keras.ops.convert_to_numpy(layer.kernel).ravel() for layer in kernels])
    assert stats["count"] == weights.size
    assert stats["l2"] == pytest.approx(np.linalg.norm(kept.astype(np.float64)), rel=1e-6)
    assert stats["l1"] == pytest.approx(np.abs(kept.astype(np.float64)).sum(), rel=1e-6)


def test_train_variant_and_table(small_data):
    small = small_data.subset(96, 64, 32, seed=0)
    run = regularization.train_variant("L1", small, "smoke", model="small_cnn", epochs=2,
                                       build=dict(width=4, depth=1, l1=1e-3))
    assert run.model.layers[-2].kernel_regularizer is not None  # L1 reached the model
    assert run.summary["epochs"] == 2 and run.summary["params"] == run.model.count_params()
    other = regularization.Variant("none", run.model, run.history,
                                   dict(run.summary, best_val_auc=0.0), {})
    table = regularization.summary_table([other, run], sort_by="best_val_auc")
    assert list(table.index) == ["L1", "none"]
    assert table.loc["L1", "val_auc"] == pytest.approx(run.history.history["val_auc"][-1])
    assert np.allclose(table["gap"], table["train_auc"] - table["val_auc"])
