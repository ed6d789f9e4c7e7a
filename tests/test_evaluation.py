"""Tests of xraykit.evaluation against hand-computed numbers on small arrays."""

import numpy as np
import pytest

from xraykit.evaluation import (
    binary_metrics,
    bootstrap_ci,
    choose_threshold,
    confusion,
    metric_text,
    multilabel_auc,
    paired_bootstrap_ci,
    predict_scores,
    roc_curves,
    why_undefined,
)
from xraykit.tasks import check_binary

Y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
S = np.array([0.1, 0.4, 0.35, 0.8, 0.9, 0.7, 0.3, 0.65])


def test_binary_metrics_by_hand():
    m = binary_metrics(Y.reshape(-1, 1), S, threshold=0.5)
    # predicted positive: 0.8 (neg), 0.9 0.7 0.65 (pos) -> TP 3, FP 1, TN 3, FN 1
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (3, 1, 3, 1)
    assert m["sensitivity"] == pytest.approx(0.75) and m["specificity"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.75) and m["precision"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx(0.75)
    # AUC = fraction of (pos, neg) pairs ranked right: 0.9 beats 4, 0.7 and 0.65 beat 3,
    # 0.3 beats 1 -> 11 of 16
    assert m["auc"] == pytest.approx(11 / 16)
    assert confusion(Y, S, 0.5).tolist() == [[3, 1], [1, 3]]


def test_undefined_metrics_say_why():
    # A threshold above every score: nothing predicted positive, so PPV = TP / (TP + FP) = 0/0.
    m = binary_metrics(Y, S, threshold=0.95)
    assert np.isnan(m["precision"]) and m["tp"] + m["fp"] == 0
    assert why_undefined(m, "precision") == "no image predicted positive"
    assert metric_text(m, "precision") == "undefined (no image predicted positive)"
    assert metric_text(m, "npv") == f"{m['npv']:.3f}" and why_undefined(m, "npv") is None
    assert metric_text(m, "fn") == "4"
    # Nothing predicted negative: NPV undefined; one class only: AUC, AP and specificity.
    assert metric_text(binary_metrics(Y, S, threshold=0.0), "npv") == \
        "undefined (no image predicted negative)"
    ones = binary_metrics([1, 1, 1], [0.2, 0.6, 0.9])
    assert metric_text(ones, "auc") == "undefined (one class only)"
    assert metric_text(ones, "specificity") == "undefined (no negative image)"
    assert metric_text(ones, "sensitivity", digits=2) == "0.67"


def test_paired_bootstrap_ci_of_a_metric_function():
    """Any f(y, score) works, e.g. the ECE difference of a model and its recalibrated copy."""
    from xraykit.calibration import apply_temperature, expected_calibration_error

    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 2.0, 500)
    y = (rng.random(500) < 1 / (1 + np.exp(-z))).astype(int)
    over = 1 / (1 + np.exp(-3 * z))  # over-confident: logits three times too large
    fixed = apply_temperature(over, 3.0)
    result = paired_bootstrap_ci(y, over, fixed, metric=expected_calibration_error,
                                 n_boot=100, seed=0)
    assert result["value"] == pytest.approx(expected_calibration_error(y, over)
                                            - expected_calibration_error(y, fixed))
    assert 0 < result["low"] <= result["value"] <= result["high"]


def test_choose_threshold_methods():
    # Youden: at 0.65 sens 3/4, spec 3/4 (J .5); at 0.7 sens 2/4 spec 3/4; the best is J=.5
    t = choose_threshold(Y, S, "youden")
    m = binary_metrics(Y, S, t)
    assert m["sensitivity"] + m["specificity"] - 1 == pytest.approx(0.5)
    t_sens = choose_threshold(Y, S, "sensitivity", target=1.0)
    assert t_sens == pytest.approx(0.3)  # the lowest positive score
    assert binary_metrics(Y, S, t_sens)["sensitivity"] == 1.0
    t_spec = choose_threshold(Y, S, "specificity", target=1.0)
    assert binary_metrics(Y, S, t_spec)["specificity"] == 1.0
    assert t_spec == pytest.approx(0.9)
    with pytest.raises(ValueError, match="both classes"):
        choose_threshold([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="method"):
        choose_threshold(Y, S, "magic")


def test_roc_curves_and_multilabel_auc():
    y = np.stack([Y, 1 - Y, np.ones_like(Y)], axis=1).astype(float)
    s = np.stack([S, 1 - S, S], axis=1)
    y[0, 1] = np.nan  # an unknown label is skipped
    y = np.concatenate([y, np.full((len(Y), 1), np.nan)], axis=1)
    s = np.concatenate([s, S[:, None]], axis=1)
    aucs = multilabel_auc(y, s, ["a", "b", "c", "d"])
    assert set(aucs) == {"a", "b", "mean"}  # "c" has one class only, "d" no known label
    assert aucs["a"] == pytest.approx(11 / 16)
    curves = roc_curves(Y, S, ["normal", "pneumonia"])
    assert list(curves) == ["pneumonia"] and curves["pneumonia"]["prevalence"] == 0.5
    assert curves["pneumonia"]["fpr"][0] == 0 and curves["pneumonia"]["tpr"][-1] == 1


def test_bootstrap_ci_contains_the_value_and_is_seeded():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = y * 0.3 + rng.random(200)
    ci = bootstrap_ci(y, s, "auc", n_boot=200, seed=1)
    assert ci["low"] < ci["value"] < ci["high"] and ci["n_boot"] == 200
    assert ci == bootstrap_ci(y, s, "auc", n_boot=200, seed=1)
    acc = bootstrap_ci(y, s, "accuracy", n_boot=50, threshold=0.65)
    assert acc["value"] == pytest.approx(binary_metrics(y, s, 0.65)["accuracy"])
    assert acc["low"] < acc["value"] < acc["high"] and acc["n_boot"] == 50
    with pytest.raises(ValueError, match="metric"):
        bootstrap_ci(y, s, "kappa")


def test_input_errors_and_predict_scores():
    with pytest.raises(ValueError, match="y_score"):
        binary_metrics([0, 1, 1], [0.2, 0.4])
    with pytest.raises(ValueError, match="0/1"):
        binary_metrics([0, 2], [0.2, 0.4])

    class Mean:  # a stand-in model: the score is the mean pixel value
        def predict(self, x, batch_size=None, verbose=0):
            return x.mean(axis=(1, 2, 3))[:, None]

    x = np.zeros((2, 4, 4, 1), dtype="float32")
    x[0, :, 0] = 1.0  # a bright left column: shifting it changes the mean with edge padding
    plain = predict_scores(Mean(), x)
    assert plain.shape == (2,) and plain[0] == pytest.approx(0.25)
    shifted = predict_scores(Mean(), x, tta=["shift"])
    assert shifted.shape == (2,) and shifted[1] == 0.0
    with pytest.raises(ValueError, match="TTA"):
        predict_scores(Mean(), x, tta=["rotate"])


def test_roc_and_pr_plots_label_every_curve():
    import matplotlib

    matplotlib.use("Agg")
    from xraykit.plotting import plot_pr, plot_roc

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    good, weak = y + rng.normal(0, 0.5, 200), y + rng.normal(0, 2.0, 200)
    fig = plot_roc(y, {"good": good, "weak": weak}, operating_point=0.5)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0].startswith("good (AUC") and legend[1].startswith("weak (AUC")
    assert float(legend[0][-6:-1]) > float(legend[1][-6:-1])
    labels = np.stack([y, 1 - y], axis=1)
    fig = plot_pr(labels, np.stack([good, -good], axis=1), class_names=["a", "b"])
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0].startswith("a (AP") and legend[1].startswith("b (AP")


@pytest.mark.parametrize("y,s,labels,scores", [
    (np.array([0, 1, 1]), np.array([0.1, 0.8, 0.6]), [0, 1, 1], [0.1, 0.8, 0.6]),
    (np.array([[0], [1], [1]]), np.array([[0.1], [0.8], [0.6]]), [0, 1, 1], [0.1, 0.8, 0.6]),
    # Several labels are flattened row by row; unknown (NaN) entries are left out.
    (np.array([[0, np.nan], [1, 1], [np.nan, 0]]), np.array([[0.2, 0.3], [0.9, 0.8], [0.4, 0.1]]),
     [0, 1, 1, 0], [0.2, 0.9, 0.8, 0.1]),
    (np.array([1.0, 1.0, 0.0]), np.array([0.0, 1.0, 0.5]), [1, 1, 0], [0.0, 1.0, 0.5]),
])
def test_check_binary_flattens_and_drops_unknown_labels(y, s, labels, scores):
    got_labels, got_scores = check_binary(y, s)
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_array_equal(got_scores, scores)
    np.testing.assert_array_equal(check_binary(y, s, probabilities=True)[1], scores)
    assert got_labels.dtype.kind == "i" and check_binary(y)[1] is None


