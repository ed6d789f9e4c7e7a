"""Losses of lesson 3: numbers against hand computations, masking, and save/reload."""

import math

import keras
import numpy as np
import pytest

from xraykit import losses

Y = np.array([[1.0], [0.0], [1.0], [0.0]], np.float32)
P = np.array([[0.9], [0.2], [0.3], [0.6]], np.float32)


def _value(loss, y, p):
    return float(keras.ops.convert_to_numpy(loss(y, p)))


def _bce(y, p):
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_class_weights_binary_matches_closed_form_and_sklearn(small_data):
    from sklearn.utils.class_weight import compute_class_weight

    y = small_data.y_train
    weights = losses.class_weights(y)
    n, n_pos = len(y), int(y.sum())
    assert weights[0] == pytest.approx(n / (2 * (n - n_pos)))
    assert weights[1] == pytest.approx(n / (2 * n_pos))
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=y.ravel())
    assert [weights[0], weights[1]] == pytest.approx(expected.tolist())
    # The rarer class weighs more (PneumoniaMNIST: ~3 pneumonia per normal, so "normal").
    rarer = 0 if n - n_pos < n_pos else 1
    assert weights[rarer] > 1 > weights[1 - rarer]


def test_class_weights_per_label_ignores_unknowns_and_flags_one_class_labels():
    y = np.array([[1, 0, 1], [0, 0, 1], [0, -1, 1], [np.nan, 1, 1]], np.float32)
    with pytest.warns(UserWarning, match="only one class"):
        w = losses.class_weights(y)
    assert w.shape == (3, 2)
    # label 0: 3 known, 1 positive -> [3/(2*2), 3/(2*1)]; label 1: 3 known, 1 positive.
    np.testing.assert_allclose(w[0], [0.75, 1.5])
    np.testing.assert_allclose(w[1], [0.75, 1.5])
    np.testing.assert_allclose(w[2], [1.0, 1.0])  # all positive: nothing to balance
    with pytest.raises(ValueError, match=r"0/1 labels .*found \[2.0\]"):
        losses.class_weights(np.array([0, 1, 2]), per_label=True)
    with pytest.raises(ValueError, match=r"class indices; found \[0.5\]"):
        losses.class_weights(np.array([0, 0.5, 1]))
    with pytest.raises(ValueError, match="one label column"):
        losses.class_weights(np.array([[0, 1], [1, 0]]), per_label=False)


def test_class_weight_for_fit_resolves_balanced_and_refuses_double_weighting():
    y = np.array([0, 1, 1, 1])
    balanced = losses.class_weights(y)
    assert losses.class_weight_for_fit("balanced", y) == balanced
    assert losses.class_weight_for_fit(None, y) is None
    assert losses.class_weight_for_fit({0: 1.0, 1: 3.0}, y) == {0: 1.0, 1: 3.0}
    assert losses.class_weight_for_fit("balanced", np.eye(4)[:, :2], task="multilabel") is None
    weighted = losses.get_loss("weighted_bce", y_train=y)
    with pytest.warns(UserWarning, match="WeightedBinaryCrossentropy already weights"):
        assert losses.class_weight_for_fit("balanced", y, loss=weighted) is None
    masked = losses.get_loss("masked_bce", y_train=y, balanced=True)
    with pytest.warns(UserWarning, match="already weights the classes"):
        assert losses.class_weight_for_fit("balanced", y, loss=masked) is None
    unweighted = losses.get_loss("masked_bce")
    assert losses.class_weight_for_fit("balanced", y, loss=unweighted) == balanced
    with pytest.raises(ValueError, match="'balanced', None or a dict, not 'balance'"):
        losses.class_weight_for_fit("balance", y)


def _sklearn_balanced(y):
    """scikit-learn's "balanced" weights n / (n_classes * n_c) over the known labels (reference)."""
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.asarray(y, np.float64).reshape(-1)
    labels = labels[~np.isnan(labels) & (labels >= 0)].astype(int)
    classes = np.unique(labels)
    weights = compute_class_weight("balanced", classes=classes, y=labels)
    return {int(c): float(w) for c, w in zip(classes, weights)}


