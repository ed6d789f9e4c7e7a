"""Calibration figures: reliability diagrams with each model's ECE, and the score histogram."""

from __future__ import annotations

import numpy as np

from xraykit.plotting._figure import pyplot


def plot_calibration(y_true, scores, n_bins: int | None = None):
    """Reliability diagram with each model's expected calibration error, scores underneath.

    The diagram is ``sklearn.calibration.CalibrationDisplay``; the ECE in the legend is
    :func:`xraykit.calibration.expected_calibration_error`, the number a lesson prints.

    Args:
        y_true: 0/1 labels, any shape (flattened; NaN = unknown and left out).
        scores: Probabilities of the same shape, or ``{name: probabilities}``, e.g.
            ``{"before": p, "after T-scaling": p_cal}``.
        n_bins: Equal-width bins (default ``xraykit.calibration.N_BINS``, the bins of a printed
            ``expected_calibration_error``, so legend and print agree).

    Returns:
        The matplotlib Figure (reliability diagram on top, histogram below).
    """
    from sklearn.calibration import CalibrationDisplay

    from xraykit.calibration import N_BINS, expected_calibration_error

    n_bins = n_bins or N_BINS
    runs = scores if isinstance(scores, dict) else {"model": scores}
    labels = np.asarray(y_true, dtype=np.float64).reshape(-1)
    known = ~np.isnan(labels)
    fig, (ax, hist) = pyplot().subplots(2, 1, figsize=(7.8, 6.2), sharex=True,
                                        gridspec_kw={"height_ratios": [3, 1]})
    for i, (name, score) in enumerate(runs.items()):
        ece = expected_calibration_error(y_true, score, n_bins=n_bins)  # validates the inputs
        p = np.asarray(score, dtype=np.float64).reshape(-1)[known]
        shown = CalibrationDisplay.from_predictions(
            labels[known].astype(int), p, n_bins=n_bins, strategy="uniform", ax=ax, name=name,
            ref_line=i == 0, marker="o", ms=4)
        shown.line_.set_label(f"{name} (ECE {ece:.3f})")
        hist.hist(p, bins=np.linspace(0, 1, n_bins * 2 + 1), alpha=0.5, label=name)
    ax.set_xlabel("")
    ax.set_ylabel("fraction of positives")
    ax.set_title("Reliability diagram")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    # Beside the diagram, off the curves.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    hist.set_xlabel("predicted probability")
    hist.set_ylabel("images")
    fig.tight_layout()
    return fig