def test_check_binary_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match="y_true has 3 values but y_prob has 2"):
        check_binary([0, 1, 1], [0.2, 0.4], score_name="y_prob")
    with pytest.raises(ValueError, match=r"0/1 labels .*found \[-1.0, 2.0\]"):
        check_binary([0, 2, -1, 1], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="y_score contains NaN"):
        check_binary([0, 1], [0.2, np.nan])
    with pytest.raises(ValueError, match="No labelled examples"):
        check_binary([np.nan, np.nan], [0.2, 0.4])
    with pytest.raises(ValueError, match=r"y_prob must hold probabilities in \[0, 1\]"):
        check_binary([0, 1], [0.2, 1.5], score_name="y_prob", probabilities=True)
    # The scores of an unknown label are not checked: they are left out.
    assert check_binary([0, np.nan], [0.2, np.nan])[1].tolist() == [0.2]
    # The evaluation functions raise the same messages.
    with pytest.raises(ValueError, match="found \\[2.0\\]"):
        bootstrap_ci([0, 2, 1], [0.1, 0.2, 0.3])


def test_paired_bootstrap_ci_of_an_auc_difference():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    shared = rng.normal(size=400)  # what makes an image easy or hard for both models
    score_a = y + shared + 0.8 * rng.normal(size=400)
    score_b = y + shared + 1.2 * rng.normal(size=400)

    same = paired_bootstrap_ci(y, score_a, score_a, n_boot=50, seed=0)
    assert same["value"] == same["low"] == same["high"] == 0.0

    paired = paired_bootstrap_ci(y, score_a, score_b, n_boot=300, seed=0)
    a = bootstrap_ci(y, score_a, n_boot=300, seed=0)
    b = bootstrap_ci(y, score_b, n_boot=300, seed=0)
    assert paired["value"] == pytest.approx(a["value"] - b["value"])
    assert paired["low"] <= paired["value"] <= paired["high"]
    # Pairing cancels the shared difficulty: the difference is better known than either AUC.
    assert paired["std"] < min(a["std"], b["std"])
    swapped = paired_bootstrap_ci(y, score_b, score_a, n_boot=300, seed=0)
    assert swapped["low"] == pytest.approx(-paired["high"])
    assert swapped["fraction_below_zero"] == pytest.approx(1 - paired["fraction_below_zero"],
                                                           abs=1e-9)


def test_bootstrap_auc_is_sklearns_auc_with_ties():
    from sklearn.metrics import roc_auc_score

    from xraykit.evaluation import _METRICS

    rng = np.random.default_rng(3)
    for n in (5, 40, 400):
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        s = np.round(rng.random(n), 1)  # many ties
        assert _METRICS["auc"](y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    with pytest.raises(ValueError, match="both classes"):
        _METRICS["auc"]([1, 1], [0.2, 0.3])
    # The bootstrap with the rank AUC gives sklearn's interval, resample for resample.
    y, s = rng.integers(0, 2, 200), rng.random(200)
    ours = bootstrap_ci(y, s, "auc", n_boot=100, seed=4)
    theirs = bootstrap_ci(y, s, roc_auc_score, n_boot=100, seed=4)
    for key in ("value", "low", "high", "std"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-12)


def test_paired_bootstrap_ci_bad_input():
    y = np.array([0, 1, 0, 1, np.nan])
    s = np.array([0.1, 0.9, 0.2, 0.8, 0.5])
    result = paired_bootstrap_ci(y, s, 1 - s, n_boot=20, seed=0)  # the NaN label is left out
    assert result["value"] == pytest.approx(1.0 - 0.0)
    with pytest.raises(ValueError, match="score_b"):
        paired_bootstrap_ci(y, s, s[:3], n_boot=5)
    with pytest.raises(ValueError, match="Unknown metric"):
        paired_bootstrap_ci(y, s, s, metric="kappa", n_boot=5)