@pytest.mark.parametrize("y, expected", [
    (np.array([0, 1, 1, 1]), {0: 4 / 2, 1: 4 / 6}),
    (np.array([[0], [1], [np.nan], [1], [0], [1]]), {0: 5 / 4, 1: 5 / 6}),
    (np.array([1, 0, 0, -1, 0, 0, 1, 0], np.float32), {0: 7 / 10, 1: 7 / 4}),  # -1 is unknown
])
def test_class_weights_binary_are_sklearns_balanced_weights(y, expected):
    weights = losses.class_weights(y)
    assert weights == pytest.approx(expected)
    assert weights == pytest.approx(_sklearn_balanced(y))
    # The per-label form gives the same numbers as one row.
    np.testing.assert_allclose(losses.class_weights(y, per_label=True), [[weights[0], weights[1]]])


def test_class_weights_multiclass_are_sklearns_balanced_weights():
    y = np.array([0, 2, 2, 1, 2, 2, 1, 2, np.nan])
    weights = losses.class_weights(y)
    assert weights == pytest.approx(_sklearn_balanced(y))
    assert weights == pytest.approx({0: 8 / 3, 1: 8 / 6, 2: 8 / 15})
    with pytest.warns(UserWarning, match="nothing to balance"):
        assert losses.class_weights(np.ones(5)) == {0: 1.0, 1: 1.0}


def test_weighted_bce_matches_hand_computation():
    loss = losses.WeightedBinaryCrossentropy(positive_weight=3.0, negative_weight=0.5)
    hand = np.mean([(3.0 if y else 0.5) * _bce(y, p) for y, p in zip(Y.ravel(), P.ravel())])
    assert _value(loss, Y, P) == pytest.approx(hand, rel=1e-5)
    # Unit weights give exactly Keras's BCE; logits give the same as probabilities.
    plain = losses.WeightedBinaryCrossentropy()
    assert _value(plain, Y, P) == pytest.approx(
        _value(keras.losses.BinaryCrossentropy(), Y, P), rel=1e-5)
    logits = np.log(P / (1 - P))
    from_logits = losses.WeightedBinaryCrossentropy(3.0, 0.5, from_logits=True)
    assert _value(from_logits, Y, logits) == pytest.approx(hand, rel=1e-4)


def test_weighted_bce_per_label_weights_and_from_labels():
    y = np.array([[1, 0], [0, 0], [0, 1], [0, 0]], np.float32)
    p = np.array([[0.7, 0.1], [0.4, 0.2], [0.2, 0.6], [0.1, 0.5]], np.float32)
    loss = losses.WeightedBinaryCrossentropy.from_labels(y)
    # Each label: 1 positive of 4 -> w+ = 2, w- = 4/6.
    assert loss.positive_weight == pytest.approx([2.0, 2.0])
    hand = np.mean([[(2.0 if y[i, j] else 4 / 6) * _bce(y[i, j], p[i, j]) for j in range(2)]
                    for i in range(4)])
    assert _value(loss, y, p) == pytest.approx(hand, rel=1e-5)


