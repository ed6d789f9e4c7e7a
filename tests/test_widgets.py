"""Tests for the explorers (xraykit.widgets): static fallbacks and live sliders."""

import numpy as np
import pytest

from xraykit import widgets
from xraykit.preprocessing import window


@pytest.fixture(scope="module")
def x(six_images):
    return six_images


@pytest.fixture
def shown(monkeypatch):
    """Every figure an explorer puts in its output area, in order (the output still gets it)."""
    figures = []
    show = widgets._show

    def record(out, fig):
        figures.append(fig)
        show(out, fig)
        assert len(out.outputs) == 1  # the new figure replaced the old one

    monkeypatch.setattr(widgets, "_show", record)
    return figures


def test_static_explorers_draw_the_windows_and_presets(dicom_dir, x, monkeypatch):
    from xraykit.augmentation import PRESETS
    from xraykit.images import read_image

    monkeypatch.setenv("XRAYKIT_STATIC_WIDGETS", "1")
    assert widgets.live_kernel() is False
    path = dicom_dir / "cr_mono1_10bit_chest_nometa.dcm"
    fig = widgets.window_level_explorer(path)
    assert len(fig.axes) == len(widgets.STATIC_WINDOWS)
    image = read_image(path)
    for ax, (label, (c, w)) in zip(fig.axes, widgets.STATIC_WINDOWS.items()):
        assert ax.get_title().startswith(label)
        np.testing.assert_allclose(ax.images[0].get_array(), window(image, c, w), atol=1e-6)
    fig = widgets.augmentation_explorer(x, strength=0.5, n=3)
    assert len(fig.axes) == 3 * len([p for p in ("none", "light", "medium", "heavy")
                                     if p in PRESETS])
    assert [ax.get_ylabel() for ax in fig.axes[::3]] == ["none", "light", "medium", "heavy"]


def test_static_explorers_are_shown_once(dicom_dir, x, small_data, monkeypatch):
    """Closed in pyplot: the inline backend does not show them again after display(fig)."""
    import matplotlib.pyplot as plt

    monkeypatch.setenv("XRAYKIT_STATIC_WIDGETS", "1")
    y = small_data.y_val[:40, 0]
    for fig in (widgets.window_level_explorer(dicom_dir / "cr_mono1_10bit_chest_nometa.dcm"),
                widgets.augmentation_explorer(x, n=2),
                widgets.threshold_explorer(y, np.linspace(0, 1, len(y)), 0.5)):
        assert fig.axes and not plt.fignum_exists(fig.number)


def test_live_explorers_redraw_when_a_slider_moves(dicom_dir, x, shown):
    from xraykit.images import read_image

    pytest.importorskip("ipywidgets")
    path = dicom_dir / "cr_mono1_10bit_chest_nometa.dcm"
    box = widgets.window_level_explorer(path, static=False)
    sliders, out = box.children
    assert [s.description for s in sliders.children] == ["center", "width"]
    sliders.children[1].value = 0.2
    assert len(shown) == 2  # the first view, then one redraw
    np.testing.assert_allclose(shown[-1].axes[0].images[0].get_array(),
                               window(read_image(path), 0.5, 0.2), atol=1e-6)
    box = widgets.augmentation_explorer(x, n=2, static=False)
    box.children[0].children[0].value = "heavy"
    assert shown[-1].texts[0].get_text().startswith("heavy") and len(shown) == 4


def test_threshold_explorer_live_slider_redraws(small_data, shown):
    pytest.importorskip("ipywidgets")
    y = small_data.y_val.ravel()
    score = small_data.x_val.mean(axis=(1, 2, 3))  # a weak but real score
    box = widgets.threshold_explorer(y, score, 0.5, static=False)
    slider, out = box.children
    assert slider.description == "threshold"
    slider.value = 0.3
    assert out.outputs[0]["output_type"] == "display_data"
    assert [fig.axes[0].lines[0].get_xdata()[0] for fig in shown] == [0.5, 0.3]
