"""Figures for the lessons and for a practitioner's own results, one module per thing drawn.

Every ``plot_*`` function draws with matplotlib and returns the ``Figure``; those that draw a
single panel take ``ax=`` and draw there (see :func:`figure_and_axes`). Inputs are plain
arrays, dicts and DataFrames. Nothing below this package in xraykit imports it.

* :mod:`~xraykit.plotting.images`: image grids, transforms side by side, intensity histograms,
  augmentation draws, heatmap overlays.
* :mod:`~xraykit.plotting.history`: reading a training history and its curves per epoch.
* :mod:`~xraykit.plotting.models`: models compared: quality vs cost, generalization gap, weights.
* :mod:`~xraykit.plotting.optimization`: loss per example, loss surfaces, learning rates.
* :mod:`~xraykit.plotting.evaluation`: ROC, precision-recall, confusion matrix, threshold view.
* :mod:`~xraykit.plotting.calibration`: reliability diagrams with ECE.
* :mod:`~xraykit.plotting.explanations`: Grad-CAM overlays, the most confident errors.
* :mod:`~xraykit.plotting.tuning`: hyperparameter-search trials and comparisons.

Example:
    >>> from xraykit import plotting
    >>> fig = plotting.plot_history({"loss": [0.7, 0.5], "val_loss": [0.8, 0.6]},
    ...                             metrics=("loss",))
    >>> [line.get_label() for line in fig.axes[0].lines][:2]
    ['train', 'validation']
"""

from __future__ import annotations

from xraykit.plotting._figure import figure_and_axes
from xraykit.plotting.calibration import plot_calibration
from xraykit.plotting.evaluation import (
    plot_confusion,
    plot_pr,
    plot_roc,
    plot_roc_pr_bootstrap,
    plot_threshold,
)
from xraykit.plotting.explanations import plot_errors, plot_grad_cam
from xraykit.plotting.history import (
    plot_histories,
    plot_history,
    plot_train_vs_val,
    read_history,
)
from xraykit.plotting.images import (
    draw_overlay,
    plot_augmentation_presets,
    plot_augmentations,
    plot_image_columns,
    plot_images,
    plot_intensity_histograms,
    plot_mixed_examples,
)
from xraykit.plotting.models import (
    plot_cost_vs_quality,
    plot_generalization_gap,
    plot_weight_histograms,
)
from xraykit.plotting.optimization import (
    plot_loss_surface,
    plot_loss_vs_probability,
    plot_lr_range,
    plot_lr_schedules,
)
from xraykit.plotting.tuning import plot_hyperparameter_effects, plot_trials, plot_tuner_comparison

__all__ = [
    "draw_overlay", "figure_and_axes", "plot_augmentation_presets", "plot_augmentations",
    "plot_calibration", "plot_confusion", "plot_cost_vs_quality", "plot_errors",
    "plot_generalization_gap", "plot_grad_cam", "plot_histories", "plot_history",
    "plot_hyperparameter_effects", "plot_image_columns", "plot_images",
    "plot_intensity_histograms", "plot_loss_surface", "plot_loss_vs_probability", "plot_lr_range",
    "plot_lr_schedules", "plot_mixed_examples", "plot_pr", "plot_roc", "plot_roc_pr_bootstrap",
    "plot_threshold", "plot_train_vs_val", "plot_trials", "plot_tuner_comparison",
    "plot_weight_histograms", "read_history",
]