def test_focal_loss_matches_hand_computation():
    gamma, alpha = 2.0, 0.75
    loss = losses.focal_loss(gamma=gamma, alpha=alpha)
    hand = []
    for y, p in zip(Y.ravel(), P.ravel()):
        p_t = p if y else 1 - p
        a_t = alpha if y else 1 - alpha
        hand.append(-a_t * (1 - p_t) ** gamma * math.log(p_t))
    assert _value(loss, Y, P) == pytest.approx(np.mean(hand), rel=1e-5)
    # gamma = 0 and no alpha is plain BCE.
    assert _value(losses.focal_loss(gamma=0.0), Y, P) == pytest.approx(
        np.mean([_bce(y, p) for y, p in zip(Y.ravel(), P.ravel())]), rel=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        losses.focal_loss(alpha=1.5)


def test_label_smoothing_matches_hand_computation():
    s = 0.2
    hand = np.mean([_bce(y * (1 - s) + s / 2, p) for y, p in zip(Y.ravel(), P.ravel())])
    assert _value(losses.smoothed_bce(s), Y, P) == pytest.approx(hand, rel=1e-5)
    smooth = losses.get_loss("smooth", label_smoothing=s)
    assert _value(smooth, Y, P) == pytest.approx(hand, rel=1e-5)
    # Smoothing puts the minimum of the loss for y=1 below p=1.
    curve = losses.loss_curve(losses.smoothed_bce(s), np.linspace(0.01, 0.99, 99), y_true=1)
    assert 0.85 < np.linspace(0.01, 0.99, 99)[np.argmin(curve)] < 0.95


def test_masked_bce_ignores_unknowns_and_averages_over_known():
    y = np.array([[1.0, np.nan, 0.0], [-1.0, 1.0, 0.0]], np.float32)
    p = np.array([[0.8, 0.001, 0.3], [0.999, 0.6, 0.1]], np.float32)
    known = [(1, 0.8), (0, 0.3), (1, 0.6), (0, 0.1)]
    hand = np.mean([_bce(t, q) for t, q in known])
    loss = losses.MaskedBinaryCrossentropy()
    assert _value(loss, y, p) == pytest.approx(hand, rel=1e-5)
    # Changing a prediction where the label is unknown changes nothing.
    p2 = p.copy()
    p2[0, 1], p2[1, 0] = 0.5, 0.01
    assert _value(loss, y, p2) == pytest.approx(hand, rel=1e-5)
    # No known label at all: zero, not NaN.
    assert _value(loss, np.full_like(y, np.nan), p) == 0.0
    # With every label known it equals Keras's BCE.
    full = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    assert _value(loss, full, p) == pytest.approx(
        _value(keras.losses.BinaryCrossentropy(), full, p), rel=1e-5)


def test_masked_bce_gradient_is_finite_and_zero_on_unknowns():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, activation="sigmoid")])
    model.compile(optimizer="sgd", loss=losses.MaskedBinaryCrossentropy())
    x = np.eye(3, dtype=np.float32)
    y = np.array([[1, np.nan, 0], [np.nan, np.nan, np.nan], [0, 1, -1]], np.float32)
    before = [w.copy() for w in model.get_weights()]
    loss = float(model.train_on_batch(x, y))
    after = model.get_weights()
    assert np.isfinite(loss)
    assert all(np.all(np.isfinite(w)) for w in after)
    kernel_change = after[0] - before[0]
    # Input row 1 feeds only example 1, whose labels are all unknown: no update there.
    np.testing.assert_array_equal(kernel_change[1], 0.0)
    # Output unit 1 sees a known label only from example 2 (input 2); unknown (0, 1) is ignored.
    assert kernel_change[0, 1] == 0.0 and kernel_change[2, 1] != 0.0


def test_get_loss_names_and_errors():
    y = np.array([[0], [1], [1], [1]])
    assert isinstance(losses.get_loss("bce"), keras.losses.BinaryCrossentropy)
    weighted = losses.get_loss("weighted_bce", y_train=y)
    assert weighted.positive_weight == pytest.approx(4 / 6)
    assert weighted.negative_weight == pytest.approx(2.0)
    focal = losses.get_loss("focal", y_train=y, alpha="balanced")
    assert isinstance(focal, keras.losses.BinaryFocalCrossentropy)
    assert focal.get_config()["alpha"] == pytest.approx(0.25)  # 1 negative in 4
    # Another prevalence than the Keras default's 0.25, so ignoring "balanced" would fail here.
    focal = losses.get_loss("focal", y_train=np.array([0, 0, 0, 1, 1]), alpha="balanced")
    assert focal.get_config()["alpha"] == pytest.approx(0.6)
    assert isinstance(losses.get_loss("masked_bce"), losses.MaskedBinaryCrossentropy)
    masked = losses.get_loss("masked_bce", y_train=y, balanced=True)
    assert masked.positive_weight == pytest.approx(4 / 6)  # one label: scalar weights
    assert masked.negative_weight == pytest.approx(2.0)
    same = keras.losses.MeanSquaredError()
    assert losses.get_loss(same) is same
    # Any other name is Keras's own loss: categorical cross-entropy is -log(p of the class).
    keras_loss = losses.get_loss("categorical_crossentropy")
    one_hot, probs = np.array([[0.0, 1.0, 0.0]]), np.array([[0.2, 0.7, 0.1]])
    assert np.mean(keras.ops.convert_to_numpy(keras_loss(one_hot, probs))) == pytest.approx(
        -math.log(0.7), rel=1e-5)
    with pytest.raises(ValueError, match="needs y_train"):
        losses.get_loss("weighted_bce")
    with pytest.raises(ValueError, match="Unknown loss"):
        losses.get_loss("no_such_loss")


