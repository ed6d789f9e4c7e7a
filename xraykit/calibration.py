"""Calibration of predicted probabilities: reliability curve, ECE, temperature scaling.

Do the model's probabilities mean what they say? A model is calibrated when, among the images
it scores 0.8, about 80 % are positive. The reliability curve shows this bin by bin, the
expected calibration error (ECE) sums it up in one number, and temperature scaling (Guo et al.,
ICML 2017) fixes most of the miscalibration of modern networks with one parameter fitted on the
validation split: ``p' = sigmoid(logit(p) / T)`` (``softmax(z / T)`` for multiclass). ``T > 1``
softens over-confident predictions, ``T < 1`` sharpens timid ones; the ranking (and so the AUC)
never changes.

Threshold choice and bootstrap confidence intervals live in :mod:`xraykit.evaluation`.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import special
from sklearn.calibration import calibration_curve

from xraykit.checks import (
    check_class_indices,
    check_count,
    check_finite_array,
    check_number,
    check_positive,
)
from xraykit.tasks import check_binary

#: Bins of every reliability curve and ECE in xraykit, so that a printed ECE and the one in a
#: plot's legend are the same number (15 is the usual choice since Guo et al., 2017).
N_BINS = 15

__all__ = [
    "TemperatureBoundWarning", "TemperatureScaler", "apply_temperature",
    "expected_calibration_error", "logit", "reliability_curve",
]

_EPS = 1e-7
#: How close (in log T) the search's result must be to a bound to count as stopped there.
_AT_BOUND_LOG_TOL = 1e-3


class TemperatureBoundWarning(UserWarning):
    """A temperature fit stopped at the edge of its search range: no minimum was found inside."""


def logit(p) -> np.ndarray:
    """The log-odds ``log(p / (1 - p))`` of probabilities, clipped away from 0 and 1.

    Args:
        p: Probabilities, any shape.

    Returns:
        Float64 array of the same shape.
    """
    return special.logit(np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS))


def reliability_curve(y_true, y_prob, n_bins: int = N_BINS, strategy: str = "uniform"):
    """Observed frequency of positives against the mean predicted probability, per bin.

    The bins are those of ``sklearn.calibration.calibration_curve`` (and so of the
    ``CalibrationDisplay`` that :func:`xraykit.plotting.plot_calibration` draws): a bin holds
    the probabilities in ``(lower, upper]`` (the first bin holds 0 too), so a probability
    exactly on an inner edge counts in the lower bin.

    Args:
        y_true: 0/1 labels, any shape (flattened; NaN = unknown and left out).
        y_prob: Predicted probabilities of the positive class, same size.
        n_bins: Number of bins.
        strategy: ``"uniform"`` (equal-width bins on [0, 1]) or ``"quantile"`` (equal counts).

    Returns:
        A dict with ``mean_predicted``, ``fraction_positive`` and ``count`` (arrays over the
        non-empty bins) and ``edges`` (``n_bins + 1`` bin edges).

    Raises:
        ValueError: For mismatched inputs, probabilities outside [0, 1] or an unknown strategy.
    """
    y_true, y_prob = check_binary(y_true, y_prob, score_name="y_prob", probabilities=True)
    n_bins = check_count(n_bins, "n_bins")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.quantile(y_prob, np.linspace(0.0, 1.0, n_bins + 1))
        edges[0], edges[-1] = 0.0, 1.0
    else:
        raise ValueError(f"strategy must be 'uniform' or 'quantile', not {strategy!r}.")
    fraction_positive, mean_predicted = calibration_curve(
        y_true, y_prob, n_bins=n_bins, strategy=strategy, pos_label=1)
    # calibration_curve returns no counts; they come from its bin rule, inner edges only.
    count = np.bincount(np.searchsorted(edges[1:-1], y_prob), minlength=n_bins)
    return {
        "mean_predicted": mean_predicted,
        "fraction_positive": fraction_positive,
        "count": count[count > 0],
        "edges": edges,
    }


def expected_calibration_error(y_true, y_prob, n_bins: int = N_BINS,
                               strategy: str = "uniform") -> float:
    """Expected calibration error: mean |confidence - frequency| over the bins, count-weighted.

    The bins are those of :func:`reliability_curve`.

    For multiclass models pass the one-hot labels and the probability matrix: every
    (image, class) pair then counts as one binary prediction ("classwise" ECE).

    Args:
        y_true: 0/1 labels, any shape (flattened; NaN = unknown and left out).
        y_prob: Predicted probabilities, same size.
        n_bins: Number of bins (default :data:`N_BINS`).
        strategy: ``"uniform"`` or ``"quantile"`` bins.

    Returns:
        ECE in [0, 1]; 0 is perfect calibration.
    """
    curve = reliability_curve(y_true, y_prob, n_bins=n_bins, strategy=strategy)
    gaps = np.abs(curve["mean_predicted"] - curve["fraction_positive"])
    return float((gaps * curve["count"]).sum() / curve["count"].sum())


def _check_bounds(bounds) -> tuple[float, float]:
    """The temperature search range: finite, ``0 < low < 1 < high`` (T = 1 is a candidate)."""
    if np.ndim(bounds) != 1 or len(bounds) != 2:
        raise ValueError(f"bounds must be a pair (low, high) of temperatures, not {bounds!r}.")
    why = "T = 1, no scaling, must be a candidate"
    return (check_number(bounds[0], "bounds[0]", 0.0, 1.0, low_open=True, high_open=True,
                         what=why),
            check_number(bounds[1], "bounds[1]", 1.0, None, low_open=True, what=why))

def _mean_nll(z, y, t, mode) -> float:
    """Mean negative log-likelihood of the labels under the logits ``z`` divided by ``t``."""
    if mode == "softmax":
        log_p = special.log_softmax(z / t, axis=1)
        return float(-log_p[np.arange(len(y)), y].mean())
    z = z / t
    # -[y log s(z) + (1-y) log(1-s(z))], with log s(z) and log(1 - s(z)) = log s(-z) stable.
    return float(-(y * special.log_expit(z) + (1 - y) * special.log_expit(-z)).mean())


def _fitting_labels(y_true, z, mode):
    """The labels (and logits) a temperature is fitted on, checked: ``(y, z)``."""
    if mode == "softmax":
        if z.ndim != 2 or np.size(y_true) != len(z):
            raise ValueError(f"softmax mode needs scores (N, C) and N class indices; got "
                             f"{z.shape} and {np.size(y_true)}.")
        y = check_class_indices(y_true, z.shape[1], "y_true")
        if len(np.unique(y)) < 2:
            raise ValueError("Temperature scaling needs at least two classes among y_true "
                             f"(found only class {y[0]}).")
        return y, z
    y, z = check_binary(y_true, z, score_name="scores")
    if len(np.unique(y)) < 2:
        raise ValueError("Temperature scaling needs both classes in the fitting data.")
    return y, z


def _bound_message(at_bound: str, bounds) -> str:
    """Why a temperature search stopped at an edge of its bounds, and what the scaler does."""
    edge = bounds[1] if at_bound == "upper" else bounds[0]
    why = ("the likelihood keeps improving as T grows, i.e. as every probability is "
           "pushed towards 0.5: the scores' log-odds carry little information on the "
           "probability scale, or sit on the wrong side of 0.5 for the labels (a shift, "
           "which a temperature cannot undo: try a scale and a bias, Platt scaling, or a "
           "better-trained model)"
           if at_bound == "upper" else
           "the likelihood keeps improving as T shrinks: the fitting scores separate the "
           "classes (almost) perfectly, so any sharpening looks better on them (fit on "
           "more, or more representative, validation data)")
    return (f"The temperature search stopped at its {at_bound} bound T = {edge:g}: "
            f"{why}. The scaler keeps T = 1 (scores unchanged).")



class TemperatureScaler:
    """Temperature scaling fitted on held-out (validation) predictions.

    Example::

        scaler = TemperatureScaler().fit(y_val, model.predict(x_val))
        p_test = scaler.transform(model.predict(x_test))

    A fit whose search ends at an edge of ``bounds`` has found no minimum inside the range:
    the likelihood keeps improving towards ``T -> inf`` (every probability pushed towards 0.5:
    the scores' log-odds carry little information on the probability scale, or sit on the wrong
    side of 0.5 for the labels' prevalence, a shift that a temperature cannot undo) or towards
    ``T -> 0`` (validation scores that separate the classes perfectly). Such a temperature is
    not a calibration, so it is not applied: ``temperature`` stays 1, ``at_bound`` says which
    edge was hit, ``temperature_found`` keeps the edge value, and ``on_bound`` decides how loud
    this is.

    Args:
        from_logits: The inputs are logits rather than probabilities.
        mode: ``"sigmoid"`` (binary and multilabel: each column on its own, one shared
            temperature), ``"softmax"`` (multiclass, probability rows summing to 1) or
            ``"auto"`` (softmax when labels are class indices and there are several columns).
        bounds: Search range of the temperature.
        on_bound: What a fit that stops at an edge of ``bounds`` does: ``"warn"`` (keep
            ``T = 1`` and issue a :class:`TemperatureBoundWarning`), ``"ignore"`` (keep
            ``T = 1`` quietly: the caller reads ``at_bound``) or ``"raise"`` (``ValueError``).

    Attributes:
        temperature: The temperature :meth:`transform` applies (1.0 before fitting, and after
            a fit that stopped at a bound).
        temperature_found: Where the search ended (equal to ``temperature`` unless
            ``at_bound``).
        at_bound: ``None``, or ``"lower"`` / ``"upper"``: the edge of ``bounds`` the search
            stopped at.
        nll_before, nll_after: Mean negative log-likelihood on the fitting data at ``T = 1``
            and at the applied ``temperature``.
    """

    def __init__(self, from_logits: bool = False, mode: str = "auto",
                 bounds: tuple[float, float] = (0.05, 20.0), on_bound: str = "warn"):
        if mode not in ("auto", "sigmoid", "softmax"):
            raise ValueError(f"mode must be 'auto', 'sigmoid' or 'softmax', not {mode!r}.")
        if on_bound not in ("warn", "ignore", "raise"):
            raise ValueError(f"on_bound must be 'warn', 'ignore' or 'raise', not {on_bound!r}.")
        bounds = _check_bounds(bounds)
        self.from_logits = from_logits
        self.mode = mode
        self.bounds = bounds
        self.on_bound = on_bound
        self.temperature = 1.0
        self.temperature_found = float("nan")
        self.at_bound = None
        self.nll_before = float("nan")
        self.nll_after = float("nan")
        self._fitted_mode = None

    def _logits(self, scores, mode):
        scores = np.asarray(check_finite_array(scores, "scores"), dtype=np.float64)
        if self.from_logits:
            return scores
        if not np.isfinite(scores).all() or scores.min() < 0 or scores.max() > 1:
            raise ValueError("Expected probabilities in [0, 1]; pass from_logits=True for logits.")
        if mode == "softmax":
            return np.log(np.clip(scores, _EPS, 1.0))
        return logit(scores)

    def _resolve_mode(self, y, scores):
        if self.mode != "auto":
            return self.mode
        y = np.asarray(y)
        scores = np.asarray(scores)
        if scores.ndim == 2 and scores.shape[1] > 1 and (y.ndim == 1 or y.shape[-1] == 1) \
                and np.issubdtype(y.dtype, np.integer):
            return "softmax"
        return "sigmoid"

    def fit(self, y_true, scores) -> TemperatureScaler:
        """Finds the temperature minimising the negative log-likelihood (bounded scalar search).

        Args:
            y_true: Labels: 0/1 (binary/multilabel, NaN = unknown) or class indices (softmax).
            scores: Validation probabilities (or logits with ``from_logits=True``).

        Returns:
            ``self``, fitted.

        Raises:
            ValueError: For mismatched shapes, labels of a single class, class indices
                outside the columns of the scores, NaN/infinite scores, or (with
                ``on_bound="raise"``) a search that stopped at an edge of ``bounds``.
        """
        from scipy.optimize import minimize_scalar

        mode = self._resolve_mode(y_true, scores)
        z = self._logits(scores, mode)
        y, z = _fitting_labels(y_true, z, mode)
        log_lo, log_hi = np.log(self.bounds[0]), np.log(self.bounds[1])
        result = minimize_scalar(lambda s: _mean_nll(z, y, np.exp(s), mode),
                                 bounds=(log_lo, log_hi), method="bounded",
                                 options={"xatol": 1e-5})
        self.temperature_found = float(np.exp(result.x))
        self.at_bound = ("lower" if result.x - log_lo < _AT_BOUND_LOG_TOL else
                         "upper" if log_hi - result.x < _AT_BOUND_LOG_TOL else None)
        self.temperature = 1.0 if self.at_bound else self.temperature_found
        self.nll_before = _mean_nll(z, y, 1.0, mode)
        self.nll_after = _mean_nll(z, y, self.temperature, mode)
        self._fitted_mode = mode
        if self.at_bound:
            message = _bound_message(self.at_bound, self.bounds)
            if self.on_bound == "raise":
                raise ValueError(message)
            if self.on_bound == "warn":
                warnings.warn(message, TemperatureBoundWarning, stacklevel=2)
        return self

    def transform(self, scores) -> np.ndarray:
        """Applies the fitted temperature.

        Args:
            scores: Probabilities (or logits with ``from_logits=True``), any shape for sigmoid
                mode, ``(N, C)`` for softmax mode.

        Returns:
            Calibrated probabilities (float32), same shape.
        """
        mode = self._fitted_mode or ("sigmoid" if self.mode == "auto" else self.mode)
        z = self._logits(scores, mode) / self.temperature
        out = special.softmax(z, axis=-1) if mode == "softmax" else special.expit(z)
        return out.astype(np.float32)

    def fit_transform(self, y_true, scores) -> np.ndarray:
        """:meth:`fit` then :meth:`transform` on the same scores."""
        return self.fit(y_true, scores).transform(scores)

    def __repr__(self) -> str:
        if self._fitted_mode is None:
            return f"TemperatureScaler(not fitted, bounds={self.bounds[0]:g}..{self.bounds[1]:g})"
        if self.at_bound:
            edge = self.bounds[1] if self.at_bound == "upper" else self.bounds[0]
            return (f"TemperatureScaler(T=1, not fitted: the search stopped at its "
                    f"{self.at_bound} bound {edge:g}; NLL {self.nll_before:.3f})")
        return (f"TemperatureScaler(T={self.temperature:.3g}, "
                f"NLL {self.nll_before:.3f} -> {self.nll_after:.3f})")


def apply_temperature(probabilities, temperature: float, mode: str = "sigmoid") -> np.ndarray:
    """Rescales probabilities with a known temperature (as stored in a saved model).

    Args:
        probabilities: Model outputs in [0, 1].
        temperature: The temperature; 1.0 returns the input unchanged.
        mode: ``"sigmoid"`` or ``"softmax"``.

    Returns:
        Float32 probabilities, same shape.

    Raises:
        ValueError: If ``temperature`` is not a finite number > 0, or the probabilities are
            not finite numbers in [0, 1].
    """
    temperature = check_positive(temperature, "temperature",
                                 what="T > 1 softens the probabilities, T < 1 sharpens them")
    if temperature == 1.0:
        return np.asarray(probabilities, dtype=np.float32)
    scaler = TemperatureScaler(mode=mode)
    scaler.temperature = float(temperature)
    scaler._fitted_mode = mode
    return scaler.transform(probabilities)
