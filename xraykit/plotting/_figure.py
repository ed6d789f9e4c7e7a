"""The figure and axes every plot draws on: a new figure, a panel grid, or the caller's axes."""

from __future__ import annotations

import numpy as np


def pyplot():
    """Imports ``matplotlib.pyplot`` on first use (importing xraykit stays free of matplotlib).

    Returns:
        The ``matplotlib.pyplot`` module.
    """
    import matplotlib.pyplot as plt

    return plt


def figure_and_axes(ax=None, figsize: tuple[float, float] = (6.0, 4.0)):
    """The one ``ax=`` rule of xraykit's plots: draw on ``ax`` if given, else on a new figure.

    Args:
        ax: A matplotlib ``Axes`` to draw on, or ``None`` for a new figure.
        figsize: Size in inches of the new figure (unused when ``ax`` is given).

    Returns:
        ``(figure, axes)``: the figure holding ``ax``, or a new one and its only axes.

    Example:
        >>> fig, ax = figure_and_axes(figsize=(3, 2))
        >>> figure_and_axes(ax)[0] is fig
        True
    """
    if ax is not None:
        return ax.figure, ax
    return pyplot().subplots(figsize=figsize)


def panel_grid(n: int, cols: int, panel_size: tuple[float, float], **subplots_kw):
    """A new figure with ``n`` panels in rows of ``cols``; panels past ``n`` are hidden.

    Args:
        n: Panels needed.
        cols: Panels per row (clipped to ``1..n``).
        panel_size: ``(width, height)`` of one panel in inches.
        **subplots_kw: Passed to ``plt.subplots`` (``sharey``, ``gridspec_kw``...).

    Returns:
        ``(figure, axes)`` with ``axes`` a 2-D array of ``ceil(n / cols)`` rows.

    Raises:
        ValueError: If ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"a figure needs at least one panel, got {n}.")
    cols = max(1, min(cols, n))
    rows = int(np.ceil(n / cols))
    fig, axes = pyplot().subplots(rows, cols, squeeze=False,
                                  figsize=(panel_size[0] * cols, panel_size[1] * rows),
                                  **subplots_kw)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, axes


def as_image(image) -> np.ndarray:
    """One image as ``(H, W)`` (or ``(H, W, 3)`` for RGB), the shapes ``imshow`` draws.

    Args:
        image: An image ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``.

    Returns:
        A float32 array.

    Raises:
        ValueError: For any other shape.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3):
        raise ValueError(f"expected one image (H, W[, C]), got shape {img.shape}.")
    return img
