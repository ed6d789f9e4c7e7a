"""Figures of a classifier's results: ROC, precision-recall, confusion matrix, thresholds.

ROC and precision-recall curves come with bootstrap bands on request, and one view shows a
single decision threshold.

The curves are drawn by scikit-learn's ``RocCurveDisplay``, ``PrecisionRecallDisplay`` and
``ConfusionMatrixDisplay``; xraykit adds the operating point, the prevalence baseline, the
bootstrap bands and row percentages on top.
"""

from __future__ import annotations

import numpy as np

from xraykit.plotting._figure import figure_and_axes, pyplot

_FPR_LABEL = "1 - specificity (false positive rate)"
_TPR_LABEL = "sensitivity (true positive rate)"
_RECALL_LABEL = "recall (sensitivity)"
_PRECISION_LABEL = "precision (PPV)"


def _curves(y_true, scores, class_names):
    """``(legend name, scores, curve dict, single label?)`` for every run and label.

    The curves come from :func:`xraykit.evaluation.roc_curves`, the one place that splits
    multi-label data, leaves out unknown (NaN) labels and labels with one class only.
    """
    from xraykit.evaluation import roc_curves

    runs = scores if isinstance(scores, dict) else {None: scores}
    out = []
    for run, run_scores in runs.items():
        curves = roc_curves(y_true, run_scores, class_names)
        for label, curve in curves.items():
            name = label if run is None else (run if len(curves) == 1 else f"{run}: {label}")
            out.append((name, run_scores, curve, len(curves) == 1))
    return out


def plot_roc(y_true, scores, class_names=None, ax=None, operating_point: float | None = None):
    """ROC curves with their AUC in the legend, drawn with ``sklearn.metrics.RocCurveDisplay``.

    Args:
        y_true: 0/1 labels, ``(N,)``/``(N, 1)`` or multi-label ``(N, L)`` (NaN = unknown).
        scores: Scores of the same shape, or ``{model name: scores}`` to compare models on a
            binary task.
        class_names: Label names for multi-label data.
        ax: An existing Axes to draw on.
        operating_point: A threshold to mark on each binary curve (e.g. the one chosen on
            validation).

    Returns:
        The matplotlib Figure.
    """
    from sklearn.metrics import RocCurveDisplay

    from xraykit.evaluation import binary_metrics

    fig, ax = figure_and_axes(ax, figsize=(4.8, 4.5))
    curves = _curves(y_true, scores, class_names)
    for i, (name, s, c, single) in enumerate(curves):
        shown = RocCurveDisplay(fpr=c["fpr"], tpr=c["tpr"], roc_auc=c["auc"], name=name).plot(
            ax=ax, plot_chance_level=i == len(curves) - 1,
            chance_level_kw={"color": "gray", "linestyle": ":", "label": "chance (AUC 0.5)"})
        shown.line_.set_label(f"{name} (AUC {c['auc']:.3f})")
        if operating_point is not None and single:
            m = binary_metrics(y_true, s, operating_point)
            ax.plot(1 - m["specificity"], m["sensitivity"], "o", color=shown.line_.get_color())
    ax.set_xlabel(_FPR_LABEL)
    ax.set_ylabel(_TPR_LABEL)
    ax.set_title("ROC")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_pr(y_true, scores, class_names=None, ax=None):
    """Precision-recall curves with average precision and the prevalence baseline.

    Drawn with ``sklearn.metrics.PrecisionRecallDisplay``.

    Args:
        y_true: 0/1 labels, ``(N,)``/``(N, 1)`` or multi-label ``(N, L)`` (NaN = unknown).
        scores: Scores of the same shape, or ``{model name: scores}``.
        class_names: Label names for multi-label data.
        ax: An existing Axes to draw on.

    Returns:
        The matplotlib Figure.
    """
    from sklearn.metrics import PrecisionRecallDisplay

    fig, ax = figure_and_axes(ax, figsize=(4.8, 4.5))
    for name, _, c, _ in _curves(y_true, scores, class_names):
        shown = PrecisionRecallDisplay(
            precision=c["precision"], recall=c["recall"], average_precision=c["ap"], name=name,
            prevalence_pos_label=c["prevalence"],
        ).plot(ax=ax, plot_chance_level=True,
               chance_level_kw={"linestyle": ":", "lw": 0.8, "label": "_prevalence"})
        shown.line_.set_label(f"{name} (AP {c['ap']:.3f})")
        shown.chance_level_.set_color(shown.line_.get_color())
    ax.set_xlabel(_RECALL_LABEL)
    ax.set_ylabel(_PRECISION_LABEL)
    ax.set_title("Precision-recall (dotted: prevalence)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def plot_confusion(y_true, y_score, threshold: float = 0.5, class_names=("normal", "pneumonia"),
                   normalize: bool = False, ax=None):
    """Confusion matrix at a threshold with counts and row percentages.

    Drawn with ``sklearn.metrics.ConfusionMatrixDisplay``.

    Args:
        y_true: 0/1 labels.
        y_score: Scores of the positive class.
        threshold: Scores ``>= threshold`` are predicted positive.
        class_names: Names of class 0 and class 1.
        normalize: Color by row fraction (sensitivity/specificity on the diagonal).
        ax: An existing Axes to draw on.

    Returns:
        The matplotlib Figure.
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    from xraykit.evaluation import confusion

    cm = confusion(y_true, y_score, threshold)
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = figure_and_axes(ax, figsize=(3.8, 3.4))
    shown = ConfusionMatrixDisplay(rows if normalize else cm,
                                   display_labels=list(class_names)).plot(
        ax=ax, cmap="Blues", colorbar=False, im_kw={"vmin": 0, "vmax": 1 if normalize else None})
    for (i, j), text in np.ndenumerate(shown.text_):
        text.set_text(f"{cm[i, j]}\n({100 * rows[i, j]:.1f}%)")
    ax.set_title(f"threshold {threshold:.3f}")
    fig.tight_layout()
    return fig


def _bootstrap_bands(y, s, grid, n_boot: int, seed: int):
    """Per resample of the images: TPR at ``grid`` FPRs and precision at ``grid`` recalls.

    Written here because scikit-learn draws one curve, not a band: each resample's curve is
    interpolated onto a common grid so that percentiles can be taken pointwise.
    """
    from sklearn import metrics as skm

    rng = np.random.default_rng(seed)
    tprs, precisions = [], []
    for _ in range(int(n_boot)):
        i = rng.integers(0, len(y), len(y))
        if len(np.unique(y[i])) < 2:
            continue
        fpr, tpr, _ = skm.roc_curve(y[i], s[i])
        tprs.append(np.interp(grid, fpr, tpr))
        precision, recall, _ = skm.precision_recall_curve(y[i], s[i])
        precisions.append(np.interp(grid, recall[::-1], precision[::-1]))
    return np.array(tprs), np.array(precisions)


def plot_roc_pr_bootstrap(y_true, y_score, n_boot: int = 200, seed: int = 0,
                          label: str = "model", alpha: float = 0.05):
    """ROC and precision-recall curves with percentile-bootstrap bands and AUC/AP intervals.

    The curves are ``RocCurveDisplay.from_predictions`` and
    ``PrecisionRecallDisplay.from_predictions``; the intervals in the legend come from
    :func:`xraykit.evaluation.bootstrap_ci` with the same resamples' seed.

    Args:
        y_true: 0/1 labels.
        y_score: Scores of the positive class.
        n_boot: Bootstrap resamples (images resampled with replacement).
        seed: Seed of the resampling.
        label: Legend name.
        alpha: 0.05 draws 95% bands.

    Returns:
        The matplotlib Figure (ROC left, PR right).
    """
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    from xraykit.evaluation import bootstrap_ci

    y = np.asarray(y_true).reshape(-1).astype(int)
    s = np.asarray(y_score, dtype=np.float64).reshape(-1)
    grid = np.linspace(0, 1, 101)
    tprs, precisions = _bootstrap_bands(y, s, grid, n_boot, seed)
    auc = bootstrap_ci(y, s, "auc", n_boot=n_boot, seed=seed, alpha=alpha)
    ap = bootstrap_ci(y, s, "ap", n_boot=n_boot, seed=seed, alpha=alpha)
    fig, (ax_roc, ax_pr) = pyplot().subplots(1, 2, figsize=(10, 4.4))
    roc = RocCurveDisplay.from_predictions(
        y, s, ax=ax_roc, name=label, plot_chance_level=True,
        chance_level_kw={"color": "k", "linestyle": ":", "lw": 1, "label": "chance (AUC 0.5)"})
    roc.line_.set_label(f"{label}: AUC {auc['value']:.3f} [{auc['low']:.3f}, {auc['high']:.3f}]")
    band = f"{100 * (1 - alpha):.0f}% bootstrap band"
    lo, hi = np.quantile(tprs, [alpha / 2, 1 - alpha / 2], axis=0)
    ax_roc.fill_between(grid, lo, hi, alpha=0.25, label=band)
    pr = PrecisionRecallDisplay.from_predictions(
        y, s, ax=ax_pr, name=label, plot_chance_level=True,
        chance_level_kw={"color": "k", "linestyle": ":", "lw": 1,
                         "label": f"prevalence {y.mean():.2f}"})
    pr.line_.set_label(f"{label}: AP {ap['value']:.3f} [{ap['low']:.3f}, {ap['high']:.3f}]")
    lo, hi = np.quantile(precisions, [alpha / 2, 1 - alpha / 2], axis=0)
    ax_pr.fill_between(grid, lo, hi, alpha=0.25, label=band)
    ax_roc.set(xlabel=_FPR_LABEL, ylabel=_TPR_LABEL, title="ROC")
    ax_pr.set(xlabel=_RECALL_LABEL, ylabel=_PRECISION_LABEL, title="Precision-recall")
    for ax in (ax_roc, ax_pr):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right" if ax is ax_roc else "lower left")
    fig.tight_layout()
    return fig


def plot_threshold(y_true, y_score, threshold: float = 0.5,
                   class_names=("normal", "pneumonia")):
    """One threshold seen three ways: score histograms, confusion matrix, the four rates.

    The left panel shows the score histogram of each class with the threshold line and
    sensitivity, specificity, PPV and NPV in its title; the right one the confusion matrix
    (the threshold explorer's frame).

    Args:
        y_true: 0/1 labels.
        y_score: Scores of the positive class.
        threshold: Scores ``>= threshold`` are predicted positive.
        class_names: Names of class 0 and 1.

    Returns:
        The matplotlib Figure (histograms left, confusion matrix right).
    """
    from xraykit.evaluation import binary_metrics, metric_text

    y = np.asarray(y_true).reshape(-1).astype(int)
    s = np.asarray(y_score, dtype=np.float64).reshape(-1)
    m = binary_metrics(y, s, threshold)
    fig, (ax_h, ax_c) = pyplot().subplots(1, 2, figsize=(9.5, 3.6),
                                          gridspec_kw={"width_ratios": [1.5, 1]})
    bins = np.linspace(0, 1, 31)
    for k, name in enumerate(class_names):
        ax_h.hist(s[y == k], bins=bins, alpha=0.55, label=f"true {name} ({(y == k).sum()})")
    ax_h.axvline(threshold, color="k", lw=2, label=f"threshold {threshold:.2f}")
    ax_h.set_xlabel("score")
    ax_h.set_ylabel("images")
    ax_h.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3,
                frameon=False)  # under the axis, off the bars
    rates = [f"{label} {metric_text(m, key, 2)}" for label, key in (
        ("sensitivity", "sensitivity"), ("specificity", "specificity"), ("PPV", "precision"),
        ("NPV", "npv"))]
    ax_h.set_title("   ".join(rates), fontsize=9)
    plot_confusion(y, s, threshold, class_names=class_names, normalize=True, ax=ax_c)
    fig.tight_layout()
    return fig
