"""Tests for xraykit.plotting: what each figure draws, checked against the numbers behind it."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from xraykit import plotting
from xraykit import preprocessing as pp


@pytest.fixture(scope="module")
def x(six_images):
    return six_images


@pytest.fixture(scope="module")
def scored():
    """Labels and two scores of different quality, 30% positives."""
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=300) < 0.3).astype(int)
    good = 1 / (1 + np.exp(-(3 * y - 1.5 + rng.normal(0, 1, 300))))
    weak = 1 / (1 + np.exp(-(y - 0.5 + rng.normal(0, 1.5, 300))))
    return y, good, weak


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _line(ax, label_start):
    lines = [line for line in ax.lines if line.get_label().startswith(label_start)]
    assert len(lines) == 1, [line.get_label() for line in ax.lines]
    return lines[0]


# ---- images ----

def test_plot_images_one_panel_per_image(x):
    fig = plotting.plot_images(x[:5], titles=[f"y={i}" for i in range(5)], cols=3)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 5 and [ax.get_title() for ax in drawn][:2] == ["y=0", "y=1"]
    np.testing.assert_allclose(drawn[4].images[0].get_array(), x[4, ..., 0])
    with pytest.raises(ValueError, match="2 titles for 5 images"):
        plotting.plot_images(x[:5], titles=["a", "b"])


def test_plot_image_columns_shows_each_transform(x):
    methods = {"raw": x[:3], "z-score": pp.zscore(x[:3]), "equalized": pp.equalize_hist(x[:3])}
    fig = plotting.plot_image_columns(methods, row_labels=["a", "b", "c"])
    assert len(fig.axes) == 9
    z = methods["z-score"]
    assert fig.axes[1].get_title() == f"z-score\n[{z.min():.3g}, {z.max():.3g}]"
    np.testing.assert_allclose(fig.axes[1].images[0].get_array(), z[0, ..., 0])
    assert [fig.axes[3 * i].get_ylabel() for i in range(3)] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="same number"):
        plotting.plot_image_columns({"a": x[:2], "b": x[:3]})


def test_plot_intensity_histograms(x, dicom_dir):
    from xraykit.dicom import read_dicom

    dcm = read_dicom(dicom_dir / "cr_mono2_8bit_jpeg_chest.dcm")
    fig = plotting.plot_intensity_histograms({"PNG (MNIST)": x, "DICOM": dcm}, layout="overlay")
    assert len(fig.axes) == 1
    assert _legend(fig.axes[0])[1] == f"DICOM (mean {dcm.mean():.2f}, std {dcm.std():.2f})"
    fig.canvas.draw()  # the legend sits beside the histograms, not over them
    legend, panel = fig.axes[0].get_legend().get_window_extent(), fig.axes[0].get_window_extent()
    assert legend.x0 >= panel.x1
    fig = plotting.plot_intensity_histograms({"raw": x, "z": pp.zscore(x)}, density=False,
                                             bins=10)
    heights = [patch.get_height() for patch in fig.axes[0].patches]
    assert len(heights) == 10 and sum(heights) == x.size  # every pixel counted once
    with pytest.raises(ValueError, match="layout"):
        plotting.plot_intensity_histograms({"raw": x}, layout="stacked")


def test_augmentation_figures(x, small_data):
    fig = plotting.plot_augmentations(x[0], "medium", n=4, seed=0)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 5 and drawn[0].get_title() == "original"
    np.testing.assert_allclose(drawn[0].images[0].get_array(), x[0, ..., 0])
    fig = plotting.plot_augmentation_presets(x[0], presets=("none", "light"), n=3)
    assert len(fig.axes) == 6 and fig.axes[0].get_ylabel() == "none"
    # the "none" preset leaves the image as it is
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), x[0, ..., 0], atol=1e-6)
    fig = plotting.plot_mixed_examples(x, small_data.y_train[:6], "cutmix", n=3,
                                       class_names=["normal", "pneumonia"])
    assert len(fig.axes) == 6 and fig.axes[3].get_title().startswith("P(pneumonia)=")


# ---- training curves ----

def test_read_history_gives_the_same_series_from_every_form(tmp_path):
    import keras

    values = {"loss": [0.7, 0.5, 0.4], "auc": [0.6, 0.7, 0.8],
              "val_loss": [0.8, 0.6, 0.65], "val_auc": [0.55, 0.72, 0.7]}
    history = keras.callbacks.History()
    history.history = values
    csv = tmp_path / "history.csv"
    pd.DataFrame({"epoch": [0, 1, 2], **values}).to_csv(csv, index=False)
    forms = [history, values, pd.DataFrame(values), csv, str(csv)]
    for form in forms:
        read = plotting.read_history(form)
        assert sorted(read) == sorted(values), form
        for key, series in values.items():
            np.testing.assert_allclose(read[key], series)
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        plotting.read_history(tmp_path / "missing.csv")
    with pytest.raises(TypeError, match="list"):
        plotting.read_history([0.7, 0.5])


def test_plot_history_draws_train_validation_and_best_epoch(tmp_path):
    values = {"loss": [0.7, 0.5, 0.4], "auc": [0.6, 0.7, 0.8],
              "val_loss": [0.8, 0.6, 0.65], "val_auc": [0.55, 0.72, 0.7]}
    csv = tmp_path / "history.csv"
    pd.DataFrame({"epoch": [0, 1, 2], **values}).to_csv(csv, index=False)
    fig = plotting.plot_history(csv, metrics=("loss", "auc", "precision"))
    assert [ax.get_title() for ax in fig.axes] == ["loss", "auc"]  # missing metric skipped
    ax_loss, ax_auc = fig.axes
    np.testing.assert_allclose(_line(ax_auc, "validation").get_ydata(), values["val_auc"])
    np.testing.assert_allclose(_line(ax_auc, "train").get_xdata(), [1, 2, 3])
    assert _line(ax_auc, "best epoch").get_label() == "best epoch 2"  # highest val AUC
    assert _line(ax_loss, "best epoch").get_label() == "best epoch 2"  # lowest val loss
    with pytest.raises(ValueError, match="val_auc"):
        plotting.plot_history(values, metrics=("accuracy",))


def test_plot_histories_and_train_vs_val():
    runs = {"a": {"loss": [1.0, 0.5], "val_auc": [0.6, 0.7]},
            "b": {"loss": [0.9, 0.8, 0.7], "val_auc": [0.5, 0.6, 0.65]}}
    fig = plotting.plot_histories(runs, metrics=("loss", "val_auc"), log_loss=True)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "val_auc"]
    assert fig.axes[0].get_yscale() == "log" and fig.axes[1].get_yscale() == "linear"
    np.testing.assert_allclose(_line(fig.axes[1], "b").get_ydata(), runs["b"]["val_auc"])
    legend = fig.axes[1].get_legend()   # beside the last panel, not over a curve
    assert legend is not None and fig.axes[0].get_legend() is None
    fig.canvas.draw()
    assert legend.get_window_extent().x0 >= fig.axes[1].get_window_extent().x1
    with pytest.raises(ValueError, match="one metric"):
        plotting.plot_histories(runs, metrics=("loss", "val_auc"), ax=plt.subplots()[1])
    fig = plotting.plot_train_vs_val({**runs, "c": runs["a"]}, metric="auc", cols=2)
    assert [ax.get_title() for ax in fig.axes if ax.lines] == ["a", "b", "c"]
    assert len(fig.axes) == 4 and not fig.axes[3].axison  # the spare panel is hidden


# ---- evaluation ----

def test_plot_roc_draws_sklearns_curve_and_auc(scored):
    y, good, weak = scored
    fig = plotting.plot_roc(y, {"good": good, "weak": weak}, operating_point=0.5)
    ax = fig.axes[0]
    for name, score in (("good", good), ("weak", weak)):
        fpr, tpr, _ = skm.roc_curve(y, score)
        line = _line(ax, f"{name} (AUC")
        np.testing.assert_allclose(line.get_xdata(), fpr)
        np.testing.assert_allclose(line.get_ydata(), tpr)
        assert line.get_label() == f"{name} (AUC {skm.roc_auc_score(y, score):.3f})"
    tn, fp, fn, tp = skm.confusion_matrix(y, good >= 0.5).ravel()
    point = [line for line in ax.lines if line.get_marker() == "o"][0]
    np.testing.assert_allclose([point.get_xdata()[0], point.get_ydata()[0]],
                               [fp / (fp + tn), tp / (tp + fn)])
    assert _legend(ax) == [_line(ax, "good").get_label(), _line(ax, "weak").get_label(),
                           "chance (AUC 0.5)"]


def test_plot_roc_and_pr_multilabel_skip_unknown_labels(scored):
    y, good, weak = scored
    labels = np.stack([y, 1 - y], axis=1).astype(float)
    labels[:10, 1] = np.nan  # unknown labels are left out
    scores = np.stack([good, weak], axis=1)
    fig = plotting.plot_pr(labels, scores, class_names=["a", "b"])
    ax = fig.axes[0]
    precision, recall, _ = skm.precision_recall_curve(labels[10:, 1], weak[10:])
    line = _line(ax, "b (AP")
    np.testing.assert_allclose(line.get_xdata(), recall)
    np.testing.assert_allclose(line.get_ydata(), precision)
    assert line.get_label() == \
        f"b (AP {skm.average_precision_score(labels[10:, 1], weak[10:]):.3f})"
    prevalence = [ln for ln in ax.lines if ln.get_linestyle() == ":"]
    assert sorted(ln.get_ydata()[0] for ln in prevalence) == \
        pytest.approx(sorted([y.mean(), 1 - y[10:].mean()]))
    assert _legend(ax) == [ln.get_label() for ln in ax.lines if ln.get_label()[0] != "_"]


def test_plot_confusion_counts_equal_sklearns(scored):
    y, good, _ = scored
    fig = plotting.plot_confusion(y, good, threshold=0.4, class_names=("normal", "pneumonia"))
    cm = skm.confusion_matrix(y, good >= 0.4)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert [int(t.split("\n")[0]) for t in texts] == cm.ravel().tolist()
    assert texts[0].endswith(f"({100 * cm[0, 0] / cm[0].sum():.1f}%)")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["normal", "pneumonia"]


def test_plot_roc_pr_bootstrap_curve_interval_and_prevalence(scored):
    from xraykit.evaluation import bootstrap_ci

    y, good, _ = scored
    fig = plotting.plot_roc_pr_bootstrap(y, good, n_boot=40, seed=1, label="cnn")
    ax_roc, ax_pr = fig.axes
    fpr, tpr, _ = skm.roc_curve(y, good)
    line = _line(ax_roc, "cnn")
    np.testing.assert_allclose(line.get_xdata(), fpr)
    ci = bootstrap_ci(y, good, "auc", n_boot=40, seed=1)
    assert ci["value"] == pytest.approx(skm.roc_auc_score(y, good))
    assert line.get_label() == \
        f"cnn: AUC {ci['value']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]"
    assert f"prevalence {y.mean():.2f}" in _legend(ax_pr)
    band = ax_roc.collections[0].get_paths()[0].vertices
    assert len(ax_roc.collections) == 1 and (band[:, 1] >= 0).all() and (band[:, 1] <= 1).all()


def test_plot_threshold_rates_match_the_confusion(scored):
    y, good, _ = scored
    fig = plotting.plot_threshold(y, good, 0.3)
    tn, fp, fn, tp = skm.confusion_matrix(y, good >= 0.3).ravel()
    title = fig.axes[0].get_title()
    assert f"sensitivity {tp / (tp + fn):.2f}" in title
    assert f"specificity {tn / (tn + fp):.2f}" in title
    assert fig.axes[0].lines[0].get_xdata()[0] == 0.3  # the threshold line
    assert int(fig.axes[1].texts[3].get_text().split("\n")[0]) == tp


# ---- calibration ----

def test_plot_calibration_uses_sklearns_curve_and_xraykits_ece(scored):
    from sklearn.calibration import calibration_curve

    from xraykit.calibration import N_BINS, expected_calibration_error

    y, good, weak = scored
    fig = plotting.plot_calibration(y, {"good": good, "weak": weak})
    ax = fig.axes[0]
    for name, p in (("good", good), ("weak", weak)):
        line = _line(ax, name)
        assert line.get_label() == f"{name} (ECE {expected_calibration_error(y, p):.3f})"
        frac, mean = calibration_curve(y, p, n_bins=N_BINS)
        np.testing.assert_allclose(line.get_xdata(), mean)
        np.testing.assert_allclose(line.get_ydata(), frac)
    assert sum(p.get_height() for p in fig.axes[1].patches) == 2 * len(y)
    fig.canvas.draw()  # the legend sits beside the diagram, where no curve runs
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1


# ---- explanations ----

def test_plot_grad_cam_and_errors():
    from xraykit.synthetic import phantoms

    images, y, masks = phantoms(8, 28, seed=3)
    heat = masks.astype("float32")
    fig = plotting.plot_grad_cam(images[:3], heat[:3], titles=list("abc"), show_image=True)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 6  # an image and its overlay per radiograph
    assert [len(ax.images) for ax in drawn] == [1, 2] * 3 and drawn[5].get_title() == "c"
    np.testing.assert_allclose(drawn[5].images[1].get_array(), heat[2])
    with pytest.raises(ValueError, match="match"):
        plotting.plot_grad_cam(images[:2], heat[:3])
    scores = np.linspace(0, 1, 8)
    fig = plotting.plot_errors(images, y, scores, threshold=0.5, n=2)
    fp = np.flatnonzero((y.ravel() == 0) & (scores >= 0.5))
    fp = fp[np.argsort(-scores[fp])][:2]
    titles = [ax.get_title() for ax in fig.axes[: fig.axes[0].get_gridspec().ncols]]
    assert titles[: len(fp)] == [f"#{i} score {scores[i]:.2f}" for i in fp]


# ---- one ax= rule, one set of names ----

@pytest.mark.parametrize("draw", [
    lambda s, ax: plotting.plot_roc(s[0], s[1], ax=ax),
    lambda s, ax: plotting.plot_pr(s[0], s[1], ax=ax),
    lambda s, ax: plotting.plot_confusion(s[0], s[1], ax=ax),
    lambda s, ax: plotting.plot_histories({"run": {"val_auc": [0.5, 0.6]}}, ax=ax),
    lambda s, ax: plotting.plot_cost_vs_quality(
        [{"model": "a", "seconds_per_epoch": 1.0, "val_auc": 0.8, "params": 10}], ax=ax),
    lambda s, ax: plotting.plot_lr_schedules({"constant": [1e-3] * 5}, ax=ax),
], ids=["roc", "pr", "confusion", "histories", "cost_vs_quality", "lr_schedules"])
def test_ax_draws_on_the_given_axes(scored, draw):
    fig, (left, right) = plt.subplots(1, 2)
    assert draw(scored, right) is fig
    assert len(fig.axes) == 2 and not left.has_data() and right.has_data()


def test_old_names_are_gone():
    for old in ("calibration_plot", "grad_cam_overlay", "image_grid"):
        with pytest.raises(AttributeError, match=old):
            getattr(plotting, old)
    assert all(name.startswith(("plot_", "read_", "figure_", "draw_"))
               for name in plotting.__all__)


def test_heatmaps_have_a_colorbar_and_legends_stay_off_the_data(scored):
    """What a student reads: a scale for every heat map, legends beside the curves, no nan."""
    from xraykit.synthetic import phantoms

    images, y_img, masks = phantoms(6, 28, seed=1)
    fig = plotting.plot_grad_cam(images[:2], masks[:2].astype("float32"))
    bar = [ax for ax in fig.axes if ax.get_ylabel() == "map value (1 = this image's peak)"]
    assert len(bar) == 1 and bar[0].get_ylim() == (0.0, 1.0)
    assert len(plotting.plot_grad_cam(images[:2], masks[:2], colorbar=None).axes) == 2
    scores = np.linspace(0, 1, 6)
    with_maps = plotting.plot_errors(images, y_img, scores, heatmaps=masks.astype("float32"))
    assert len(with_maps.axes) == len(plotting.plot_errors(images, y_img, scores).axes) + 1
    y, good, weak = scored
    # The calibration legend sits right of the diagram, not on it.
    fig = plotting.plot_calibration(y, {"good": good})
    fig.canvas.draw()
    legend = fig.axes[0].get_legend().get_window_extent()
    assert legend.x0 > fig.axes[0].get_window_extent().x1
    # Nothing predicted positive: PPV is undefined and the title says why instead of "nan".
    title = plotting.plot_threshold(y, np.minimum(good, 0.99), threshold=1.0).axes[0].get_title()
    assert "PPV undefined (no image predicted positive)" in title and "nan" not in title


def test_hyperparameter_effects_label_values_with_three_digits():
    import pandas as pd

    frame = pd.DataFrame({"trial_id": ["0", "1", "2"], "status": "COMPLETED",
                          "score": [0.7, 0.8, 0.75],
                          "learning_rate": [0.0009887195863122636, 0.0003497444,
                                            0.0009887195863122636],
                          "optimizer": ["adam", "adamw", "adam"]})
    fig = plotting.plot_hyperparameter_effects(frame)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["0.00035", "0.000989"]
    points = [c.get_offsets() for c in fig.axes[0].collections if len(c.get_offsets())]
    assert [len(p) for p in points][::2] == [1, 2]  # (scatter, mean line) per value


def test_log_scaled_hyperparameters_label_decades_only():
    import pandas as pd

    rates = [1.2e-4, 3e-4, 5e-4, 9e-4, 2e-3, 6e-3]
    frame = pd.DataFrame({"trial_id": list("abcdef"), "status": "COMPLETED",
                          "score": np.linspace(0.8, 0.9, 6), "learning_rate": rates})
    fig = plotting.plot_hyperparameter_effects(frame)
    fig.canvas.draw()
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert all(t.get_text() == "" for t in ax.get_xticklabels(minor=True))
