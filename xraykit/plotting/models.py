"""Figures comparing trained models: quality against cost, generalization gaps, weights."""

from __future__ import annotations

import numpy as np

from xraykit.plotting._figure import figure_and_axes, panel_grid


def plot_cost_vs_quality(table, cost: str = "seconds_per_epoch", quality: str = "val_auc",
                         name: str = "model", size: str | None = "params", log_x: bool = True,
                         ax=None):
    """Quality against cost for candidate models: the lesson 2 "which model?" plot.

    Args:
        table: A DataFrame or list of dicts with one row per model.
        cost: Column on the x axis (e.g. ``"seconds_per_epoch"`` or ``"params"``).
        quality: Column on the y axis (e.g. ``"val_auc"``).
        name: Column naming each point.
        size: Column scaling the marker area (e.g. ``"params"``), or ``None``.
        log_x: Logarithmic x axis.
        ax: An existing Axes to draw on.

    Returns:
        The matplotlib Figure.
    """
    rows = table.to_dict("records") if hasattr(table, "to_dict") else list(table)
    fig, ax = figure_and_axes(ax, figsize=(6, 4))
    x = np.array([float(r[cost]) for r in rows])
    y = np.array([float(r[quality]) for r in rows])
    if size:
        s = np.array([float(r[size]) for r in rows])
        area = 30 + 400 * np.sqrt(s / max(s.max(), 1))
    else:
        area = 60
    ax.scatter(x, y, s=area, alpha=0.6, edgecolor="k")
    for r, xi, yi in zip(rows, x, y):
        ax.annotate(str(r[name]), (xi, yi), textcoords="offset points", xytext=(6, 4),
                    fontsize=8)
    if log_x and np.all(x > 0):
        ax.set_xscale("log")
    ax.set_xlabel(cost.replace("_", " "))
    ax.set_ylabel(quality.replace("_", " "))
    ax.set_title(f"{quality} vs {cost} (marker area ~ {size})" if size else
                 f"{quality} vs {cost}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_generalization_gap(table, name_column: str | None = None, train: str = "train_auc",
                            val: str = "val_auc", ax=None):
    """Bar chart of train and validation scores per technique, gap annotated.

    The bars are point estimates: draw the validation intervals next to them (lesson 5) before
    reading one technique as better than another.

    Args:
        table: A ``pandas.DataFrame`` (index or ``name_column`` = technique) with the
            ``train`` and ``val`` columns (e.g. :func:`xraykit.runs.summary_table`,
            or lesson 5's table of inference-mode training AUC and validation AUC).
        name_column: Column holding the names (default: the index).
        train: Column of the training score.
        val: Column of the validation score.
        ax: An existing Axes to draw on.

    Returns:
        The matplotlib Figure.
    """
    names = list(table[name_column] if name_column else table.index)
    x = np.arange(len(names))
    fig, ax = figure_and_axes(ax, figsize=(max(6.0, 0.9 * len(names)), 3.6))
    ax.bar(x - 0.2, table[train], 0.4, label=train, color="tab:blue")
    ax.bar(x + 0.2, table[val], 0.4, label=val, color="tab:orange")
    for i, (t, v) in enumerate(zip(table[train], table[val])):
        ax.text(i, max(t, v) + 0.01, f"gap {t - v:+.3f}", ha="center", fontsize=8)
    ax.set_xticks(x, names, rotation=30, ha="right")
    low = float(np.nanmin(np.concatenate([table[train], table[val]])))
    ax.set_ylim(max(0.0, low - 0.1), 1.05)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Generalization gap per technique")
    fig.tight_layout()
    return fig


def plot_weight_histograms(weights: dict, bins: int = 80, log: bool = True,
                           clip: float | None = None):
    """Histograms of model weights, e.g. without regularization vs with L2 vs with L1.

    Each title gives the mean ``|w|`` and the share of weights with ``|w| < 1e-3``: L1 trained
    with SGD or Adam grows that share (weights near zero), which is not the share of weights
    exactly zero (see :func:`xraykit.runs.weight_stats`).

    Args:
        weights: ``{name: 1-D array of weights}`` (see
            :func:`xraykit.runs.kernel_weights`).
        bins: Histogram bins (shared edges across runs).
        log: Log-scaled counts (shows L1's pile-up near zero and the tails).
        clip: Largest absolute weight shown (default: the 99.9th percentile of all).

    Returns:
        The matplotlib Figure.
    """
    arrays = {k: np.asarray(v, dtype=np.float64).ravel() for k, v in weights.items()}
    everything = np.concatenate(list(arrays.values()))
    clip = float(clip or np.percentile(np.abs(everything), 99.9) or 1.0)
    edges = np.linspace(-clip, clip, bins + 1)
    fig, axes = panel_grid(len(arrays), len(arrays), (3.4, 2.8), sharey=True)
    for ax, (name, values) in zip(axes[0], arrays.items()):
        ax.hist(np.clip(values, -clip, clip), bins=edges, log=log, color="tab:blue", alpha=0.8)
        near_zero = float(np.mean(np.abs(values) < 1e-3))
        ax.set_title(f"{name}\n|w| mean {np.mean(np.abs(values)):.3g}, "
                     f"{100 * near_zero:.0f}% |w|<1e-3", fontsize=9)
        ax.set_xlabel("weight")
    axes[0, 0].set_ylabel("count (log)" if log else "count")
    fig.tight_layout()
    return fig
