"""Reading training runs (lesson 5): generalization gaps, the runs table, kernel weights.

Lesson 5 writes its training loop in the notebook (seed, build, compile, fit); this module reads
what the runs produce. :func:`gap_summary` reads one run's curves (train vs validation AUC, the
gap between them, the best epoch); :func:`summary_table` puts many runs side by side;
:func:`kernel_weights` and :func:`weight_stats` collect the conv/dense kernels a run ended with,
whose distribution L1 and L2 change. (Its old name, ``xraykit.regularization``, still imports.)
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

__all__ = ["gap_summary", "kernel_weights", "summary_table", "weight_stats"]


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
        ValueError: If it holds no epoch, train and validation differ in length, or every
            validation score is NaN.
    """
    curves = dict(getattr(history, "history", history))
    for key in (metric, f"val_{metric}"):
        if key not in curves:
            raise KeyError(f"history has no {key!r} (has {sorted(curves)}); compile with "
                           "xraykit.training.compile_model and pass validation data.")
    train = np.asarray(curves[metric], dtype=np.float64)
    val = np.asarray(curves[f"val_{metric}"], dtype=np.float64)
    if val.size == 0 or train.size != val.size:
        raise ValueError(f"history holds {train.size} epoch(s) of {metric!r} and {val.size} of "
                         f"'val_{metric}': pass the history of a run that trained at least one "
                         f"epoch with validation data.")
    if np.isnan(val).all():
        raise ValueError(f"every epoch's 'val_{metric}' is NaN: the run diverged (its loss "
                         f"became NaN); there is no score to report.")
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
    """Sizes of a model's kernels: what L2 shrinks and what L1 pulls towards zero.

    L1 trained with a gradient method (SGD, Adam) makes small weights oscillate around zero
    rather than land on it: compare ``exact_zero`` with ``near_zero``. Exact zeros come from a
    proximal step (soft-thresholding) or from pruning.

    Args:
        model: A Keras model.
        tol: Absolute value under which a weight counts as near zero.

    Returns:
        Dict with ``l1`` (sum of absolute values), ``l2`` (Euclidean norm), ``mean_abs``,
        ``exact_zero`` (fraction equal to 0), ``near_zero`` (fraction with ``|w| < tol``) and
        ``count``.
    """
    w = kernel_weights(model).astype(np.float64)
    return {"l1": float(np.abs(w).sum()), "l2": float(np.sqrt(np.square(w).sum())),
            "mean_abs": float(np.abs(w).mean()), "exact_zero": float(np.mean(w == 0.0)),
            "near_zero": float(np.mean(np.abs(w) < tol)), "count": int(w.size)}


def summary_table(histories: dict, sort_by: str | None = None, metric: str = "auc",
                  restored=()):
    """A table of runs: train/val score, gap, best val score and its epoch, epochs run.

    Args:
        histories: ``{name: keras History or its .history dict}``, one per run.
        sort_by: Column to sort by (descending), e.g. ``"best_val_auc"``; default keeps order.
        metric: Metric name, as in :func:`gap_summary`.
        restored: Names of the runs whose best weights were restored (early stopping): their
            row reports the best epoch, the model you keep (see :func:`gap_summary`).

    Returns:
        A ``pandas.DataFrame`` indexed by run name (``technique``).

    Raises:
        TypeError: If ``histories`` is not a dict of histories.
    """
    import pandas as pd

    if not isinstance(histories, dict):
        raise TypeError(f"histories must be a dict {{name: History or history dict}}, not "
                        f"{type(histories).__name__}.")
    restored = set(restored)
    frame = pd.DataFrame({name: gap_summary(history, metric, restored=name in restored)
                          for name, history in histories.items()}).T
    frame.index.name = "technique"
    for column in ("best_epoch", "epochs"):
        frame[column] = frame[column].astype(int)
    if sort_by:
        frame = frame.sort_values(sort_by, ascending=False)
    return frame
