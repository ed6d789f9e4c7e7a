"""Figures that explain predictions: Grad-CAM overlays and galleries of the worst mistakes."""

from __future__ import annotations

import numpy as np

from xraykit.plotting._figure import as_image, panel_grid
from xraykit.plotting.images import draw_overlay

#: Label of the colorbar next to Grad-CAM overlays (each map is scaled to its own peak).
HEATMAP_LABEL = "map value (1 = this image's peak)"


def add_heatmap_colorbar(fig, cmap: str = "jet", label: str = HEATMAP_LABEL) -> None:
    """Adds one colorbar for [0, 1] heatmaps at the right edge of a laid-out figure.

    Call it after ``tight_layout``: it makes room on the right and draws the bar there.

    Args:
        fig: The matplotlib Figure holding the overlays.
        cmap: Colormap of the heatmaps.
        label: Colorbar label.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    width = fig.get_figwidth()
    right = 1 - 1.0 / width  # about an inch for the bar and its label
    fig.subplots_adjust(right=right)
    cax = fig.add_axes((right + 0.15 / width, 0.15, 0.12 / width, 0.7))
    bar = fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), cmap), cax=cax)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=8)


def plot_grad_cam(images, heatmaps, titles=None, alpha: float = 0.45, cols: int | None = None,
                  cmap: str = "jet", show_image: bool = False, panel_size: float = 2.6,
                  suptitle: str | None = None, colorbar: str | None = HEATMAP_LABEL):
    """Grad-CAM (or any [0, 1]) heatmaps over their radiographs.

    Args:
        images: ``(N, H, W[, 1])`` images in [0, 1].
        heatmaps: ``(N, H, W)`` maps in [0, 1], e.g. from :func:`xraykit.explain.grad_cam`.
        titles: Optional titles, one per image (extra ones are ignored).
        alpha: Opacity of the heatmap.
        cols: Columns (default: up to 6; with ``show_image`` rounded down to whole pairs).
        cmap: Colormap of the heatmap.
        show_image: Also show each plain image to the left of its overlay.
        panel_size: Inches per panel.
        suptitle: Figure title.
        colorbar: Label of the heatmap's colorbar (``None``: no colorbar).

    Returns:
        The matplotlib Figure.

    Raises:
        ValueError: If the numbers or sizes of images and heatmaps differ.
    """
    images = np.asarray(images, dtype=np.float32)
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    if images.ndim == 4:
        images = images[..., 0]
    if images.shape != heatmaps.shape:
        raise ValueError(f"images {images.shape} and heatmaps {heatmaps.shape} must match "
                         "(N, H, W): compute the heatmaps on these images.")
    per = 2 if show_image else 1
    cols = cols or min(len(images) * per, 6)
    cols = max(per, cols - cols % per)
    fig, axes = panel_grid(len(images) * per, cols, (panel_size, panel_size))
    flat = axes.ravel()
    for i in range(len(images)):
        if show_image:
            flat[2 * i].imshow(images[i], cmap="gray", vmin=0.0, vmax=1.0)
            flat[2 * i].axis("off")
        ax = flat[per * i + per - 1]
        draw_overlay(ax, images[i], heatmaps[i], alpha=alpha, cmap=cmap)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    if colorbar:
        add_heatmap_colorbar(fig, cmap, colorbar)
    return fig


def plot_errors(images, y_true, y_score, threshold: float = 0.5, n: int = 6, heatmaps=None,
                class_names=("normal", "pneumonia"), panel_size: float = 2.4):
    """The most confident mistakes: false positives (top row) and false negatives (bottom row).

    False positives are the negatives with the highest scores, false negatives the positives
    with the lowest scores; each panel shows its index and score.

    Args:
        images: ``(N, H, W[, 1])`` images in [0, 1].
        y_true: 0/1 labels ``(N,)`` or ``(N, 1)``.
        y_score: Scores of the positive class.
        threshold: Decision threshold (``score >= threshold`` is positive).
        n: Most mistakes shown per row.
        heatmaps: Optional ``(N, H, W)`` Grad-CAM maps drawn over the images (with a
            colorbar).
        class_names: Names of class 0 and 1.
        panel_size: Inches per panel.

    Returns:
        The matplotlib Figure.

    Raises:
        ValueError: If images, labels and scores have different lengths.
    """
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
    fig, axes = panel_grid(2 * cols, cols, (panel_size, panel_size + 0.3))
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
                draw_overlay(ax, images[i], heatmaps[i])
            else:
                ax.imshow(as_image(images[i]), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_title(f"#{i} score {y_score[i]:.2f}", fontsize=9)
        axes[r, 0].set_ylabel(label)
    fig.suptitle(f"Most confident errors at threshold {threshold:.2f}: top: false positives, "
                 "bottom: false negatives", fontsize=10)
    fig.tight_layout()
    if heatmaps is not None:
        add_heatmap_colorbar(fig)
    return fig
