"""Regularization experiments (lesson 5): train variants, measure the generalization gap.

A *variant* is one model configuration (L2, L1, dropout, batch norm, augmentation, early
stopping, AdamW weight decay, or none of them) trained on the same data with the same budget.
:func:`train_variant` trains one with :mod:`xraykit.models` and :mod:`xraykit.training`;
:func:`gap_summary` reads its curves (train vs validation AUC, the gap between them, the
best epoch); :func:`summary_table` puts many side by side; :func:`kernel_weights` collects the
conv/dense kernels whose distribution L1 and L2 change.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import keras
import numpy as np

__all__ = ["Variant", "gap_summary", "kernel_weights", "summary_table", "train_variant",
           "weight_stats"]


@dataclasses.dataclass
class Variant:
    """One trained configuration.

    Attributes:
        name: Label in tables and plots.
        model: The trained model (best validation weights when early stopping restored them).
        history: The Keras ``History``.
        summary: :func:`gap_summary` of the run (plus ``seconds`` and ``params``).
        config: The build/compile/fit arguments used.
    """

    name: str
    model: keras.Model
    history: keras.callbacks.History
    summary: dict[str, Any]
    config: dict[str, Any]


def gap_summary(history, metric: str = "auc", restored: bool = False) -> dict[str, Any]:
    """Train/validation scores of a run and the generalization gap.

    The gap is measured at the **last** epoch (what an un-stopped run ends with), next to the
    best validation score and its epoch (what early stopping would keep). For a run whose
    best weights were restored (early stopping), pass ``restored=True``: the scores are then
    those of the best epoch, i.e. of the model you keep.

    Args:
        history: A Keras ``History`` or its ``.history`` dict.
        metric: Metric name (``"auc"``: train ``auc``, validation ``val_auc``).
        restored: Report the best validation epoch instead of the last one.

    Returns:
        Dict with ``train_<m>``, ``val_<m>`` (last epoch, or best when ``restored``),
        ``gap`` (train - val), ``best_val_<m>``, ``best_epoch`` (1-based) and ``epochs``.

    Raises:
        KeyError: If the history lacks the metric or its validation counterpart.
    """
    curves = dict(getattr(history, "history", history))
    for key in (metric, f"val_{metric}"):
        if key not in curves:
            raise KeyError(f"history has no {key!r} (has {sorted(curves)}); compile with "
                           "xraykit.training.compile_model and pass validation data.")
    train = np.asarray(curves[metric], dtype=np.float64)
    val = np.asarray(curves[f"val_{metric}"], dtype=np.float64)
    lower_is_better = metric.endswith("loss")
    best = int(np.nanargmin(val) if lower_is_better else np.nanargmax(val))
    at = best if restored else -1
    return {
        f"train_{metric}": float(train[at]), f"val_{metric}": float(val[at]),
        "gap": float(train[at] - val[at]), f"best_val_{metric}": float(val[best]),
        "best_epoch": best + 1, "epochs": int(len(val)),
    }


def kernel_weights(model: keras.Model) -> np.ndarray:
    """All conv and dense kernels of a model, flattened (no biases, no batch-norm parameters).

    Args:
        model: A Keras model.

    Returns:
        1-D float array of the kernel weights.
    """
    parts = [np.asarray(keras.ops.convert_to_numpy(layer.kernel)).ravel()
             for layer in _all_layers(model) if hasattr(layer, "kernel")
             and isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    if not parts:
        raise ValueError(f"{model.name} has no Conv2D or Dense kernel.")
    return np.concatenate(parts)


def _all_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


def weight_stats(model: keras.Model, tol: float = 1e-3) -> dict[str, float]:
    """Sizes of a model's kernels: what L2 shrinks and what L1 zeroes.

    Args:
        model: A Keras model.
        tol: Absolute value under which a weight counts as (near) zero.

    Returns:
        Dict with ``l1`` (sum of absolute values), ``l2`` (Euclidean norm), ``mean_abs``,
        ``near_zero`` (fraction with ``|w| < tol``) and ``count``.
    """
    w = kernel_weights(model).astype(np.float64)
    return {"l1": float(np.abs(w).sum()), "l2": float(np.sqrt(np.square(w).sum())),
            "mean_abs": float(np.abs(w).mean()), "near_zero": float(np.mean(np.abs(w) < tol)),
            "count": int(w.size)}


def train_variant(name: str, data, profile=None, model: str = "vgg_small",
                  epochs: int | None = None, build: dict | None = None,
                  compile: dict | None = None, fit: dict | None = None,  # noqa: A002
                  early_stopping: bool | int = False, seed: int = 0,
                  verbose: int = 0) -> Variant:
    """Builds, compiles and trains one configuration; returns it with its gap summary.

    Every variant of a comparison should share ``data``, ``model``, ``epochs`` and ``seed`` and
    change one knob, so differences come from the regularizer.

    Args:
        name: Label of the variant.
        data: An :class:`~xraykit.datasets.XRayDataset`.
        profile: Run profile (epochs and batch size defaults).
        model: Architecture name for :func:`xraykit.models.build_model`.
        epochs: Epochs (default: the profile's).
        build: Extra arguments of ``build_model`` (``l2``, ``l1``, ``dropout``,
            ``batch_norm``, ``augmentation``, ``width``, ``depth``).
        compile: Extra arguments of ``compile_model`` (``optimizer``, ``learning_rate``,
            ``weight_decay``, ...).
        fit: Extra arguments of :func:`xraykit.training.fit` (``batch_size``,
            ``class_weight``, ...).
        early_stopping: Passed to :func:`xraykit.training.fit` (``False``: train all epochs,
            so the overfitting is visible).
        seed: Seed of weights, augmentation and shuffling.
        verbose: Keras verbosity.

    Returns:
        The :class:`Variant`; with early stopping its summary reports the restored (best)
        epoch.
    """
    from xraykit import models, training

    keras.utils.set_random_seed(seed)
    build = dict(build or {})
    compile_args = dict(compile or {})
    fit_args = dict(fit or {})
    built = models.build_model(model, input_shape=data.image_shape, task=data.task,
                               num_classes=1 if data.task == "binary" else data.num_classes,
                               seed=seed, **build)
    training.compile_model(built, task=data.task, **compile_args)
    start = time.perf_counter()
    history = training.fit(built, data, profile=profile, epochs=epochs,
                           early_stopping=early_stopping, verbose=verbose, checkpoint=False,
                           **fit_args)
    summary = gap_summary(history, restored=bool(early_stopping))
    summary["seconds"] = round(time.perf_counter() - start, 1)
    summary["params"] = int(built.count_params())
    config = {"model": model, "build": build, "compile": compile_args, "fit": fit_args,
              "early_stopping": early_stopping}
    return Variant(name, built, history, summary, config)


def summary_table(variants, sort_by: str | None = None):
    """A table of variants: train/val AUC, gap, best val AUC and epoch, time.

    Args:
        variants: :class:`Variant` objects (or ``{name: Variant}``).
        sort_by: Column to sort by (descending), e.g. ``"best_val_auc"``; default keeps order.

    Returns:
        A ``pandas.DataFrame`` indexed by variant name.
    """
    import pandas as pd

    items = variants.values() if isinstance(variants, dict) else variants
    frame = pd.DataFrame({v.name: v.summary for v in items}).T
    frame.index.name = "technique"
    for column in ("best_epoch", "epochs", "params"):
        if column in frame:
            frame[column] = frame[column].astype(int)
    if sort_by:
        frame = frame.sort_values(sort_by, ascending=False)
    return frame
