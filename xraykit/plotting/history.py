"""Training curves: reading a training history and drawing its metrics per epoch."""

from __future__ import annotations

import os

import numpy as np

from xraykit.plotting._figure import figure_and_axes, panel_grid

#: Columns of a ``history.csv`` (``keras.callbacks.CSVLogger``) that are not metrics.
_NOT_METRICS = ("epoch",)


def read_history(history) -> dict[str, np.ndarray]:
    """The metrics of a training run, per epoch, from whatever form the run was kept in.

    Args:
        history: A ``keras.callbacks.History`` (from ``model.fit`` or
            :func:`xraykit.training.fit`), its ``.history`` dict, a ``pandas.DataFrame`` or the
            path of a ``history.csv`` written by ``keras.callbacks.CSVLogger``.

    Returns:
        ``{metric name: float64 array over epochs}``, without the CSV's ``epoch`` column.

    Raises:
        FileNotFoundError: If a path is given and the file does not exist.
        ValueError: If the CSV file has no metric column.
        TypeError: For any other kind of input.

    Example:
        >>> read_history({"loss": [0.7, 0.5], "val_loss": [0.8, 0.6]})["val_loss"]
        array([0.8, 0.6])
    """
    if isinstance(history, (str, os.PathLike)):
        import pandas as pd

        path = os.fspath(history)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such history file; pass the run folder's "
                                    "history.csv (written by keras.callbacks.CSVLogger).")
        frame = pd.read_csv(path)
        if not [c for c in frame.columns if c not in _NOT_METRICS]:
            raise ValueError(f"{path}: no metric columns (found {list(frame.columns)}); is this "
                             "a CSVLogger history.csv?")
        history = frame
    if hasattr(history, "history") and isinstance(history.history, dict):
        history = history.history
    elif hasattr(history, "columns") and hasattr(history, "to_dict"):
        history = {c: history[c].to_numpy() for c in history.columns}
    if not isinstance(history, dict):
        raise TypeError(f"expected a keras History, its .history dict, a DataFrame or a "
                        f"history.csv path, got {type(history).__name__}.")
    return {str(k): np.asarray(v, dtype=np.float64) for k, v in history.items()
            if k not in _NOT_METRICS}


def _epochs(values) -> np.ndarray:
    return np.arange(1, len(values) + 1)


def _best_epoch(values, metric: str) -> int:
    """1-based epoch of the best value: lowest for losses, highest for other metrics."""
    return int(np.nanargmin(values) if "loss" in metric else np.nanargmax(values)) + 1


def _draw_train_val(ax, curves: dict, metric: str) -> None:
    """Draws ``metric`` and ``val_<metric>`` of one run on ``ax``, the best epoch dotted."""
    for key, style, label in ((metric, "-", "train"), (f"val_{metric}", "--", "validation")):
        if key in curves:
            ax.plot(_epochs(curves[key]), curves[key], style, marker="o", ms=3, label=label)
    if f"val_{metric}" in curves:
        best = _best_epoch(curves[f"val_{metric}"], metric)
        ax.axvline(best, color="gray", lw=0.8, ls=":", label=f"best epoch {best}")
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)


def plot_history(history, metrics=("loss", "auc"), title: str | None = None):
    """Training and validation curves of one run, one panel per metric.

    Args:
        history: Anything :func:`read_history` reads.
        metrics: Metric names without the ``val_`` prefix; missing ones are skipped.
        title: Figure title.

    Returns:
        The matplotlib Figure.

    Raises:
        ValueError: If none of the metrics is in the history.
    """
    curves = read_history(history)
    metrics = [m for m in metrics if m in curves or f"val_{m}" in curves]
    if not metrics:
        raise ValueError(f"None of the metrics is in the history (it has {sorted(curves)}).")
    fig, axes = panel_grid(len(metrics), len(metrics), (4.2, 3.2))
    for ax, metric in zip(axes[0], metrics):
        _draw_train_val(ax, curves, metric)
        ax.set_title(metric)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_histories(histories: dict, metrics="val_auc", log_loss: bool = False, ax=None):
    """Several runs compared per epoch: one panel per history key, one line per run.

    On a figure of its own the legend sits beside the last panel, off the curves.

    Args:
        histories: ``{run name: anything read_history reads}``.
        metrics: A history key (``"val_auc"``) or several (``("loss", "val_loss")``).
        log_loss: Log scale on panels whose key contains ``"loss"``.
        ax: An Axes to draw on (one metric only); default a new figure.

    Returns:
        The matplotlib Figure.

    Raises:
        ValueError: If ``ax`` is given with several metrics.
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if ax is not None and len(metrics) != 1:
        raise ValueError(f"ax= takes one metric, got {metrics}; leave ax=None for one panel "
                         "per metric.")
    own_figure = ax is None
    if ax is not None or len(metrics) == 1:
        fig, ax = figure_and_axes(ax, figsize=(6, 3.8))
        axes = [ax]
    else:
        fig, grid = panel_grid(len(metrics), len(metrics), (4.6, 3.6))
        axes = list(grid[0])
    curves = {name: read_history(h) for name, h in histories.items()}
    for ax, metric in zip(axes, metrics):
        for name, run in curves.items():
            if metric in run:
                ax.plot(_epochs(run[metric]), run[metric], "-o", ms=3, label=name)
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        if log_loss and "loss" in metric:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    if own_figure:  # beside the last panel, where no curve runs under it
        axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    else:
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_train_vs_val(histories: dict, metric: str = "auc", cols: int = 4,
                      panel_size: float = 3.0, ylim=None):
    """Training against validation curves, one panel per run: where each run starts to overfit.

    Args:
        histories: ``{run name: anything read_history reads}``.
        metric: Metric to draw (``"auc"``, ``"loss"``...); ``val_<metric>`` is drawn too.
        cols: Panels per row.
        panel_size: Inches per panel.
        ylim: Shared y-limits (default: from the data).

    Returns:
        The matplotlib Figure.
    """
    names = list(histories)
    fig, axes = panel_grid(len(names), cols, (panel_size, panel_size * 0.8), sharey=True)
    for ax, name in zip(axes.flat, names):
        _draw_train_val(ax, read_history(histories[name]), metric)
        ax.set_title(name, fontsize=10)
    axes[0, 0].set_ylabel(metric)
    if ylim is not None:
        axes[0, 0].set_ylim(*ylim)
    fig.suptitle(f"Train vs validation {metric} (dotted: best validation epoch)")
    fig.tight_layout()
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8,
               frameon=False)  # under the panels, off the curves
    fig.subplots_adjust(bottom=fig.subplotpars.bottom + 0.4 / fig.get_figheight())
    return fig
