"""Figures of hyperparameter searches: trials, effects of each hyperparameter, tuners compared."""

from __future__ import annotations

import numpy as np

from xraykit.plotting._figure import figure_and_axes, panel_grid, pyplot

_LOG_SCALE_PARAMS = ("learning_rate", "l2", "l1", "weight_decay")
_NOT_PARAMS = ("trial_id", "status", "score", "best_step", "seconds", "tuner_id", "error",
               "epochs_trained")


def _label(value) -> str:
    """A hyperparameter value as a short tick label (3 significant digits for numbers)."""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _best_so_far(scores, direction: str = "max") -> np.ndarray:
    """Best objective after each trial; failed trials (NaN) keep the previous best."""
    values = np.asarray(scores, dtype=np.float64)
    fill = -np.inf if direction == "max" else np.inf
    values = np.where(np.isnan(values), fill, values)
    best = np.maximum.accumulate(values) if direction == "max" else np.minimum.accumulate(values)
    return np.where(np.isinf(best), np.nan, best)


def plot_trials(frame, objective: str = "score", title: str | None = None, ax=None):
    """Objective of every trial in order, with the best-so-far line; failed trials as red x.

    Args:
        frame: From :func:`xraykit.tuning.results_frame`.
        objective: Column to draw (``"score"`` = validation AUC).
        title: Axes title.
        ax: Axes to draw in (default: a new figure).

    Returns:
        The matplotlib Figure.
    """
    fig, ax = figure_and_axes(ax, figsize=(6, 3.4))
    n = np.arange(1, len(frame) + 1)
    scores = frame[objective].to_numpy(dtype=np.float64)
    ok = (frame["status"] == "COMPLETED").to_numpy()
    ax.scatter(n[ok], scores[ok], color="tab:blue", zorder=3, label="trial")
    if (~ok).any():
        floor = np.nanmin(scores[ok]) if ok.any() else 0.0
        ax.scatter(n[~ok], np.full((~ok).sum(), floor), marker="x", color="red", zorder=3,
                   label="failed")
    ax.step(n, _best_so_far(np.where(ok, scores, np.nan)), where="post", color="tab:orange",
            label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{objective} (validation AUC)" if objective == "score" else objective)
    ax.set_title(title or "Hyperparameter search")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_hyperparameter_effects(frame, params=None, objective: str = "score", cols: int = 4):
    """Objective against each tuned hyperparameter (one panel each).

    Numeric hyperparameters are scattered (log scale for learning rate, L2, weight decay);
    categorical ones are drawn as jittered points per category with the category mean.

    Args:
        frame: From :func:`xraykit.tuning.results_frame`.
        params: Hyperparameters to draw (default: every column that varies across trials).
        objective: Column of the objective.
        cols: Panels per row.

    Returns:
        The matplotlib Figure.
    """
    done = frame[frame["status"] == "COMPLETED"]
    if params is None:
        params = [c for c in frame.columns
                  if c not in _NOT_PARAMS and not c.startswith(("best_", "tuner/"))
                  and frame[c].nunique(dropna=True) > 1]
    params = list(params) or ["trial_id"]
    fig, axes = panel_grid(len(params), cols, (3.2, 2.7), sharey=True)
    rng = np.random.default_rng(0)
    for ax, name in zip(axes.flat, params):
        values = done[name]
        scores = done[objective].to_numpy(dtype=np.float64)
        numeric = values.dropna().map(lambda v: isinstance(v, (int, float))
                                      and not isinstance(v, bool)).all()
        if numeric and values.nunique() > 4:
            ax.scatter(values.astype(float), scores, color="tab:blue")
            if name in _LOG_SCALE_PARAMS and (values.dropna().astype(float) > 0).all():
                from matplotlib.ticker import NullFormatter

                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: no overlapping labels
            ax.tick_params(axis="x", labelsize=8)
        else:
            known = values.dropna()
            order = sorted(known.unique(), key=float if numeric else str)
            labels = [_label(v) for v in order]
            for i, value in enumerate(order):
                chosen = scores[(values == value).to_numpy()]
                ax.scatter(i + rng.uniform(-0.12, 0.12, len(chosen)), chosen, color="tab:blue",
                           alpha=0.8)
                if len(chosen):
                    ax.hlines(np.mean(chosen), i - 0.3, i + 0.3, color="tab:orange")
            ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("validation AUC" if objective == "score" else objective)
    fig.tight_layout()
    return fig


def plot_tuner_comparison(frames: dict, objective: str = "score", direction: str = "max",
                          cost: str = "seconds"):
    """Compares searches: best objective vs trials, vs the training spent, and its total.

    Args:
        frames: ``{tuner name: results_frame}``.
        objective: Column of the objective.
        direction: ``"max"`` or ``"min"``.
        cost: Column of each trial's cost: ``"seconds"`` (logged by xraykit's tuners) or
            ``"epochs_trained"`` (fill it in for tuners other than Hyperband).

    Returns:
        The matplotlib Figure.
    """
    fig, axes = pyplot().subplots(1, 3, figsize=(13, 3.5))
    totals = {}
    for name, frame in frames.items():
        ok = (frame["status"] == "COMPLETED").to_numpy()
        scores = np.where(ok, frame[objective].to_numpy(dtype=np.float64), np.nan)
        best = _best_so_far(scores, direction)
        spent = np.cumsum(np.nan_to_num(frame[cost].to_numpy(dtype=np.float64)))
        totals[name] = spent[-1] if len(spent) else 0.0
        axes[0].step(np.arange(1, len(best) + 1), best, where="post", label=name, marker="o")
        axes[1].step(spent, best, where="post", label=name, marker="o")
    axes[0].set_xlabel("trials")
    unit = "seconds of training" if cost == "seconds" else cost.replace("_", " ")
    axes[1].set_xlabel(unit)
    for ax in axes[:2]:
        ax.set_ylabel("best validation AUC so far" if objective == "score" else objective)
        ax.grid(alpha=0.3)
    axes[2].bar(list(totals), list(totals.values()), color="tab:gray")
    axes[2].set_ylabel(f"total {unit}")
    axes[2].set_title("training spent")
    axes[0].set_title("best vs trials")
    axes[1].set_title(f"best vs {unit}")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=len(frames),
               fontsize=9, frameon=False)  # one legend for both panels, off the curves
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig
