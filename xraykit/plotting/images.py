"""Figures of pixels: image grids, transforms side by side, histograms, augmentations, overlays."""

from __future__ import annotations

import numpy as np

from xraykit.plotting._figure import as_image, panel_grid, pyplot


def plot_images(images, titles=None, cols: int | None = None, cmap: str = "gray",
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
        The matplotlib Figure, one panel per image.

    Raises:
        ValueError: If there is no image, or the titles are not one per image.

    Example:
        >>> fig = plot_images(np.zeros((3, 28, 28)), titles=["a", "b", "c"])
        >>> len(fig.axes)
        3
    """
    images = [as_image(img) for img in images]
    if not images:
        raise ValueError("plot_images needs at least one image.")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images: give one per image.")
    fig, axes = panel_grid(len(images), cols or min(len(images), 8), (panel_size, panel_size))
    for i, (ax, img) in enumerate(zip(axes.ravel(), images)):
        ax.axis("off")
        ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_image_columns(columns: dict, row_labels=None, panel_size: float = 2.0,
                       show_range: bool = True):
    """The same images under several transforms, side by side (rows = images, columns = methods).

    Each panel is displayed with its own min/max (normalized images leave [0, 1]); the column
    title gives the method and, with ``show_range``, the value range of the column.

    Args:
        columns: ``{"raw": images, "z-score": images2, ...}``; each value an array
            ``(N, H, W[, 1])`` with the same N.
        row_labels: Optional N labels shown at the left of each row.
        panel_size: Inches per panel.
        show_range: Adds ``[min, max]`` of each column to its title.

    Returns:
        The matplotlib Figure.

    Raises:
        ValueError: If the columns hold different numbers of images.
    """
    names = list(columns)
    arrays = [np.asarray(columns[k], dtype=np.float32) for k in names]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        sizes = {k: len(a) for k, a in zip(names, arrays)}
        raise ValueError(f"plot_image_columns: every column must hold the same number of images, "
                         f"got {sizes}.")
    fig, axes = pyplot().subplots(n, len(names), squeeze=False,
                                  figsize=(panel_size * len(names), panel_size * n + 0.4))
    for j, (name, arr) in enumerate(zip(names, arrays)):
        title = name + (f"\n[{arr.min():.3g}, {arr.max():.3g}]" if show_range else "")
        axes[0, j].set_title(title, fontsize=9)
        for i in range(n):
            axes[i, j].imshow(as_image(arr[i]), cmap="gray")
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if j == 0 and row_labels is not None:
                axes[i, j].set_ylabel(str(row_labels[i]), fontsize=9)
    fig.tight_layout()
    return fig


def plot_intensity_histograms(arrays: dict, bins: int = 64, layout: str = "grid",
                              density: bool = True, panel_size: tuple[float, float] = (3.2, 2.4),
                              title: str | None = None):
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

    Raises:
        ValueError: For an unknown layout.
    """
    if layout not in ("grid", "overlay"):
        raise ValueError(f"layout must be 'grid' or 'overlay', not {layout!r}.")
    items = [(k, np.asarray(v, dtype=np.float32).ravel()) for k, v in arrays.items()]
    if layout == "overlay":
        fig, ax = pyplot().subplots(figsize=(panel_size[0] * 1.6, panel_size[1] * 1.3))
        for name, values in items:
            ax.hist(values, bins=bins, density=density, histtype="step", linewidth=1.5,
                    label=f"{name} (mean {values.mean():.2f}, std {values.std():.2f})")
        ax.set_xlabel("intensity")
        ax.set_ylabel("density" if density else "pixels")
        # Beside the panel, not on it: the histograms fill the whole axes.
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    else:
        fig, axes = panel_grid(len(items), 4, panel_size)
        for ax, (name, values) in zip(axes.ravel(), items):
            ax.hist(values, bins=bins, density=density, color="tab:blue")
            ax.set_title(f"{name}\nmean {values.mean():.2f}, std {values.std():.2f}", fontsize=9)
            ax.tick_params(labelsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_augmentations(image, preset="light", n: int = 8, seed: int = 0, strength: float = 1.0,
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

    img = as_image(image)[..., None]
    pipe = augmentation_layers(preset, seed=seed, strength=strength) if isinstance(preset, str) \
        else preset
    draws = augment_numpy(np.repeat(img[None], n, axis=0), pipe)
    label = preset if isinstance(preset, str) else getattr(preset, "name", "augmentation")
    return plot_images([img, *draws], titles=["original"] + [f"draw {i + 1}" for i in range(n)],
                       cols=cols, suptitle=title or f"{label} (strength {strength:g})")


def plot_augmentation_presets(image, presets=("none", "light", "medium", "heavy"), n: int = 5,
                              seed: int = 0, strength: float = 1.0, panel_size: float = 1.8):
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

    img = as_image(image)[..., None]
    fig, axes = pyplot().subplots(len(presets), n, squeeze=False,
                                  figsize=(panel_size * n, panel_size * len(presets)))
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


def plot_mixed_examples(images, labels, method: str = "mixup", n: int = 4, seed: int = 0,
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

    Raises:
        ValueError: For an unknown method.
    """
    from xraykit.augmentation import cutmix, mixup

    if method not in ("mixup", "cutmix"):
        raise ValueError(f"method must be 'mixup' or 'cutmix', not {method!r}.")
    x = np.asarray(images, dtype=np.float32)[:n]
    y = np.asarray(labels, dtype=np.float32).reshape(len(images), -1)[:n]
    fn = mixup if method == "mixup" else cutmix
    mixed, soft = fn(x, y, seed=seed, **kwargs)
    positive = class_names[1] if class_names is not None else "class 1"
    titles = [f"y={y[i, 0]:g}" for i in range(n)] + \
        [f"P({positive})={soft[i, 0]:.2f}" for i in range(n)]
    return plot_images([*x, *mixed], titles=titles, cols=n,
                       suptitle=f"{method}: originals (top) and mixed (bottom)")


def draw_overlay(ax, image, heatmap, alpha: float = 0.45, cmap: str = "jet") -> None:
    """Draws a grayscale image in [0, 1] with a [0, 1] heatmap on top, on ``ax``.

    Args:
        ax: The matplotlib Axes to draw on.
        image: One image ``(H, W[, 1])`` in [0, 1].
        heatmap: ``(H, W)`` map in [0, 1] (Grad-CAM, saliency, a mask).
        alpha: Opacity of the heatmap.
        cmap: Colormap of the heatmap.
    """
    ax.imshow(as_image(image), cmap="gray", vmin=0.0, vmax=1.0)
    ax.imshow(np.asarray(heatmap, dtype=np.float32), cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0)
    ax.axis("off")
