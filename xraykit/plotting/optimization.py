"""Figures of what an optimizer sees: losses per example, loss surfaces and learning rates."""

from __future__ import annotations

import numpy as np

from xraykit.plotting._figure import figure_and_axes, panel_grid


def plot_loss_vs_probability(losses: dict, probabilities=None, labels=(1, 0),
                             log_scale: bool = False):
    """Draws each loss of one example against the predicted probability, per true label.

    Args:
        losses: ``{name: loss}`` with Keras losses (or names for :func:`xraykit.losses.get_loss`).
        probabilities: Predicted probabilities to draw (default 200 points in (0, 1)).
        labels: True labels to draw, one panel each.
        log_scale: Log scale on the loss axis.

    Returns:
        The matplotlib ``Figure``.
    """
    from xraykit.losses import loss_curve

    p = np.linspace(0.005, 0.995, 200) if probabilities is None else np.asarray(probabilities)
    fig, axes = panel_grid(len(labels), len(labels), (5.5, 4))
    for ax, label in zip(axes[0], labels):
        for name, loss in losses.items():
            ax.plot(p, loss_curve(loss, p, y_true=label), label=name, lw=2)
        ax.set_xlabel("predicted probability of 'positive'")
        ax.set_ylabel("loss of the example")
        ax.set_title(f"true label = {label}")
        if log_scale:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_lr_range(result, ax=None, show_raw: bool = True):
    """Plots the loss against the learning rate of an LR range test, marking the suggestion.

    Args:
        result: The :class:`xraykit.optimizers.LRRangeResult` (or a dict with ``lrs``,
            ``losses``, ``suggested_lr`` and optionally ``raw_losses``, ``min_loss_lr``).
        ax: Axes to draw on (a new figure if ``None``).
        show_raw: Also draw the unsmoothed batch losses, faintly.

    Returns:
        The matplotlib ``Figure``.
    """
    def get(key):
        return result.get(key) if isinstance(result, dict) else getattr(result, key, None)

    fig, ax = figure_and_axes(ax, figsize=(6.5, 4))
    lrs, losses = np.asarray(get("lrs")), np.asarray(get("losses"))
    raw = get("raw_losses")
    if show_raw and raw is not None:
        ax.plot(lrs, np.asarray(raw)[: len(lrs)], color="0.75", lw=1, label="batch loss")
    ax.plot(lrs, losses, lw=2, label="smoothed loss")
    if get("min_loss_lr") is not None:
        ax.axvline(get("min_loss_lr"), color="tab:red", ls=":",
                   label=f"lowest loss {get('min_loss_lr'):.1e}")
    ax.axvline(get("suggested_lr"), color="tab:green", ls="--",
               label=f"suggested {get('suggested_lr'):.1e}")
    ax.set_xscale("log")
    top = np.nanpercentile(losses, 95) if len(losses) else 1
    ax.set_ylim(max(0.0, np.nanmin(losses) - 0.1 * abs(top)), top * 1.3 + 1e-9)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title("Learning-rate range test")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def plot_loss_surface(surface, trajectories: dict, xlim=None, ylim=None, minimum=None,
                      levels: int = 30, n: int = 150, log_levels: bool = True, ax=None):
    """Contour plot of a 2-D toy loss with the path of each optimizer.

    Args:
        surface: A :data:`xraykit.optimizers.TOY_SURFACES` name or a ``keras.ops`` function of
            ``w`` of shape ``(2,)``.
        trajectories: ``{name: (T, 2) array}``, e.g. from
            :func:`xraykit.optimizers.optimizer_trajectory`.
        xlim: ``(min, max)`` of the first parameter (default: the surface's).
        ylim: ``(min, max)`` of the second parameter.
        minimum: ``(w0, w1)`` of the minimum, drawn as a star.
        levels: Number of contour levels.
        n: Grid points per axis.
        log_levels: Space the contour levels logarithmically (good for steep valleys).
        ax: An existing Axes to draw on.

    Returns:
        The matplotlib ``Figure``.
    """
    from xraykit.optimizers import TOY_SURFACES, surface_grid

    info = TOY_SURFACES.get(surface, {}) if isinstance(surface, str) else {}
    xlim = xlim or info.get("xlim", (-3, 3))
    ylim = ylim or info.get("ylim", (-3, 3))
    minimum = minimum if minimum is not None else info.get("minimum")
    xs, ys, zs = surface_grid(surface, xlim, ylim, n)
    fig, ax = figure_and_axes(ax, figsize=(7, 5))
    if log_levels:
        shifted = zs - zs.min() + 1e-3
        lv = np.geomspace(shifted.min(), shifted.max(), levels)
        ax.contour(xs, ys, shifted, levels=lv, cmap="viridis", linewidths=0.7)
    else:
        ax.contour(xs, ys, zs, levels=levels, cmap="viridis", linewidths=0.7)
    for name, path in trajectories.items():
        path = np.asarray(path)
        ax.plot(path[:, 0], path[:, 1], "-o", ms=2, lw=1.5, label=name)
    if minimum is not None:
        ax.plot(*minimum, "k*", ms=14, label="minimum")
    if trajectories:
        ax.plot(*np.asarray(next(iter(trajectories.values())))[0], "ks", ms=7, label="start")
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_xlabel("w0")
    ax.set_ylabel("w1")
    ax.set_title(f"Optimizer paths on '{surface}'" if isinstance(surface, str)
                 else "Optimizer paths")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_lr_schedules(schedules: dict, steps: int | None = None, ax=None):
    """Learning rate against step for several schedules.

    Args:
        schedules: ``{name: optimizer, LearningRateSchedule, float or array of rates}``.
        steps: Steps to draw (needed unless arrays are given).
        ax: An existing Axes to draw on.

    Returns:
        The matplotlib ``Figure``.
    """
    from xraykit.optimizers import learning_rates

    fig, ax = figure_and_axes(ax, figsize=(6.5, 3.6))
    for name, schedule in schedules.items():
        values = np.asarray(schedule) if isinstance(schedule, (list, np.ndarray)) \
            else learning_rates(schedule, steps)
        ax.plot(np.arange(len(values)), values, lw=2, label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.set_title("Learning-rate schedules")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
