"""Interactive explorers for the lessons (ipywidgets), with a static fallback.

In a live Jupyter kernel with ipywidgets installed each function returns a widget with sliders
and a live figure. Elsewhere (a script, a test, CI, a kernel without ipywidgets, or
``XRAYKIT_STATIC_WIDGETS=1``) it returns a static matplotlib Figure showing a few fixed settings,
so the notebook still runs and shows something useful. Nothing in the core of xraykit imports
this module.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

from xraykit.checks import check_count, check_number, check_threshold
from xraykit.pixels import check_unit_range
from xraykit.tasks import check_binary


def live_kernel() -> bool:
    """Whether interactive widgets can be shown here.

    Returns:
        True inside a running IPython kernel with ipywidgets installed, unless the environment
        variable ``XRAYKIT_STATIC_WIDGETS`` is set to a true value.
    """
    if os.environ.get("XRAYKIT_STATIC_WIDGETS", "").lower() in ("1", "true", "yes"):
        return False
    if importlib.util.find_spec("ipywidgets") is None:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _show(out, fig) -> None:
    """Replaces the content of an ``ipywidgets.Output`` by a figure and frees the figure.

    Sets the widget's outputs directly (``append_display_data``) instead of capturing
    ``display`` calls with ``with out:``, which can stall headless runs (nbclient, CI).
    """
    import matplotlib.pyplot as plt

    out.outputs = ()
    out.append_display_data(fig)
    plt.close(fig)


def _use_widgets(static: bool | None) -> bool:
    return live_kernel() if static is None else not static


def _static(fig):
    """Returns a static fallback figure closed in pyplot, so a notebook shows it once.

    An open figure is shown by the inline backend at the end of the cell *and* again by
    ``display(fig)`` (or as the cell's value); a closed one only where it is displayed.
    """
    import matplotlib.pyplot as plt

    plt.close(fig)
    return fig


# ---- lesson 1 ----


def _load_gray(path_or_image) -> tuple[np.ndarray, str]:
    if isinstance(path_or_image, (str, os.PathLike)):
        from xraykit.images import read_image

        return read_image(path_or_image), os.path.basename(os.fspath(path_or_image))
    img = np.asarray(path_or_image, dtype=np.float32)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim != 2:
        raise ValueError(f"expected a path or one image (H, W[, 1]), got shape {img.shape}.")
    return check_unit_range(img, "path_or_image"), "image"


#: Windows shown by the static fallback of :func:`window_level_explorer`, on [0, 1] intensities.
STATIC_WINDOWS = {
    "full range": (0.5, 1.0),
    "lung (dark, narrow)": (0.35, 0.4),
    "mediastinum/bone (bright)": (0.7, 0.4),
    "very narrow": (0.5, 0.15),
}


def window_level_explorer(path_or_image, center: float = 0.5, width: float = 1.0,
                          static: bool | None = None):
    """Window/level explorer for a DICOM (or any radiograph): center and width sliders.

    The image is read with :func:`xraykit.read_image` (DICOM photometry applied, no window,
    scaled by the stored bit range to [0, 1]) and shown through
    :func:`xraykit.preprocessing.window`, with its histogram and the window marked on it.

    Args:
        path_or_image: A DICOM/PNG path or an image ``(H, W)`` in [0, 1].
        center: Initial window center, in [0, 1] units.
        width: Initial window width, in [0, 1] units.
        static: ``True`` forces the static figure, ``False`` the widget; default: widget in a
            live kernel only.

    Returns:
        An ``ipywidgets.VBox`` in a live kernel, else a matplotlib Figure with
        :data:`STATIC_WINDOWS` side by side.

    Raises:
        ValueError: If ``center`` is not in [0, 1], ``width`` not in [0.02, 2] (the sliders'
            range, which would otherwise move the value silently), or the image is not one
            image in [0, 1].
    """
    import matplotlib.pyplot as plt

    from xraykit.preprocessing import window

    center = check_number(center, "center", 0.0, 1.0, what="in [0, 1] intensity units")
    width = check_number(width, "width", 0.02, 2.0, what="in [0, 1] intensity units")
    image, name = _load_gray(path_or_image)

    def draw(c, w, fig=None):
        fig = fig or plt.figure(figsize=(9, 4))
        ax_img, ax_hist = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
        ax_img.imshow(window(image, c, w), cmap="gray", vmin=0, vmax=1)
        ax_img.set_title(f"{name}: center {c:.2f}, width {w:.2f}", fontsize=9)
        ax_img.axis("off")
        ax_hist.hist(image.ravel(), bins=128, color="0.4")
        ax_hist.axvspan(c - w / 2, c + w / 2, color="tab:orange", alpha=0.3, label="window")
        ax_hist.set_xlim(0, 1)
        ax_hist.set_xlabel("intensity (0-1, stored range)")
        ax_hist.legend(fontsize=8)
        fig.tight_layout()
        return fig

    if not _use_widgets(static):
        from xraykit.plotting import plot_images

        return _static(plot_images(
            [window(image, c, w) for c, w in STATIC_WINDOWS.values()],
            titles=[f"{label}\nC={c:.2f} W={w:.2f}" for label, (c, w) in STATIC_WINDOWS.items()],
            cols=len(STATIC_WINDOWS), panel_size=3.0,
            suptitle=f"{name}: window/level (static view; run in Jupyter for sliders)"))

    import ipywidgets as widgets

    c_slider = widgets.FloatSlider(value=center, min=0.0, max=1.0, step=0.01, description="center")
    w_slider = widgets.FloatSlider(value=width, min=0.02, max=2.0, step=0.01, description="width")
    out = widgets.Output()

    def update(*_):
        _show(out, draw(c_slider.value, w_slider.value))

    c_slider.observe(update, "value")
    w_slider.observe(update, "value")
    update()
    return widgets.VBox([widgets.HBox([c_slider, w_slider]), out])


def augmentation_explorer(images, preset: str = "light", strength: float = 1.0, n: int = 8,
                          seed: int = 0, static: bool | None = None):
    """Augmentation explorer: preset and strength sliders over a live gallery of random draws.

    Args:
        images: One image ``(H, W[, 1])`` or a batch (its first image is used), in [0, 1].
        preset: Initial preset.
        strength: Initial strength.
        n: Draws shown.
        seed: Initial seed.
        static: ``True`` forces the static figure, ``False`` the widget; default: widget in a
            live kernel only.

    Returns:
        An ``ipywidgets.VBox`` in a live kernel, else the static
        :func:`xraykit.plotting.plot_augmentation_presets` figure at the given strength.

    Raises:
        ValueError: On an unknown preset, a strength outside [0, 3] (the slider's range), a
            count ``n`` below 1, or images that are empty or not in [0, 1].
    """
    from xraykit.augmentation import PRESETS
    from xraykit.plotting import plot_augmentation_presets, plot_augmentations

    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {list(PRESETS)}, not {preset!r}.")
    strength = check_number(strength, "strength", 0.0, 3.0, what="1 is the preset as defined")
    n = check_count(n, "n")
    arr = check_unit_range(np.asarray(images, dtype=np.float32), "images")
    image = arr[0] if arr.ndim == 4 or (arr.ndim == 3 and arr.shape[-1] != 1) else arr

    if not _use_widgets(static):
        return _static(plot_augmentation_presets(image, n=min(n, 6), seed=seed,
                                                 strength=strength))

    import ipywidgets as widgets

    preset_w = widgets.Dropdown(options=list(PRESETS), value=preset, description="preset")
    strength_w = widgets.FloatSlider(value=strength, min=0.0, max=3.0, step=0.25,
                                     description="strength")
    seed_w = widgets.IntSlider(value=seed, min=0, max=50, description="seed")
    out = widgets.Output()

    def update(*_):
        _show(out, plot_augmentations(image, preset_w.value, n=n, seed=seed_w.value,
                                        strength=strength_w.value))

    for w in (preset_w, strength_w, seed_w):
        w.observe(update, "value")
    update()
    return widgets.VBox([widgets.HBox([preset_w, strength_w, seed_w]), out])


# ---- lesson 7 ----


def threshold_explorer(y_true, y_score, threshold: float = 0.5,
                       class_names=("normal", "pneumonia"), static: bool | None = None):
    """Threshold explorer: a slider moves the decision threshold and the figure follows.

    The figure is :func:`xraykit.plotting.plot_threshold`: score histograms, the confusion
    matrix, sensitivity, specificity, PPV and NPV.

    Args:
        y_true: 0/1 labels (validation or test).
        y_score: Scores (probabilities) of the positive class.
        threshold: Initial threshold.
        class_names: Names of class 0 and class 1.
        static: ``True`` forces the static figure, ``False`` the widget; default: widget in a
            live kernel only.

    Returns:
        An ``ipywidgets.VBox`` in a live kernel, else the static
        :func:`xraykit.plotting.plot_threshold` figure at ``threshold``.

    Raises:
        ValueError: If the threshold is not in [0, 1], or the labels and scores are refused
            by :func:`xraykit.tasks.check_binary` (not 0/1, NaN/inf scores, sizes differ).
    """
    from xraykit.plotting import plot_threshold

    threshold = check_threshold(threshold)
    y_true, y_score = check_binary(y_true, y_score, probabilities=True)
    if not _use_widgets(static):
        return _static(plot_threshold(y_true, y_score, threshold, class_names=class_names))

    import ipywidgets as widgets

    slider = widgets.FloatSlider(value=float(threshold), min=0.0, max=1.0, step=0.01,
                                 description="threshold", continuous_update=False,
                                 readout_format=".2f")
    out = widgets.Output()

    def update(*_):
        _show(out, plot_threshold(y_true, y_score, slider.value, class_names=class_names))

    slider.observe(update, "value")
    update()
    return widgets.VBox([slider, out])
