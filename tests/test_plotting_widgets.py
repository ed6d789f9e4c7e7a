"""Tests for the lesson-1 plots (xraykit.plotting) and explorers (xraykit.widgets)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from xraykit import plotting, widgets  # noqa: E402
from xraykit import preprocessing as pp  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def x(pneumonia_small):
    return pneumonia_small.x_train[:6]


def test_image_grid_and_compare_grid(x):
    fig = plotting.image_grid(x, titles=[f"y={i}" for i in range(6)], cols=3)
    assert len(fig.axes) == 6 and fig.axes[0].get_title() == "y=0"
    fig = plotting.compare_grid({"raw": x[:3], "z-score": pp.zscore(x[:3]),
                                 "equalized": pp.equalize_hist(x[:3])}, row_labels=["a", "b", "c"])
    assert len(fig.axes) == 9 and fig.axes[1].get_title().startswith("z-score")
    with pytest.raises(ValueError, match="same number"):
        plotting.compare_grid({"a": x[:2], "b": x[:3]})


def test_intensity_histograms(x, dicom_dir):
    from xraykit.dicom import read_dicom

    dcm = read_dicom(dicom_dir / "cr_mono2_8bit_jpeg_chest.dcm")
    fig = plotting.intensity_histograms({"PNG (MNIST)": x, "DICOM": dcm}, layout="overlay")
    assert len(fig.axes) == 1 and len(fig.axes[0].get_legend().get_texts()) == 2
    fig = plotting.intensity_histograms({"raw": x, "z": pp.zscore(x), "xrv": pp.xrv_scale(x)})
    assert len(fig.axes) == 3 and "mean" in fig.axes[1].get_title()


def test_galleries(x, pneumonia_small):
    fig = plotting.augmentation_gallery(x[0], "medium", n=4, seed=0)
    assert len([a for a in fig.axes if a.images]) == 5
    fig = plotting.preset_gallery(x[0], presets=("none", "light"), n=3)
    assert len(fig.axes) == 6 and fig.axes[0].get_ylabel() == "none"
    fig = plotting.mix_examples(x, pneumonia_small.y_train[:6], "cutmix", n=3,
                                class_names=["normal", "pneumonia"])
    assert len(fig.axes) == 6 and "P(pneumonia)" in fig.axes[3].get_title()


def test_widgets_static_and_live(dicom_dir, x, monkeypatch):
    monkeypatch.setenv("XRAYKIT_STATIC_WIDGETS", "1")
    assert widgets.live_kernel() is False
    path = dicom_dir / "cr_mono1_10bit_chest_nometa.dcm"
    fig = widgets.window_level_explorer(path)
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == len(widgets.STATIC_WINDOWS)
    fig = widgets.augmentation_explorer(x, strength=0.5, n=3)
    assert isinstance(fig, matplotlib.figure.Figure)
    pytest.importorskip("ipywidgets")
    box = widgets.window_level_explorer(path, static=False)
    sliders = box.children[0].children
    sliders[0].value = 0.3  # moving a slider redraws without error
    assert type(box).__name__ == "VBox" and sliders[0].description == "center"
    assert len(box.children[1].outputs) == 1  # the output area holds exactly the new figure
    box = widgets.augmentation_explorer(x, n=2, static=False)
    box.children[0].children[0].value = "heavy"
    assert box.children[0].children[0].value == "heavy"


def test_threshold_explorer_live_slider_redraws(pneumonia_small):
    pytest.importorskip("ipywidgets")
    y = pneumonia_small.y_val.ravel()
    score = pneumonia_small.x_val.mean(axis=(1, 2, 3))  # a weak but real score
    box = widgets.threshold_explorer(y, score, 0.5, static=False)
    slider, out = box.children
    slider.value = 0.3
    assert slider.description == "threshold" and len(out.outputs) == 1
    assert out.outputs[0]["output_type"] == "display_data"
