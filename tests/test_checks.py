"""Tests of xraykit.checks and of the entry points of evaluation and calibration that use it.

Each bad value must be refused with a ValueError whose message names the argument, never
turned into a silent number (an interval with low > high, a temperature of 0 that rounds every
probability to 0 or 1, a threshold of 1.5 that predicts nothing).
"""

import re

import numpy as np
import pytest

from xraykit import calibration, checks, evaluation

Y = np.array([0, 1, 0, 1, 1, 0, 1, 0])
SCORES = np.array([0.1, 0.8, 0.3, 0.6, 0.9, 0.2, 0.4, 0.5])


@pytest.mark.parametrize("value", [0, -1, 2.5, float("nan"), float("inf"), True, "3", None])
def test_counts_must_be_whole_numbers_of_at_least_one(value):
    with pytest.raises(ValueError, match="epochs must be a whole number >= 1"):
        checks.check_count(value, "epochs")


def test_counts_accept_whole_numbers_of_any_integer_type():
    assert checks.check_count(np.int64(3), "n") == 3
    assert checks.check_count(4.0, "n") == 4
    assert checks.check_count(0, "n", minimum=0) == 0


@pytest.mark.parametrize("value", [0, 1, -0.1, 1.5, float("nan"), float("inf"), "0.05", None])
def test_levels_lie_strictly_between_zero_and_one(value):
    with pytest.raises(ValueError, match=r"alpha must be a (finite )?number in \(0, 1\)"):
        checks.check_level(value, "alpha")


@pytest.mark.parametrize("value", [-0.01, 1.01, float("nan"), float("-inf")])
def test_thresholds_lie_in_the_unit_interval(value):
    with pytest.raises(ValueError, match=r"threshold must be a finite number in \[0, 1\]"):
        checks.check_threshold(value)
    assert checks.check_threshold(0) == 0.0 and checks.check_threshold(1) == 1.0


@pytest.mark.parametrize("value", [0, -2, float("nan"), float("inf")])
def test_positive_scales(value):
    with pytest.raises(ValueError, match=r"temperature must be a finite number in \(0, inf\)"):
        checks.check_positive(value, "temperature")


def test_finite_arrays_name_the_argument_and_the_first_bad_value():
    x = np.zeros((2, 3))
    x[1, 2] = np.inf
    with pytest.raises(ValueError, match=r"images holds 1 NaN or infinite value\(s\) \(the "
                                         r"first at index \(1, 2\)\)"):
        checks.check_finite_array(x, "images")
    with pytest.raises(ValueError, match="labels is empty"):
        checks.check_finite_array([], "labels")
    with pytest.raises(ValueError, match="labels must hold numbers"):
        checks.check_finite_array(["a", "b"], "labels")
    # NaN may mean "unknown" in labels; infinity never does.
    assert checks.check_finite_array([0, np.nan, 1], "labels", allow_nan=True).size == 3
    with pytest.raises(ValueError, match="infinite"):
        checks.check_finite_array([0, np.inf], "labels", allow_nan=True)


@pytest.mark.parametrize("labels, found", [([0, 1, 3], "[3]"), ([0, -1, 2], "[-1]"),
                                           ([0, 1.5, 2], "[1.5]")])
def test_class_indices_must_name_a_column(labels, found):
    with pytest.raises(ValueError, match=rf"class indices 0\.\.2.*found {re.escape(found)}"):
        checks.check_class_indices(labels, 3)


@pytest.mark.parametrize("name", ["", " ", ".", "..", "a/b", "../up", "a\\b", "/abs", "x\0y"])
def test_folder_names_cannot_leave_their_folder(name):
    with pytest.raises(ValueError, match="--project-name .* must be one folder name"):
        checks.check_folder_name(name, "--project-name")
    assert checks.check_folder_name("random_2", "--project-name") == "random_2"


# ------------------------------------------------------------------------------------------
# evaluation
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("threshold", [1.5, -0.2, float("nan")])
def test_metrics_refuse_thresholds_outside_the_unit_interval(threshold):
    for call in (lambda: evaluation.binary_metrics(Y, SCORES, threshold=threshold),
                 lambda: evaluation.confusion(Y, SCORES, threshold=threshold),
                 lambda: evaluation.bootstrap_ci(Y, SCORES, "accuracy", n_boot=5,
                                                 threshold=threshold)):
        with pytest.raises(ValueError, match="threshold must be a finite number in"):
            call()


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_metrics_refuse_non_finite_scores(bad):
    scores = SCORES.copy()
    scores[3] = bad
    with pytest.raises(ValueError, match="y_score contains NaN or infinite values"):
        evaluation.binary_metrics(Y, scores)
    with pytest.raises(ValueError, match="score_b contains NaN or infinite"):
        evaluation.paired_bootstrap_ci(Y, SCORES, scores, n_boot=5)


def test_empty_labels_are_named_as_empty():
    with pytest.raises(ValueError, match="y_true is empty"):
        evaluation.binary_metrics([], [])


@pytest.mark.parametrize("alpha", [0, 1, 1.5, -0.05, float("nan")])
def test_bootstrap_refuses_alpha_outside_zero_one(alpha):
    with pytest.raises(ValueError, match=r"alpha must be a finite number in \(0, 1\)"):
        evaluation.bootstrap_ci(Y, SCORES, n_boot=5, alpha=alpha)
    with pytest.raises(ValueError, match=r"alpha must be a finite number in \(0, 1\)"):
        evaluation.paired_bootstrap_ci(Y, SCORES, SCORES[::-1], n_boot=5, alpha=alpha)


