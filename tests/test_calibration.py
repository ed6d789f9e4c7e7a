"""Tests of xraykit.calibration: reliability curve, ECE and temperature scaling."""

import re

import numpy as np
import pytest
from scipy import special
from sklearn.metrics import log_loss, roc_auc_score

from xraykit.calibration import (
    TemperatureBoundWarning,
    TemperatureScaler,
    apply_temperature,
    expected_calibration_error,
    logit,
    reliability_curve,
)


def _calibrated_sample(n=4000, seed=0):
    """Labels drawn from the predicted probabilities: calibrated by construction."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, n)
    y = (rng.random(n) < special.expit(z)).astype(int)
    return z, y


def test_reliability_curve_by_hand():
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.05, 0.15, 0.85, 0.95, 0.55, 0.45])
    curve = reliability_curve(y, p, n_bins=2)
    # bin [0, .5): p .05 .15 .45 -> mean .2167, positives 0/3; bin [.5, 1]: .55 .85 .95 -> 3/3
    np.testing.assert_allclose(curve["mean_predicted"], [0.65 / 3, 2.35 / 3])
    np.testing.assert_allclose(curve["fraction_positive"], [0.0, 1.0])
    assert curve["count"].tolist() == [3, 3]
    # ECE = (3 * .2167 + 3 * (1 - .7833)) / 6
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.65 / 3)
    assert reliability_curve(y, p, n_bins=3, strategy="quantile")["count"].sum() == 6


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_curve_is_sklearns_calibration_curve(strategy):
    from sklearn.calibration import calibration_curve

    z, y = _calibrated_sample(1000, seed=3)
    p = special.expit(z)
    curve = reliability_curve(y, p, n_bins=10, strategy=strategy)
    fraction, mean = calibration_curve(y, p, n_bins=10, strategy=strategy)
    np.testing.assert_allclose(curve["fraction_positive"], fraction, rtol=1e-12)
    np.testing.assert_allclose(curve["mean_predicted"], mean, rtol=1e-12)
    assert curve["count"].sum() == len(y)
    # Each bin's count: the probabilities inside its edges (sklearn's bins are (lower, upper]).
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, 11)
        inside = [np.sum((p > lo) & (p <= hi)) for lo, hi in zip(edges[:-1], edges[1:])]
        inside[0] += int(np.sum(p == 0.0))
        np.testing.assert_array_equal(curve["count"], [n for n in inside if n])


def test_a_probability_on_a_bin_edge_counts_in_the_lower_bin():
    # sklearn's bins are (lower, upper]: 0.5 joins [0, 0.5], not (0.5, 1] as it did before.
    y = np.array([0, 1, 1, 1])
    p = np.array([0.1, 0.5, 0.8, 0.9])
    curve = reliability_curve(y, p, n_bins=2)
    assert curve["count"].tolist() == [2, 2]
    np.testing.assert_allclose(curve["mean_predicted"], [0.3, 0.85])
    np.testing.assert_allclose(curve["fraction_positive"], [0.5, 1.0])
    # ECE follows the same bins: (2 * |0.3 - 0.5| + 2 * |0.85 - 1|) / 4.
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.175)


def test_ece_small_when_calibrated_large_when_overconfident():
    z, y = _calibrated_sample()
    assert expected_calibration_error(y, special.expit(z)) < 0.03
    assert expected_calibration_error(y, special.expit(3 * z)) > 0.1


def test_temperature_scaling_recovers_the_temperature():
    z, y = _calibrated_sample()
    overconfident = special.expit(3 * z)  # logits three times too large
    scaler = TemperatureScaler().fit(y, overconfident)
    assert scaler.temperature == pytest.approx(3.0, rel=0.15)
    assert scaler.nll_after < scaler.nll_before
    # The NLL is sklearn's log loss (scipy.special.log_expit replaced softplus(z) - y z).
    assert scaler.nll_before == pytest.approx(log_loss(y, overconfident), rel=1e-6)
    assert scaler.nll_before == pytest.approx(np.mean(np.logaddexp(0.0, 3 * z) - y * 3 * z),
                                              rel=1e-6)
    calibrated = scaler.transform(overconfident)
    assert expected_calibration_error(y, calibrated) < 0.03
    # Scaling is monotone: the AUC does not move.
    assert roc_auc_score(y, calibrated) == pytest.approx(roc_auc_score(y, overconfident))
    # Logits in, same temperature out; apply_temperature agrees with transform.
    assert TemperatureScaler(from_logits=True).fit(y, 3 * z).temperature == pytest.approx(
        scaler.temperature, rel=1e-3)
    np.testing.assert_allclose(apply_temperature(overconfident, scaler.temperature), calibrated,
                               atol=1e-6)
    assert np.allclose(apply_temperature(overconfident, 1.0), overconfident)


def test_a_fit_that_stops_at_its_bound_is_not_applied():
    """All scores below 0.5 while most labels are 1: the NLL falls all the way to T -> inf.

    The search stops at its upper bound, every probability would become about 0.5; the
    scaler says so (a warning, ``at_bound``, its repr) and keeps the scores unchanged.
    """
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.62).astype(int)
    shifted = special.expit(rng.normal(-1.0, 0.3, 300) + 0.2 * y)  # ranks a little, all < 0.5
    with pytest.warns(TemperatureBoundWarning, match=r"upper bound T = 20.*keeps T = 1"):
        scaler = TemperatureScaler().fit(y, shifted)
    assert scaler.at_bound == "upper"
    assert scaler.temperature == 1.0
    assert scaler.temperature_found == pytest.approx(20.0, rel=1e-3)
    np.testing.assert_allclose(scaler.transform(shifted), shifted, rtol=1e-6)
    assert scaler.nll_after == scaler.nll_before
    assert "upper bound 20" in repr(scaler) and "T=1" in repr(scaler)
    with pytest.raises(ValueError, match="upper bound"):
        TemperatureScaler(on_bound="raise").fit(y, shifted)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "ignore" is quiet; at_bound carries the news
        assert TemperatureScaler(on_bound="ignore").fit(y, shifted).at_bound == "upper"
    # Widening the range does not help: there is no minimum to find.
    assert TemperatureScaler(bounds=(0.05, 200.0), on_bound="ignore").fit(
        y, shifted).at_bound == "upper"


def test_a_fit_on_perfectly_separated_scores_stops_at_the_lower_bound():
    y = np.array([0, 0, 0, 1, 1, 1] * 20)
    timid = np.where(y == 1, 0.6, 0.4)  # right side of 0.5 for every image
    with pytest.warns(TemperatureBoundWarning, match="lower bound T = 0.05"):
        scaler = TemperatureScaler().fit(y, timid)
    assert scaler.at_bound == "lower" and scaler.temperature == 1.0


def test_temperature_scaler_repr_is_rounded():
    z, y = _calibrated_sample(500)
    scaler = TemperatureScaler().fit(y, special.expit(2 * z))
    assert scaler.at_bound is None and scaler.temperature == scaler.temperature_found
    text = repr(scaler)
    assert text.startswith(f"TemperatureScaler(T={scaler.temperature:.3g}, NLL ")
    assert all(len(number) <= 5 for number in re.findall(r"[0-9.]+", text)), text
    assert repr(TemperatureScaler()) == "TemperatureScaler(not fitted, bounds=0.05..20)"
    with pytest.raises(ValueError, match="on_bound"):
        TemperatureScaler(on_bound="clip")
    with pytest.raises(ValueError, match="bounds"):
        TemperatureScaler(bounds=(2.0, 5.0))


def test_temperature_scaling_softmax():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 1.5, (3000, 3))
    p = special.softmax(z, axis=1)
    y = np.array([rng.choice(3, p=row) for row in p])
    sharp = special.softmax(2 * z, axis=1)
    scaler = TemperatureScaler().fit(y, sharp)
    assert scaler._fitted_mode == "softmax"
    assert scaler.temperature == pytest.approx(2.0, rel=0.15)
    out = scaler.transform(sharp)
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)
    assert (out.argmax(1) == sharp.argmax(1)).all()


def test_calibration_on_real_predictions(small_data):
    """A quickly trained PneumoniaMNIST model: T fitted on validation helps on test.

    ECE on test goes down or stays small, and the ranking is unchanged.
    """
    import keras

    from xraykit.models import build_model

    data = small_data
    model = build_model("small_cnn", (28, 28, 1), width=8, depth=2)
    model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy")
    model.fit(data.x_train, data.y_train, epochs=3, batch_size=64, verbose=0)
    p_val = model.predict(data.x_val, verbose=0)
    p_test = model.predict(data.x_test, verbose=0)
    scaler = TemperatureScaler().fit(data.y_val, p_val)
    assert 0.05 <= scaler.temperature <= 20 and scaler.nll_after <= scaler.nll_before + 1e-9
    after = scaler.transform(p_test)
    assert after.shape == p_test.shape and np.isfinite(after).all()
    assert roc_auc_score(data.y_test, after) == pytest.approx(roc_auc_score(data.y_test, p_test))
    # Validation ECE cannot get (much) worse: T = 1 was a candidate of the search.
    assert expected_calibration_error(data.y_val, scaler.transform(p_val)) <= \
        expected_calibration_error(data.y_val, p_val) + 0.02


def test_bad_inputs_and_scipy_formulas():
    with pytest.raises(ValueError, match="probabilities"):
        expected_calibration_error([0, 1], [0.2, 1.5])
    with pytest.raises(ValueError, match="values"):
        reliability_curve([0, 1, 1], [0.2, 0.5])
    with pytest.raises(ValueError, match="both classes"):
        TemperatureScaler().fit([1, 1, 1], [0.2, 0.6, 0.9])
    with pytest.raises(ValueError, match=r"0/1 labels .*found \[2.0\]"):
        TemperatureScaler(mode="sigmoid").fit([0, 1, 2], [0.2, 0.6, 0.9])
    with pytest.raises(ValueError, match="strategy"):
        reliability_curve([0, 1], [0.2, 0.5], strategy="magic")
    assert np.isfinite(logit([0.0, 1.0])).all()
    # scipy.special replaced the hand-written log-odds, sigmoid and softmax: same numbers.
    p = np.array([1e-9, 0.2, 0.5, 0.9, 1 - 1e-9])
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    np.testing.assert_allclose(logit(p), np.log(clipped) - np.log1p(-clipped), rtol=1e-12)
    np.testing.assert_allclose(apply_temperature(p[1:4], 2.0),
                               0.5 * (1 + np.tanh(0.25 * (np.log(p[1:4]) - np.log1p(-p[1:4])))),
                               rtol=1e-6)
    rows = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    z = np.log(rows) / 3.0
    by_hand = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(apply_temperature(rows, 3.0, mode="softmax"),
                               by_hand / by_hand.sum(1, keepdims=True), rtol=1e-6)
    # NaN labels (unknown, multilabel) are left out.
    assert expected_calibration_error([0, np.nan, 1], [0.0, 0.5, 1.0]) == pytest.approx(0.0)


def _line(ax, name):
    return next(line for line in ax.lines if line.get_label().startswith(name))


def test_calibration_plot_draws_the_numbers_a_lesson_prints():
    from xraykit.plotting import plot_calibration

    z, y = _calibrated_sample(400)
    p, overconfident = special.expit(z), special.expit(3 * z)
    fig = plot_calibration(y, {"model": p, "overconfident": overconfident})
    legend = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    # The legend's ECE is the number a lesson prints with the default bins.
    assert f"overconfident (ECE {expected_calibration_error(y, overconfident):.3f})" in legend
    assert f"model (ECE {expected_calibration_error(y, p):.3f})" in legend
    # Probabilities exactly on the bin edges: sklearn's display and reliability_curve (and so
    # the ECE) put them in the same bins.
    y_edge = np.arange(16) % 2
    p_edge = np.linspace(0.0, 1.0, 16)  # the 15 bins' edges
    fig = plot_calibration(y_edge, p_edge)
    curve = reliability_curve(y_edge, p_edge)
    drawn = _line(fig.axes[0], "model")
    np.testing.assert_allclose(drawn.get_xdata(), curve["mean_predicted"])
    np.testing.assert_allclose(drawn.get_ydata(), curve["fraction_positive"])
    assert drawn.get_label() == f"model (ECE {expected_calibration_error(y_edge, p_edge):.3f})"


def test_bootstrap_and_threshold_figures_show_the_evaluation_numbers():
    from xraykit.evaluation import binary_metrics, bootstrap_ci
    from xraykit.plotting import plot_roc_pr_bootstrap, plot_threshold
    from xraykit.widgets import threshold_explorer

    z, y = _calibrated_sample(400)
    p = special.expit(z)
    fig = plot_roc_pr_bootstrap(y, p, n_boot=50)
    auc = bootstrap_ci(y, p, "auc", n_boot=50, seed=0)
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == (
        f"model: AUC {auc['value']:.3f} [{auc['low']:.3f}, {auc['high']:.3f}]")
    fig = plot_threshold(y, p, 0.3)
    m = binary_metrics(y, p, 0.3)
    assert fig.axes[0].get_title().startswith(
        f"sensitivity {m['sensitivity']:.2f}   specificity {m['specificity']:.2f}")
    static = threshold_explorer(y, p, 0.3, static=True)  # outside a kernel: a static Figure
    assert [ax.get_title() for ax in static.axes] == [ax.get_title() for ax in fig.axes]
