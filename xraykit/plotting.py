"""Figures for the lessons: image grids, histograms, galleries, curves and result plots.

Every function draws with matplotlib and returns the ``Figure``; nothing in the core of
xraykit imports this module. Inputs are plain arrays and dicts, so the functions work on a
practitioner's own results too.
"""

from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib.pyplot as plt

    return plt


# ---- images and augmentation (lesson 1) ----


def _as_2d(image) -> np.ndarray:
    """One image as (H, W) (or (H, W, 3) for RGB) for imshow."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3):
        raise ValueError(f"expected one image (H, W[, C]), got shape {img.shape}.")
    return img


def image_grid(images, titles=None, cols: int | None = None, cmap: str = "gray",
               vmin: float | None = 0.0, vmax: float | None = 1.0, suptitle: str | None = None,
               panel_size: float = 2.0):
    """Images in a grid, each with an optional title (label, prediction, method).

    Args:
        images: Sequence or array ``(N, H, W[, C])`` of images.
        titles: Optional list of N titles.
        cols: Columns (default: up to 8).
        cmap: Colormap for grayscale images.
        vmin: Lower display limit (``None`` = each image's own minimum).
        vmax: Upper display limit (``None`` = each image's own maximum).
        suptitle: Figure title.
        panel_size: Inches per panel.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    images = [_as_2d(img) for img in images]
    n = len(images)
    if n == 0:
        raise ValueError("image_grid needs at least one image.")
    cols = cols or min(n, 8)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(panel_size * cols, panel_size * rows + 0.3),
                             squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap=cmap, vmin=vmin, vmax=vmax)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def compare_grid(columns: dict, row_labels=None, panel_size: float = 2.0, show_range: bool = True):
    """The same images under several transforms, side by side (rows = images, columns = methods).

    Each panel is displayed with its own min/max (normalized images leave [0, 1]); the column
    title gives the method and, with ``show_range``, the value range of the column.

    Args:
        columns: ``{"raw": images, "z-score": images2, "augmented": images3, ...}``; each value an
            array ``(N, H, W[, 1])`` with the same N.
        row_labels: Optional N labels shown at the left of each row.
        panel_size: Inches per panel.
        show_range: Adds ``[min, max]`` of each column to its title.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    names = list(columns)
    arrays = [np.asarray(columns[k], dtype=np.float32) for k in names]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("compare_grid: every column must hold the same number of images.")
    fig, axes = plt.subplots(n, len(names), figsize=(panel_size * len(names), panel_size * n + 0.4),
                             squeeze=False)
    for j, (name, arr) in enumerate(zip(names, arrays)):
        title = name + (f"\n[{arr.min():.3g}, {arr.max():.3g}]" if show_range else "")
        axes[0, j].set_title(title, fontsize=9)
        for i in range(n):
            axes[i, j].imshow(_as_2d(arr[i]), cmap="gray")
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if j == 0 and row_labels is not None:
                axes[i, j].set_ylabel(str(row_labels[i]), fontsize=9)
    fig.tight_layout()
    return fig


def intensity_histograms(arrays: dict, bins: int = 64, layout: str = "grid", density: bool = True,
                         panel_size: tuple[float, float] = (3.2, 2.4), title: str | None = None):
    """Pixel-intensity histograms of several image sets or normalizations.

    Args:
        arrays: ``{"name": images}``; every pixel of each array goes into its histogram.
        bins: Histogram bins.
        layout: ``"grid"`` (one panel each, own x-axis: for different normalizations) or
            ``"overlay"`` (one panel: for sources on the same scale, e.g. DICOM vs PNG in [0, 1]).
        density: Normalizes each histogram to unit area (compare sets of different sizes).
        panel_size: Inches per panel.
        title: Figure title.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    if layout not in ("grid", "overlay"):
        raise ValueError(f"layout must be 'grid' or 'overlay', not {layout!r}.")
    items = [(k, np.asarray(v, dtype=np.float32).ravel()) for k, v in arrays.items()]
    if layout == "overlay":
        fig, ax = plt.subplots(figsize=(panel_size[0] * 1.6, panel_size[1] * 1.3))
        for name, values in items:
            ax.hist(values, bins=bins, density=density, histtype="step", linewidth=1.5,
                    label=f"{name} (mean {values.mean():.2f}, std {values.std():.2f})")
        ax.set_xlabel("intensity")
        ax.set_ylabel("density" if density else "pixels")
        ax.legend(fontsize=8)
    else:
        cols = min(len(items), 4)
        rows = int(np.ceil(len(items) / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(panel_size[0] * cols, panel_size[1] * rows),
                                 squeeze=False)
        for ax, (name, values) in zip(axes.ravel(), items):
            ax.hist(values, bins=bins, density=density, color="tab:blue")
            ax.set_title(f"{name}\nmean {values.mean():.2f}, std {values.std():.2f}", fontsize=9)
            ax.tick_params(labelsize=8)
        for ax in axes.ravel()[len(items):]:
            ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def augmentation_gallery(image, preset="light", n: int = 8, seed: int = 0, strength: float = 1.0,
                         cols: int = 5, title: str | None = None):
    """One image and ``n`` random draws of an augmentation preset (or any augmentation layer).

    Args:
        image: One image ``(H, W[, 1])`` in [0, 1].
        preset: Preset name or a built pipeline/layer.
        n: Number of draws.
        seed: Seed of the preset.
        strength: Strength of the preset.
        cols: Columns.
        title: Figure title (default: the preset and strength).

    Returns:
        The matplotlib Figure (first panel: the original).
    """
    from xraykit.augmentation import augment_numpy, augmentation_layers

    img = _as_2d(image)[..., None]
    pipe = augmentation_layers(preset, seed=seed, strength=strength) if isinstance(preset, str) \
        else preset
    draws = augment_numpy(np.repeat(img[None], n, axis=0), pipe)
    label = preset if isinstance(preset, str) else getattr(preset, "name", "augmentation")
    return image_grid([img, *draws], titles=["original"] + [f"draw {i + 1}" for i in range(n)],
                      cols=cols, suptitle=title or f"{label} (strength {strength:g})")


def preset_gallery(image, presets=("none", "light", "medium", "heavy"), n: int = 5, seed: int = 0,
                   strength: float = 1.0, panel_size: float = 1.8):
    """Rows of random draws, one row per augmentation preset, for the same image.

    Args:
        image: One image ``(H, W[, 1])`` in [0, 1].
        presets: Preset names.
        n: Draws per preset.
        seed: Seed of the presets.
        strength: Strength of the presets.
        panel_size: Inches per panel.

    Returns:
        The matplotlib Figure.
    """
    from xraykit.augmentation import augment_numpy

    plt = _plt()
    img = _as_2d(image)[..., None]
    fig, axes = plt.subplots(len(presets), n, figsize=(panel_size * n, panel_size * len(presets)),
                             squeeze=False)
    for r, preset in enumerate(presets):
        draws = augment_numpy(np.repeat(img[None], n, axis=0), preset, seed=seed,
                              strength=strength)
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(draws[c, ..., 0], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(preset, fontsize=10)
    fig.suptitle(f"augmentation presets (strength {strength:g})")
    fig.tight_layout()
    return fig


def mix_examples(images, labels, method: str = "mixup", n: int = 4, seed: int = 0,
                 class_names=None, **kwargs):
    """MixUp or CutMix pictures: the original pairs and the mixed images with their soft labels.

    Args:
        images: ``(N, H, W, 1)`` images in [0, 1] (the first ``n`` are used).
        labels: ``(N,)`` or ``(N, 1)`` binary labels.
        method: ``"mixup"`` or ``"cutmix"``.
        n: Number of images.
        seed: Seed.
        class_names: Optional names for label 0/1 (titles then show P(class 1)).
        **kwargs: Passed to :func:`xraykit.augmentation.mixup` / ``cutmix`` (``alpha``, ``factor``).

    Returns:
        The matplotlib Figure (top row: originals; bottom row: mixed).
    """
    from xraykit.augmentation import cutmix, mixup

    if method not in ("mixup", "cutmix"):
        raise ValueError(f"method must be 'mixup' or 'cutmix', not {method!r}.")
    x = np.asarray(images, dtype=np.float32)[:n]
    y = np.asarray(labels, dtype=np.float32).reshape(len(images), -1)[:n]
    fn = mixup if method == "mixup" else cutmix
    mixed, soft = fn(x, y, seed=seed, **kwargs)
    positive = (class_names[1] if class_names is not None else "class 1")
    titles = [f"y={y[i, 0]:g}" for i in range(n)] + \
        [f"P({positive})={soft[i, 0]:.2f}" for i in range(n)]
    return image_grid([*x, *mixed], titles=titles, cols=n,
                      suptitle=f"{method}: originals (top) and mixed (bottom)")



# ---- training curves and model comparison (lesson 2) ----
def _history_dict(history) -> dict:
    """Accepts a keras History, its ``.history`` dict, or a pandas DataFrame."""
    if hasattr(history, "history"):
        return dict(history.history)
    if hasattr(history, "to_dict") and hasattr(history, "columns"):
        return {c: list(history[c]) for c in history.columns}
    return dict(history)


def plot_history(history, metrics=("loss", "auc"), title: str | None = None):
    """Training and validation curves per epoch, one panel per metric.

    Args:
        history: A ``keras.callbacks.History`` (from :func:`xraykit.training.fit`), its
            ``.history`` dict, or a DataFrame read from ``history.csv``.
        metrics: Metric names without the ``val_`` prefix; missing ones are skipped.
        title: Figure title.

    Returns:
        The matplotlib Figure.

    Raises:
        ValueError: If none of the metrics is in the history.
    """
    plt = _plt()
    h = _history_dict(history)
    metrics = [m for m in metrics if m in h or f"val_{m}" in h]
    if not metrics:
        raise ValueError(f"None of the metrics is in the history (it has {sorted(h)}).")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for key, style, label in ((metric, "-", "train"), (f"val_{metric}", "--", "validation")):
            if key in h:
                values = np.asarray(h[key], dtype=float)
                ax.plot(np.arange(1, len(values) + 1), values, style, marker="o", ms=3,
                        label=label)
        if f"val_{metric}" in h and metric != "loss":
            best = int(np.nanargmax(h[f"val_{metric}"]))
            ax.axvline(best + 1, color="gray", lw=0.8, ls=":", label=f"best epoch {best + 1}")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_histories(histories: dict, metric: str = "val_auc", ax=None):
    """One metric per epoch for several runs (e.g. the candidate models of lesson 2).

    Args:
        histories: ``{run name: History or history dict}``.
        metric: The history key to plot (e.g. ``"val_auc"``).
        ax: An existing Axes to draw on.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3.8))
    for name, history in histories.items():
        values = _history_dict(history).get(metric)
        if values is not None:
            ax.plot(np.arange(1, len(values) + 1), values, marker="o", ms=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


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
    plt = _plt()
    rows = table.to_dict("records") if hasattr(table, "to_dict") else list(table)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
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


def _curves(y_true, scores, class_names):
    """Yields ``(legend name, scores, curve dict, single curve?)`` for every run and label."""
    from xraykit.evaluation import roc_curves

    runs = scores if isinstance(scores, dict) else {None: scores}
    for run, run_scores in runs.items():
        curves = roc_curves(y_true, run_scores, class_names)
        for label, curve in curves.items():
            if run is None:
                name = label
            else:
                name = run if len(curves) == 1 else f"{run}: {label}"
            yield name, run_scores, curve, len(curves) == 1


def plot_roc(y_true, scores, class_names=None, ax=None, operating_point: float | None = None):
    """ROC curves with AUCs in the legend.

    Args:
        y_true: 0/1 labels, ``(N,)``/``(N, 1)`` or multi-label ``(N, L)``.
        scores: Scores of the same shape, or ``{model name: scores}`` to compare models on a
            binary task.
        class_names: Label names for multi-label data.
        ax: An existing Axes to draw on.
        operating_point: A threshold to mark on each binary curve (e.g. the one chosen on
            validation).

    Returns:
        The matplotlib Figure.
    """
    from xraykit.evaluation import binary_metrics

    plt = _plt()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(4.8, 4.5))
    for name, s, c, single in _curves(y_true, scores, class_names):
        line, = ax.plot(c["fpr"], c["tpr"], label=f"{name} (AUC {c['auc']:.3f})")
        if operating_point is not None and single:
            m = binary_metrics(y_true, s, operating_point)
            ax.plot(1 - m["specificity"], m["sensitivity"], "o", color=line.get_color())
    ax.plot([0, 1], [0, 1], ":", color="gray", lw=1)
    ax.set_xlabel("1 - specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    ax.set_title("ROC")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_pr(y_true, scores, class_names=None, ax=None):
    """Precision-recall curves with average precision and the prevalence baseline.

    Args:
        y_true: 0/1 labels, ``(N,)``/``(N, 1)`` or multi-label ``(N, L)``.
        scores: Scores of the same shape, or ``{model name: scores}``.
        class_names: Label names for multi-label data.
        ax: An existing Axes to draw on.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(4.8, 4.5))
    for name, _, c, _ in _curves(y_true, scores, class_names):
        line, = ax.plot(c["recall"], c["precision"], label=f"{name} (AP {c['ap']:.3f})")
        ax.axhline(c["prevalence"], color=line.get_color(), ls=":", lw=0.8)
    ax.set_xlabel("recall (sensitivity)")
    ax.set_ylabel("precision (PPV)")
    ax.set_title("Precision-recall (dotted: prevalence)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def plot_confusion(y_true, y_score, threshold: float = 0.5, class_names=("normal", "pneumonia"),
                   normalize: bool = False, ax=None):
    """Confusion matrix at a threshold, with counts (and row percentages).

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
    from xraykit.evaluation import confusion

    plt = _plt()
    cm = confusion(y_true, y_score, threshold)
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(3.8, 3.4))
    ax.imshow(rows if normalize else cm, cmap="Blues", vmin=0)
    for i in range(2):
        for j in range(2):
            ax.text(j, i, f"{cm[i, j]}\n({100 * rows[i, j]:.1f}%)", ha="center", va="center",
                    color="white" if rows[i, j] > 0.5 else "black")
    ax.set_xticks([0, 1], [f"pred {c}" for c in class_names])
    ax.set_yticks([0, 1], [f"true {c}" for c in class_names])
    ax.set_title(f"threshold {threshold:.3f}")
    fig.tight_layout()
    return fig



# ---- losses and optimizers (lessons 3 and 4) ----


def loss_vs_probability(losses: dict, probabilities=None, labels=(1, 0), log_scale: bool = False):
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

    plt = _plt()
    p = np.linspace(0.005, 0.995, 200) if probabilities is None else np.asarray(probabilities)
    fig, axes = plt.subplots(1, len(labels), figsize=(5.5 * len(labels), 4), squeeze=False)
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


def lr_range_plot(result, ax=None, show_raw: bool = True):
    """Plots the loss against the learning rate of an LR range test, marking the suggestion.

    Args:
        result: The :class:`xraykit.optimizers.LRRangeResult` (or a dict with ``lrs``,
            ``losses``, ``suggested_lr`` and optionally ``raw_losses``, ``min_loss_lr``).
        ax: Axes to draw on (a new figure if ``None``).
        show_raw: Also draw the unsmoothed batch losses, faintly.

    Returns:
        The matplotlib ``Figure``.
    """
    plt = _plt()
    get = (lambda k, d=None: result.get(k, d)) if isinstance(result, dict) else \
        (lambda k, d=None: getattr(result, k, d))
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 4))
    else:
        fig = ax.figure
    lrs, losses = np.asarray(get("lrs")), np.asarray(get("losses"))
    raw = get("raw_losses")
    if show_raw and raw is not None:
        ax.plot(lrs, np.asarray(raw)[: len(lrs)], color="0.75", lw=1, label="batch loss")
    ax.plot(lrs, losses, lw=2, label="smoothed loss")
    if get("min_loss_lr") is not None:
        ax.axvline(get("min_loss_lr"), color="tab:red", ls=":", label=f"lowest loss {get('min_loss_lr'):.1e}")
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


def loss_surface_trajectories(surface, trajectories: dict, xlim=None, ylim=None, minimum=None,
                              levels: int = 30, n: int = 150, log_levels: bool = True):
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

    Returns:
        The matplotlib ``Figure``.
    """
    from xraykit.optimizers import TOY_SURFACES, surface_grid

    plt = _plt()
    info = TOY_SURFACES.get(surface, {}) if isinstance(surface, str) else {}
    xlim = xlim or info.get("xlim", (-3, 3))
    ylim = ylim or info.get("ylim", (-3, 3))
    minimum = minimum if minimum is not None else info.get("minimum")
    xs, ys, zs = surface_grid(surface, xlim, ylim, n)
    fig, ax = plt.subplots(figsize=(7, 5))
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
    start = np.asarray(next(iter(trajectories.values())))[0] if trajectories else None
    if start is not None:
        ax.plot(*start, "ks", ms=7, label="start")
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_xlabel("w0")
    ax.set_ylabel("w1")
    ax.set_title(f"Optimizer paths on '{surface}'" if isinstance(surface, str) else "Optimizer paths")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def run_curves(histories: dict, metrics=("loss", "val_loss", "val_auc"), log_loss: bool = False):
    """Training curves of several runs side by side (one panel per metric).

    Args:
        histories: ``{name: History or history dict}``.
        metrics: History keys to draw, one panel each.
        log_loss: Log scale on panels whose metric name contains "loss".

    Returns:
        The matplotlib ``Figure``.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name, history in histories.items():
            values = getattr(history, "history", history).get(metric)
            if values is not None:
                ax.plot(np.arange(1, len(values) + 1), values, "-o", ms=3, label=name)
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        if log_loss and "loss" in metric:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def schedule_plot(schedules: dict, steps: int | None = None):
    """Learning rate against step for several schedules.

    Args:
        schedules: ``{name: optimizer, LearningRateSchedule, float or array of rates}``.
        steps: Steps to draw (needed unless arrays are given).

    Returns:
        The matplotlib ``Figure``.
    """
    from xraykit.optimizers import learning_rates

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
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


# ---- regularization and tuning (lessons 5 and 6) ----


_LOG_SCALE_PARAMS = ("learning_rate", "l2", "l1", "weight_decay")
_NOT_PARAMS = ("trial_id", "status", "score", "best_step", "seconds", "tuner_id", "error")


def _curves_of(history) -> dict:
    """The ``{metric: [values per epoch]}`` dict of a History (or the dict itself)."""
    return dict(getattr(history, "history", history))


def regularization_curves(histories: dict, metric: str = "auc", cols: int = 4,
                          panel_size: float = 3.0, ylim=None):
    """Training and validation curves of several runs side by side, one panel per run.

    Args:
        histories: ``{name: keras History or its .history dict}``.
        metric: Metric to draw (``"auc"``, ``"loss"``, ...); ``val_<metric>`` is drawn too.
        cols: Panels per row.
        panel_size: Inches per panel.
        ylim: Shared y-limits (default: from the data).

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    names = list(histories)
    cols = max(1, min(cols, len(names)))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(panel_size * cols, panel_size * 0.8 * rows),
                             squeeze=False, sharey=True)
    for ax, name in zip(axes.flat, names):
        curves = _curves_of(histories[name])
        train, val = curves.get(metric), curves.get(f"val_{metric}")
        if train is not None:
            ax.plot(np.arange(1, len(train) + 1), train, label="train", color="tab:blue")
        if val is not None:
            ax.plot(np.arange(1, len(val) + 1), val, label="validation", color="tab:orange")
            best = int(np.argmax(val) if metric != "loss" else np.argmin(val))
            ax.axvline(best + 1, color="gray", lw=0.8, ls=":")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes[0, 0].set_ylabel(metric)
    axes[0, 0].legend(fontsize=8)
    if ylim is not None:
        axes[0, 0].set_ylim(*ylim)
    fig.suptitle(f"Train vs validation {metric} (dotted: best validation epoch)")
    fig.tight_layout()
    return fig


def weight_histograms(weights: dict, bins: int = 80, log: bool = True, clip: float | None = None):
    """Histograms of model weights, e.g. without regularization vs with L2 vs with L1.

    Args:
        weights: ``{name: 1-D array of weights}`` (see
            :func:`xraykit.regularization.kernel_weights`).
        bins: Histogram bins (shared edges across runs).
        log: Log-scaled counts (shows L1's spike at zero and the tails).
        clip: Largest absolute weight shown (default: the 99.9th percentile of all).

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    arrays = {k: np.asarray(v, dtype=np.float64).ravel() for k, v in weights.items()}
    everything = np.concatenate(list(arrays.values()))
    clip = float(clip or np.percentile(np.abs(everything), 99.9) or 1.0)
    edges = np.linspace(-clip, clip, bins + 1)
    fig, axes = plt.subplots(1, len(arrays), figsize=(3.4 * len(arrays), 2.8), sharey=True,
                             squeeze=False)
    for ax, (name, values) in zip(axes[0], arrays.items()):
        ax.hist(np.clip(values, -clip, clip), bins=edges, log=log, color="tab:blue", alpha=0.8)
        near_zero = float(np.mean(np.abs(values) < 1e-3))
        ax.set_title(f"{name}\n|w| mean {np.mean(np.abs(values)):.3g}, "
                     f"{100 * near_zero:.0f}% |w|<1e-3", fontsize=9)
        ax.set_xlabel("weight")
    axes[0, 0].set_ylabel("count (log)" if log else "count")
    fig.tight_layout()
    return fig


def generalization_gap(table, name_column: str | None = None, train: str = "train_auc",
                       val: str = "val_auc"):
    """Bar chart of train and validation scores per technique, gap annotated.

    Args:
        table: A ``pandas.DataFrame`` (index or ``name_column`` = technique) with the
            ``train`` and ``val`` columns (see :func:`xraykit.regularization.summary_table`).
        name_column: Column holding the names (default: the index).
        train: Column of the training score.
        val: Column of the validation score.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    names = list(table[name_column] if name_column else table.index)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(names)), 3.6))
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


def _best_so_far(scores, direction: str = "max") -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64)
    fill = -np.inf if direction == "max" else np.inf
    values = np.where(np.isnan(values), fill, values)
    best = np.maximum.accumulate(values) if direction == "max" else np.minimum.accumulate(values)
    return np.where(np.isinf(best), np.nan, best)


def tuning_trials(frame, objective: str = "score", title: str | None = None, ax=None):
    """Objective of every trial in order, with the best-so-far line; failed trials as red x.

    Args:
        frame: From :func:`xraykit.tuning.results_frame`.
        objective: Column to draw (``"score"`` = validation AUC).
        title: Axes title.
        ax: Axes to draw in (default: a new figure).

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    fig = ax.figure if ax is not None else plt.subplots(figsize=(6, 3.4))[0]
    ax = ax or fig.axes[0]
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


def hyperparameter_effects(frame, params=None, objective: str = "score", cols: int = 4):
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
    plt = _plt()
    done = frame[frame["status"] == "COMPLETED"]
    if params is None:
        params = [c for c in frame.columns
                  if c not in _NOT_PARAMS and not c.startswith(("best_", "tuner/"))
                  and frame[c].nunique(dropna=True) > 1]
    params = list(params) or ["trial_id"]
    cols = max(1, min(cols, len(params)))
    rows = int(np.ceil(len(params) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.7 * rows), squeeze=False,
                             sharey=True)
    rng = np.random.default_rng(0)
    for ax, name in zip(axes.flat, params):
        values = done[name]
        scores = done[objective].to_numpy(dtype=np.float64)
        numeric = values.dropna().map(lambda v: isinstance(v, (int, float))
                                      and not isinstance(v, bool)).all()
        if numeric and values.nunique() > 4:
            ax.scatter(values.astype(float), scores, color="tab:blue")
            if name in _LOG_SCALE_PARAMS and (values.dropna().astype(float) > 0).all():
                ax.set_xscale("log")
        else:
            labels = sorted(values.dropna().astype(str).unique())
            for i, label in enumerate(labels):
                chosen = scores[(values.astype(str) == label).to_numpy()]
                ax.scatter(i + rng.uniform(-0.12, 0.12, len(chosen)), chosen, color="tab:blue",
                           alpha=0.8)
                if len(chosen):
                    ax.hlines(np.mean(chosen), i - 0.3, i + 0.3, color="tab:orange")
            ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(params):]:
        ax.axis("off")
    axes[0, 0].set_ylabel("validation AUC" if objective == "score" else objective)
    fig.tight_layout()
    return fig


def tuner_comparison(frames: dict, objective: str = "score", direction: str = "max"):
    """Compares searches: best objective vs trials, vs time spent, and total time.

    Args:
        frames: ``{tuner name: results_frame}``.
        objective: Column of the objective.
        direction: ``"max"`` or ``"min"``.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    totals = {}
    for name, frame in frames.items():
        ok = (frame["status"] == "COMPLETED").to_numpy()
        scores = np.where(ok, frame[objective].to_numpy(dtype=np.float64), np.nan)
        best = _best_so_far(scores, direction)
        seconds = np.cumsum(np.nan_to_num(frame["seconds"].to_numpy(dtype=np.float64)))
        totals[name] = seconds[-1] if len(seconds) else 0.0
        axes[0].step(np.arange(1, len(best) + 1), best, where="post", label=name, marker="o")
        axes[1].step(seconds, best, where="post", label=name, marker="o")
    axes[0].set_xlabel("trials")
    axes[1].set_xlabel("seconds of training")
    for ax in axes[:2]:
        ax.set_ylabel("best validation AUC so far" if objective == "score" else objective)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[2].bar(list(totals), list(totals.values()), color="tab:gray")
    axes[2].set_ylabel("total seconds")
    axes[2].set_title("time spent")
    axes[0].set_title("best vs trials")
    axes[1].set_title("best vs time")
    fig.tight_layout()
    return fig


# ---- evaluation and explainability (lesson 7) ----

def _overlay(ax, image, heatmap, alpha: float = 0.45, cmap: str = "jet"):
    """Draws a grayscale image with a [0, 1] heatmap on top."""
    ax.imshow(_as_2d(image), cmap="gray", vmin=0.0, vmax=1.0)
    ax.imshow(np.asarray(heatmap, dtype=np.float32), cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0)
    ax.axis("off")


def grad_cam_overlay(images, heatmaps, titles=None, alpha: float = 0.45, cols: int | None = None,
                     cmap: str = "jet", show_image: bool = False, panel_size: float = 2.2,
                     suptitle: str | None = None):
    """Grad-CAM heatmaps over their radiographs.

    Args:
        images: ``(N, H, W[, 1])`` images in [0, 1].
        heatmaps: ``(N, H, W)`` maps in [0, 1], e.g. from :func:`xraykit.explain.grad_cam`.
        titles: Optional N titles (label, score...).
        alpha: Opacity of the heatmap.
        cols: Columns (default: up to 6, or 3 image/overlay pairs with ``show_image``).
        cmap: Colormap of the heatmap.
        show_image: Also show each plain image to the left of its overlay.
        panel_size: Inches per panel.
        suptitle: Figure title.

    Returns:
        The matplotlib Figure.

    Raises:
        ValueError: If the numbers or sizes of images and heatmaps differ.
    """
    plt = _plt()
    images = np.asarray(images, dtype=np.float32)
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    if images.ndim == 4:
        images = images[..., 0]
    if images.shape != heatmaps.shape:
        raise ValueError(f"images {images.shape} and heatmaps {heatmaps.shape} must match "
                         "(N, H, W): compute the heatmaps on these images.")
    n = len(images)
    per = 2 if show_image else 1
    cols = cols or min(n * per, 6 if per == 1 else 6)
    cols = max(per, cols - cols % per)
    rows = int(np.ceil(n * per / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(panel_size * cols, panel_size * rows + 0.3),
                             squeeze=False)
    flat = axes.ravel()
    for ax in flat:
        ax.axis("off")
    for i in range(n):
        if show_image:
            flat[2 * i].imshow(images[i], cmap="gray", vmin=0.0, vmax=1.0)
            ax = flat[2 * i + 1]
        else:
            ax = flat[i]
        _overlay(ax, images[i], heatmaps[i], alpha=alpha, cmap=cmap)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def error_gallery(images, y_true, y_score, threshold: float = 0.5, n: int = 6, heatmaps=None,
                  class_names=("normal", "pneumonia"), panel_size: float = 2.0):
    """The most confident mistakes: false positives (top row) and false negatives (bottom row).

    False positives are the negatives with the highest scores, false negatives the positives
    with the lowest scores; each panel shows its score.

    Args:
        images: ``(N, H, W[, 1])`` images in [0, 1].
        y_true: 0/1 labels ``(N,)`` or ``(N, 1)``.
        y_score: Scores of the positive class.
        threshold: Decision threshold (``score >= threshold`` is positive).
        n: Most mistakes shown per row.
        heatmaps: Optional ``(N, H, W)`` Grad-CAM maps drawn over the images.
        class_names: Names of class 0 and 1.
        panel_size: Inches per panel.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    images = np.asarray(images, dtype=np.float32)
    y_true = np.asarray(y_true).reshape(-1)
    y_score = np.asarray(y_score, dtype=np.float64).reshape(-1)
    if not len(images) == len(y_true) == len(y_score):
        raise ValueError(f"images ({len(images)}), y_true ({len(y_true)}) and y_score "
                         f"({len(y_score)}) must have the same length.")
    pred = y_score >= threshold
    fp = np.flatnonzero((y_true == 0) & pred)
    fn = np.flatnonzero((y_true == 1) & ~pred)
    fp = fp[np.argsort(-y_score[fp])][:n]
    fn = fn[np.argsort(y_score[fn])][:n]
    cols = max(1, len(fp), len(fn))
    fig, axes = plt.subplots(2, cols, figsize=(panel_size * cols, 2 * panel_size + 0.6),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    rows = ((fp, f"false positive (true {class_names[0]})"),
            (fn, f"false negative (true {class_names[1]})"))
    for r, (index, label) in enumerate(rows):
        if len(index) == 0:
            axes[r, 0].text(0.5, 0.5, f"no {label.split(' (')[0]}s", ha="center", va="center",
                            transform=axes[r, 0].transAxes)
        for c, i in enumerate(index):
            ax = axes[r, c]
            if heatmaps is not None:
                _overlay(ax, images[i], heatmaps[i])
            else:
                ax.imshow(_as_2d(images[i]), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_title(f"#{i} score {y_score[i]:.2f}", fontsize=9)
        axes[r, 0].set_ylabel(label)
    fig.suptitle(f"Most confident errors at threshold {threshold:.2f}: top: false positives, "
                 "bottom: false negatives", fontsize=10)
    fig.tight_layout()
    return fig


def calibration_plot(y_true, scores: dict, n_bins: int | None = None):
    """Reliability diagram with the expected calibration error of each model, and the
    histogram of predicted probabilities underneath.

    Args:
        y_true: 0/1 labels.
        scores: ``{name: probabilities}``, e.g. ``{"before": p, "after T-scaling": p_cal}``.
        n_bins: Equal-width bins (default ``xraykit.calibration.N_BINS``, the bins of a printed
            ``expected_calibration_error``, so legend and print agree).

    Returns:
        The matplotlib Figure.
    """
    from xraykit.calibration import N_BINS, expected_calibration_error, reliability_curve

    n_bins = n_bins or N_BINS
    plt = _plt()
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5, 6.2), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], "k:", label="perfectly calibrated")
    for name, score in scores.items():
        curve = reliability_curve(y_true, score, n_bins=n_bins)
        ece = expected_calibration_error(y_true, score, n_bins=n_bins)
        ax.plot(curve["mean_predicted"], curve["fraction_positive"], "-o", ms=4,
                label=f"{name} (ECE {ece:.3f})")
        hist.hist(np.asarray(score).reshape(-1), bins=np.linspace(0, 1, n_bins * 2 + 1),
                  alpha=0.5, label=name)
    ax.set_ylabel("fraction of positives")
    ax.set_title("Reliability diagram")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    hist.set_xlabel("predicted probability")
    hist.set_ylabel("images")
    fig.tight_layout()
    return fig


def roc_pr_ci(y_true, y_score, n_boot: int = 200, seed: int = 0, label: str = "model",
              alpha: float = 0.05):
    """ROC and precision-recall curves with percentile-bootstrap bands and AUC/AP intervals.

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
    from sklearn import metrics as skm

    from xraykit.evaluation import bootstrap_ci

    plt = _plt()
    y = np.asarray(y_true).reshape(-1).astype(int)
    s = np.asarray(y_score, dtype=np.float64).reshape(-1)
    grid = np.linspace(0, 1, 101)
    rng = np.random.default_rng(seed)
    tprs, precs = [], []
    for _ in range(int(n_boot)):
        i = rng.integers(0, len(y), len(y))
        if len(np.unique(y[i])) < 2:
            continue
        fpr, tpr, _ = skm.roc_curve(y[i], s[i])
        tprs.append(np.interp(grid, fpr, tpr))
        prec, rec, _ = skm.precision_recall_curve(y[i], s[i])
        precs.append(np.interp(grid, rec[::-1], prec[::-1]))
    auc = bootstrap_ci(y, s, "auc", n_boot=n_boot, seed=seed, alpha=alpha)
    ap = bootstrap_ci(y, s, "ap", n_boot=n_boot, seed=seed, alpha=alpha)
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(10, 4.4))
    fpr, tpr, _ = skm.roc_curve(y, s)
    ax_roc.plot(fpr, tpr, label=f"{label}: AUC {auc['value']:.3f} "
                                f"[{auc['low']:.3f}, {auc['high']:.3f}]")
    lo, hi = np.quantile(tprs, [alpha / 2, 1 - alpha / 2], axis=0)
    ax_roc.fill_between(grid, lo, hi, alpha=0.25, label=f"{100 * (1 - alpha):.0f}% bootstrap band")
    ax_roc.plot([0, 1], [0, 1], "k:", lw=1)
    ax_roc.set_xlabel("1 - specificity (false positive rate)")
    ax_roc.set_ylabel("sensitivity (true positive rate)")
    ax_roc.set_title("ROC")
    prec, rec, _ = skm.precision_recall_curve(y, s)
    ax_pr.plot(rec, prec, label=f"{label}: AP {ap['value']:.3f} [{ap['low']:.3f}, {ap['high']:.3f}]")
    lo, hi = np.quantile(precs, [alpha / 2, 1 - alpha / 2], axis=0)
    ax_pr.fill_between(grid, lo, hi, alpha=0.25)
    ax_pr.axhline(y.mean(), color="k", ls=":", lw=1, label=f"prevalence {y.mean():.2f}")
    ax_pr.set_xlabel("recall (sensitivity)")
    ax_pr.set_ylabel("precision (PPV)")
    ax_pr.set_title("Precision-recall")
    for ax in (ax_roc, ax_pr):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right" if ax is ax_roc else "lower left")
    fig.tight_layout()
    return fig