@pytest.mark.parametrize("n_boot", [0, -3, 2.5])
def test_bootstrap_refuses_non_counts(n_boot):
    with pytest.raises(ValueError, match="n_boot must be a whole number >= 1"):
        evaluation.bootstrap_ci(Y, SCORES, n_boot=n_boot)


@pytest.mark.parametrize("metric", ["auc", "accuracy", "sensitivity"])
@pytest.mark.parametrize("labels, scores", [([1], [0.3]), (np.zeros(8), SCORES),
                                            (np.ones(8), SCORES)])
def test_bootstrap_needs_both_classes_and_two_images(metric, labels, scores):
    # Before: "ROC AUC needs both classes" for AUC, and for threshold metrics an interval
    # over resamples that were all skipped (IndexError) or one-class values.
    with pytest.raises(ValueError, match="needs at least one positive and one negative"):
        evaluation.bootstrap_ci(labels, scores, metric, n_boot=5)


def test_bootstrap_still_works_on_good_input():
    result = evaluation.bootstrap_ci(Y, SCORES, n_boot=50, alpha=0.1)
    assert result["low"] <= result["value"] <= result["high"]


def test_choose_threshold_target_is_checked():
    with pytest.raises(ValueError, match=r"target must be a finite number in \(0, 1\]"):
        evaluation.choose_threshold(Y, SCORES, method="sensitivity", target=float("nan"))


# ------------------------------------------------------------------------------------------
# calibration
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("temperature", [0, -1.0, float("nan"), float("inf")])
def test_apply_temperature_refuses_non_positive_or_non_finite(temperature):
    # Before: T=0 turned every probability into 0 or 1, T=-1 flipped them, NaN gave NaN.
    with pytest.raises(ValueError, match="temperature must be a finite number in"):
        calibration.apply_temperature(SCORES, temperature)


def test_apply_temperature_still_softens():
    softened = calibration.apply_temperature(SCORES, 2.0)
    assert np.all(np.abs(softened - 0.5) <= np.abs(SCORES - 0.5) + 1e-7)


@pytest.mark.parametrize("n_bins", [0, 2.5, -1])
def test_calibration_bins_are_counts(n_bins):
    with pytest.raises(ValueError, match="n_bins must be a whole number >= 1"):
        calibration.expected_calibration_error(Y, SCORES, n_bins=n_bins)


@pytest.mark.parametrize("bounds, named", [((float("nan"), 5), "bounds\\[0\\]"),
                                           ((0.1, float("inf")), "bounds\\[1\\]"),
                                           ((0.1,), "bounds must be a pair")])
def test_temperature_bounds_are_checked(bounds, named):
    with pytest.raises(ValueError, match=named):
        calibration.TemperatureScaler(bounds=bounds)


@pytest.mark.parametrize("labels", [[0, 1, 5, 2], [0, 1, -1, 2]])
def test_softmax_scaling_refuses_labels_outside_the_classes(labels):
    # Before: 5 raised an IndexError, -1 silently indexed the last class and "fitted".
    probabilities = np.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"y_true must hold class indices 0\.\.2"):
        calibration.TemperatureScaler(mode="softmax").fit(np.array(labels), probabilities)


def test_softmax_scaling_needs_two_classes():
    probabilities = np.eye(3) * 0.8 + 0.1
    with pytest.raises(ValueError, match="at least two classes"):
        calibration.TemperatureScaler(mode="softmax").fit(np.array([0, 0, 0]), probabilities)


def test_temperature_fit_refuses_empty_and_non_finite_scores():
    with pytest.raises(ValueError, match="scores is empty"):
        calibration.TemperatureScaler().fit([], [])
    logits = np.array([-2.0, 1.0, np.nan, 3.0])
    with pytest.raises(ValueError, match="scores holds 1 NaN or infinite"):
        calibration.TemperatureScaler(from_logits=True).fit([0, 1, 0, 1], logits)


# ------------------------------------------------------------------------------------------
# widgets (the sliders would clamp a bad value silently; the static figure would draw it)
# ------------------------------------------------------------------------------------------
@pytest.fixture
def static_widgets(monkeypatch):
    monkeypatch.setenv("XRAYKIT_STATIC_WIDGETS", "1")
    from xraykit import widgets

    return widgets


@pytest.mark.parametrize("call, message", [
    (lambda w: w.threshold_explorer(Y, SCORES, 1.5), "threshold must be a finite number"),
    (lambda w: w.threshold_explorer(Y, SCORES * 3), "y_score must hold probabilities"),
    (lambda w: w.window_level_explorer(np.full((8, 8), 0.5), 0.5, 0.0), "width must be"),
    (lambda w: w.window_level_explorer(np.full((8, 8), 0.5), float("nan")), "center must be"),
    (lambda w: w.window_level_explorer(np.full((8, 8), 128.0)), "path_or_image must be in"),
    (lambda w: w.augmentation_explorer(np.full((8, 8), 0.5), "strongest"), "preset must be"),
    (lambda w: w.augmentation_explorer(np.full((8, 8), 0.5), n=0), "n must be a whole number"),
    (lambda w: w.augmentation_explorer(np.full((8, 8), 0.5), strength=-1), "strength must be"),
    (lambda w: w.augmentation_explorer(np.full((8, 8), np.nan)), "NaN"),
])
def test_widgets_check_their_arguments(static_widgets, call, message):
    with pytest.raises(ValueError, match=message):
        call(static_widgets)
