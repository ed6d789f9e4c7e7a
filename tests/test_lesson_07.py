"""Lesson 7's own code (its ``definition`` cells) agrees with xraykit's evaluation helpers.

The notebook writes the percentile bootstrap, the paired bootstrap, the temperature fit and
Grad-CAM (the logit's gradient with the active backend's autodiff) in a few visible lines;
xraykit's ``bootstrap_ci``, ``paired_bootstrap_ci``, ``TemperatureScaler`` and
``explain.grad_cam`` are what the course reuses. These tests run both on real radiographs and a
trained model, under whichever backend the suite runs with.
"""

import keras
import numpy as np
import pytest

from tests.lesson_code import lesson_definitions
from xraykit import calibration, evaluation, explain
from xraykit.models import build_model
from xraykit.training import compile_model


@pytest.fixture(scope="module")
def lesson():
    return lesson_definitions("07")


@pytest.fixture(scope="module")
def trained(small_data):
    """A small CNN trained for one epoch on real radiographs, with its scores."""
    keras.utils.set_random_seed(0)
    model = build_model("small_cnn", small_data.image_shape, width=8, seed=0)
    compile_model(model, task="binary", learning_rate=3e-3)
    model.fit(small_data.x_train, small_data.y_train, epochs=1, batch_size=64, verbose=0)
    scores = {split: evaluation.predict_scores(model, getattr(small_data, f"x_{split}"))
              for split in ("val", "test")}
    return model, scores


def test_bootstrap_auc_is_bootstrap_ci(lesson, small_data, trained):
    _, scores = trained
    y = small_data.y_test.ravel()
    ours = lesson.bootstrap_auc(y, scores["test"], n_boot=200, seed=3)
    ci = evaluation.bootstrap_ci(y, scores["test"], "auc", n_boot=200, seed=3)
    np.testing.assert_allclose(ours, [ci["value"], ci["low"], ci["high"]])
    assert ci["low"] < ci["value"] < ci["high"]
    other_seed = lesson.bootstrap_auc(y, scores["test"], n_boot=200, seed=4)
    assert other_seed[1:] != ours[1:]  # the interval comes from the draws, not a formula


def test_paired_bootstrap_auc_is_paired_bootstrap_ci(lesson, small_data, trained):
    _, scores = trained
    y = small_data.y_test.ravel()
    rng = np.random.default_rng(0)
    other = np.clip(scores["test"].ravel() + rng.normal(0, 0.05, len(y)), 0, 1)
    ours = lesson.paired_bootstrap_auc(y, scores["test"].ravel(), other, n_boot=200, seed=1)
    paired = evaluation.paired_bootstrap_ci(y, scores["test"], other, "auc", n_boot=200, seed=1)
    np.testing.assert_allclose(ours, [paired["value"], paired["low"], paired["high"]])
    assert paired["low"] < paired["high"]


def test_fit_temperature_is_temperature_scaler(lesson, small_data):
    # Scores with signal, on the real labels: a one-epoch model's are near chance on smoke data
    # and would put both temperatures at the search bound, where the ratio below means nothing.
    y = small_data.y_val.ravel()
    rng = np.random.default_rng(0)
    scores = 1 / (1 + np.exp(-(2.0 * (2 * y - 1) + rng.normal(0, 2.0, len(y)))))
    sharpened = calibration.apply_temperature(scores, 0.4)  # an over-confident copy
    for p in (scores, sharpened):
        t = lesson.fit_temperature(y, p)
        scaler = calibration.TemperatureScaler(on_bound="ignore").fit(y, p)
        np.testing.assert_allclose(t, scaler.temperature_found, rtol=1e-6)
        assert not scaler.at_bound
    # The sharpened scores need a temperature about 1 / 0.4 times the original's.
    ratio = lesson.fit_temperature(y, sharpened) / lesson.fit_temperature(y, scores)
    assert ratio == pytest.approx(1 / 0.4, rel=0.05)


def test_grad_cam_by_hand_is_xraykit_grad_cam(lesson, small_data, trained):
    model, _ = trained
    images = small_data.x_test[:16]
    for layer in ("block3_relu", "block2_relu"):
        ours = lesson.grad_cam_by_hand(model, images, layer)
        theirs = explain.grad_cam(model, images, layer_name=layer)
        assert ours.shape == theirs.shape == images.shape[:3]
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert ours.max() == pytest.approx(1.0)


def test_grad_cam_by_hand_on_a_saturated_wrong_prediction(lesson, small_data):
    """The notebook's map uses the logit: a prediction saturated at exactly 1.0 keeps its map."""
    model = build_model("small_cnn", small_data.image_shape, width=8, seed=0)
    dense = model.get_layer("logits")
    kernel, bias = dense.get_weights()
    dense.set_weights([np.abs(kernel), bias + 60.0])  # every logit far past float32's 1.0,
    # and every channel evidence FOR pneumonia, so the map cannot be empty for lack of it
    negatives = small_data.x_test[small_data.y_test.ravel() == 0][:4]
    p = np.asarray(model.predict(negatives, verbose=0))
    assert (p == 1.0).all(), "the prediction must be saturated for this test to mean anything"
    maps = lesson.grad_cam_by_hand(model, negatives, "block3_relu")
    assert np.isfinite(maps).all()
    assert (maps.max(axis=(1, 2)) == pytest.approx(1.0)), "empty map for a saturated prediction"
    np.testing.assert_allclose(maps, explain.grad_cam(model, negatives), atol=1e-5)


def test_logit_gradients_match_finite_differences(lesson, small_data, trained):
    model, _ = trained
    feature_map = model.get_layer("block3_relu").output
    head = keras.Model(feature_map, model.get_layer("logits").output)
    features = keras.ops.convert_to_numpy(
        keras.Model(model.input, feature_map)(small_data.x_test[:2], training=False))
    grads = lesson.logit_gradients(head, features)
    assert grads.shape == features.shape
    position = (1, 3, 4, int(np.argmax(np.abs(grads[1, 3, 4]))))
    step = np.zeros_like(features)
    step[position] = 1e-2
    logit = lambda f: float(keras.ops.convert_to_numpy(head(f, training=False))[1, 0])  # noqa: E731
    numeric = (logit(features + step) - logit(features - step)) / 2e-2
    assert grads[position] == pytest.approx(numeric, rel=1e-2, abs=1e-4)


def test_fit_temperature_at_its_bound_is_what_the_scaler_refuses(lesson):
    """Scores all below 0.5 while most labels are 1: both searches end at the upper bound.

    The notebook's check (log T within 1e-3 of a bound) and TemperatureScaler.at_bound agree.
    """
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.62).astype(int)
    shifted = 1 / (1 + np.exp(-(rng.normal(-1.0, 0.3, 200) + 0.2 * y)))
    bounds = (0.05, 20.0)
    t = lesson.fit_temperature(y, shifted, bounds=bounds)
    assert np.isclose(np.log(t), np.log(bounds), atol=1e-3).any()
    scaler = calibration.TemperatureScaler(bounds=bounds, on_bound="ignore").fit(y, shifted)
    assert scaler.at_bound == "upper" and scaler.temperature == 1.0
    np.testing.assert_allclose(t, scaler.temperature_found, rtol=1e-6)