def threshold_view(y_true, y_score, threshold: float = 0.5,
                   class_names=("normal", "pneumonia")):
    """One threshold, three views: score histograms per class with the threshold line, the
    confusion matrix, and sensitivity/specificity/PPV/NPV (the threshold explorer's frame).

    Args:
        y_true: 0/1 labels.
        y_score: Scores of the positive class.
        threshold: Scores ``>= threshold`` are predicted positive.
        class_names: Names of class 0 and 1.

    Returns:
        The matplotlib Figure.
    """
    from xraykit.evaluation import binary_metrics

    plt = _plt()
    y = np.asarray(y_true).reshape(-1).astype(int)
    s = np.asarray(y_score, dtype=np.float64).reshape(-1)
    m = binary_metrics(y, s, threshold)
    fig, (ax_h, ax_c) = plt.subplots(1, 2, figsize=(9.5, 3.6),
                                     gridspec_kw={"width_ratios": [1.5, 1]})
    bins = np.linspace(0, 1, 31)
    for k, name in enumerate(class_names):
        ax_h.hist(s[y == k], bins=bins, alpha=0.55, label=f"true {name} ({(y == k).sum()})")
    ax_h.axvline(threshold, color="k", lw=2, label=f"threshold {threshold:.2f}")
    ax_h.set_xlabel("score")
    ax_h.set_ylabel("images")
    ax_h.legend(fontsize=8)
    ax_h.set_title(f"sensitivity {m['sensitivity']:.2f}   specificity {m['specificity']:.2f}   "
                   f"PPV {m['precision']:.2f}   NPV {m['npv']:.2f}", fontsize=9)
    cm = np.array([[m["tn"], m["fp"]], [m["fn"], m["tp"]]], dtype=int)
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax_c.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(2):
        for j in range(2):
            ax_c.text(j, i, f"{cm[i, j]}\n({100 * rows[i, j]:.0f}%)", ha="center", va="center",
                      color="white" if rows[i, j] > 0.5 else "black")
    ax_c.set_xticks([0, 1], [f"pred {c}" for c in class_names])
    ax_c.set_yticks([0, 1], [f"true {c}" for c in class_names])
    ax_c.set_title("confusion matrix")
    fig.tight_layout()
    return fig

