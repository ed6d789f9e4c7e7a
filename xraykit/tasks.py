"""Task names (binary, multi-label, multi-class) and 0/1 labels: checking them, inferring the task.

Every module that takes a ``task`` argument checks it here, so a misspelt task is refused
with the same message everywhere, and the task is inferred from labels or from a model's
output in one way only. Evaluation, calibration and class weights check 0/1 labels (and the
scores that go with them) with :func:`check_binary`. This module imports neither Keras nor a
backend.
"""

from __future__ import annotations

import difflib

import numpy as np

TASKS = ("binary", "multilabel", "multiclass")

__all__ = ["TASKS", "check_binary", "check_task", "task_from_labels", "task_from_model"]


def check_task(task, allowed: tuple[str, ...] = TASKS) -> str:
    """Checks a task name, suggesting the right spelling when it is close to one.

    Args:
        task: The name to check.
        allowed: The task names accepted here (a subset of :data:`TASKS`).

    Returns:
        ``task``, unchanged.

    Raises:
        ValueError: If ``task`` is not one of ``allowed``; the message names the closest
            allowed spelling (``"multi-label"`` suggests ``"multilabel"``).

    Example:
        >>> check_task("multilabel")
        'multilabel'
        >>> check_task("multi-label")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: task must be one of (...), not 'multi-label' (did you mean 'multilabel'?).
    """
    if isinstance(task, str) and task in allowed:
        return task
    hint = ""
    if isinstance(task, str):
        folded = "".join(c for c in task.lower() if c.isalpha())
        close = difflib.get_close_matches(folded, allowed, n=1, cutoff=0.6)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
    raise ValueError(f"task must be one of {allowed}, not {task!r}{hint}.")


def task_from_labels(labels) -> str:
    """Infers the task from labels.

    Args:
        labels: ``(N,)`` or ``(N, L)`` labels; NaN (unknown) entries are ignored.

    Returns:
        ``"multilabel"`` for several columns, ``"binary"`` when every label is 0 or 1, else
        ``"multiclass"``.

    Example:
        >>> task_from_labels(np.array([[0], [1], [1]]))
        'binary'
        >>> task_from_labels(np.array([0, 2, 1]))
        'multiclass'
        >>> task_from_labels(np.array([[0, 1], [1, np.nan]]))
        'multilabel'
    """
    labels = np.asarray(labels)
    labels = labels.reshape(len(labels), -1)
    if labels.shape[1] > 1:
        return "multilabel"
    known = labels[~np.isnan(labels)] if labels.dtype.kind == "f" else labels
    return "binary" if set(np.unique(known).tolist()) <= {0, 1} else "multiclass"


def task_from_model(model) -> tuple[str, int]:
    """Infers the task from a Keras model's output width and last activation.

    A softmax last layer means ``"multiclass"``; otherwise one output is ``"binary"`` and
    several are ``"multilabel"``. Only public attributes are read (``model.outputs``,
    ``model.layers``, a layer's ``activation``), so Keras is not imported here.

    Args:
        model: A built Keras model.

    Returns:
        ``(task, units)``: the task and the number of outputs.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")])
        >>> task_from_model(model)
        ('multiclass', 3)
    """
    outputs = getattr(model, "outputs", None)
    units = int(outputs[0].shape[-1] or 1) if outputs else 1
    layers = getattr(model, "layers", None)
    activation = getattr(layers[-1], "activation", None) if layers else None
    if getattr(activation, "__name__", "") == "softmax":
        return "multiclass", units
    return ("binary", 1) if units == 1 else ("multilabel", units)


def check_binary(y_true, y_score=None, *, score_name: str = "y_score",
                 probabilities: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Checks 0/1 labels (and one score per label), dropping the unknown labels.

    Labels and scores are flattened, so ``(N,)``, ``(N, 1)`` and ``(N, L)`` arrays all work
    (multilabel arrays count every (image, label) pair once).

    Args:
        y_true: 0/1 labels, any shape; NaN marks an unknown label, left out with its score.
        y_score: Scores of the positive class with as many values as ``y_true``, or ``None``
            to check the labels only.
        score_name: The name of the scores in error messages (``"y_prob"``...).
        probabilities: Also require the scores to be probabilities in [0, 1].

    Returns:
        ``(labels, scores)``: the known labels as an int array and their scores as a float64
        array (``None`` when no scores were given).

    Raises:
        ValueError: If the sizes differ, ``y_true`` is empty, no label is known, a label is not
            0/1 (the message shows the values found), a score is NaN or infinite, or with
            ``probabilities=True`` a score is outside [0, 1].

    Example:
        >>> check_binary([0, 1, np.nan], [0.2, 0.9, 0.5])
        (array([0, 1]), array([0.2, 0.9]))
        >>> check_binary([0, 2], [0.2, 0.9])
        Traceback (most recent call last):
        ...
        ValueError: y_true must hold 0/1 labels (NaN = unknown, left out); found [2.0].
    """
    labels = np.asarray(y_true, dtype=np.float64).reshape(-1)
    scores = None if y_score is None else np.asarray(y_score, dtype=np.float64).reshape(-1)
    if scores is not None and labels.shape != scores.shape:
        raise ValueError(f"y_true has {labels.size} values but {score_name} has {scores.size}: "
                         f"pass one score per label (e.g. model.predict(x).ravel() for a binary "
                         f"model; flatten multilabel arrays the same way).")
    if labels.size == 0:
        raise ValueError("y_true is empty: pass at least one label.")
    known = ~np.isnan(labels)
    labels = labels[known]
    if labels.size == 0:
        raise ValueError("No labelled examples: every label in y_true is NaN (unknown).")
    bad = (labels != 0) & (labels != 1)
    if bad.any():
        raise ValueError(f"y_true must hold 0/1 labels (NaN = unknown, left out); found "
                         f"{np.unique(labels[bad])[:5].tolist()}.")
    if scores is not None:
        scores = scores[known]
        if not np.isfinite(scores).all():
            raise ValueError(f"{score_name} contains NaN or infinite values: the model "
                             f"diverged or the input had NaN/inf.")
        if probabilities and (not np.isfinite(scores).all() or scores.min() < 0
                              or scores.max() > 1):
            raise ValueError(f"{score_name} must hold probabilities in [0, 1]; for logits use "
                             f"TemperatureScaler(from_logits=True) or apply a sigmoid first.")
    return labels.astype(int), scores