@pytest.mark.parametrize("name", ["weighted_bce", "focal", "smooth", "masked_bce"])
def test_model_with_each_loss_saves_and_reloads(name, tmp_path):
    y = np.array([[0, 1], [1, 1], [1, 0], [0, 0], [1, 1], [0, 1]], np.float32)
    x = np.random.default_rng(0).random((6, 4)).astype(np.float32)
    loss = losses.get_loss(name, y_train=y, **({"gamma": 1.5} if name == "focal" else {}))
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="sigmoid")])
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert type(reloaded.loss) is type(loss)
    assert reloaded.loss.get_config() == loss.get_config()
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    assert reloaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0),
                                                               rel=1e-5)


def test_weighted_bce_changes_training_on_real_imbalanced_data(small_data):
    """On PneumoniaMNIST (1:3), weighting raises the mean score of normal images less."""
    y = small_data.y_train
    weighted = losses.get_loss("weighted_bce", y_train=y)
    plain = keras.losses.BinaryCrossentropy()
    # A constant predictor at the positive rate minimises plain BCE; balanced weights move
    # the optimal constant to 0.5.
    rate = float(y.mean())
    const = np.full(y.shape, rate, np.float32)
    half = np.full(y.shape, 0.5, np.float32)
    assert _value(plain, y, const) < _value(plain, y, half)
    assert _value(weighted, y, half) < _value(weighted, y, const)


def test_hide_labels_marks_the_requested_fraction():
    y = np.ones((2000, 3), np.int32)
    hidden = losses.hide_labels(y, fraction=0.3, seed=1)
    assert hidden.dtype == np.float32 and hidden.shape == y.shape
    assert 0.27 < np.isnan(hidden).mean() < 0.33
    assert np.all(hidden[~np.isnan(hidden)] == 1)
    np.testing.assert_array_equal(np.isnan(losses.hide_labels(y, 0.3, seed=1)), np.isnan(hidden))
    assert np.all(losses.hide_labels(y, 0.5, value=-1)[:, 0] != 0)
    with pytest.raises(ValueError, match="fraction"):
        losses.hide_labels(y, 1.0)


def test_hide_labels_is_independent_of_labels_drawn_with_the_same_seed():
    """Phantom labels drawn by default_rng(seed) must not be hidden positives-first."""
    labels = (np.random.default_rng(42).random((4000, 4)) < 0.5).astype(np.int32)
    hidden = losses.hide_labels(labels, fraction=0.3, seed=42)
    np.testing.assert_allclose(losses.positive_fraction(hidden), labels.mean(axis=0), atol=0.03)


def test_prior_logit_is_the_log_odds_of_the_known_labels():
    np.testing.assert_allclose(losses.prior_logit(np.array([0, 1, 1, 1])), [math.log(3)])
    y = np.array([[1, 0], [np.nan, 1], [0, -1], [1, 0], [1, 1]], np.float32)
    np.testing.assert_allclose(losses.prior_logit(y), [math.log(3), 0.0])
    # A sigmoid of the prior logit is the prevalence among the known labels.
    np.testing.assert_allclose(1 / (1 + np.exp(-losses.prior_logit(y))),
                               losses.positive_fraction(y))
    with pytest.raises(ValueError, match=r"column\(s\) \[1\] have only one class"):
        losses.prior_logit(np.array([[1, 1], [0, 1]]))
