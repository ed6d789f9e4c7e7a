"""The task names (binary, multi-label, multi-class): checking them and inferring them.

Every module that takes a ``task`` argument checks it here, so a misspelt task is refused
with the same message everywhere, and the task is inferred from labels or from a model's
output in one way only. This module imports neither Keras nor a backend.
"""

from __future__ import annotations

import difflib

import numpy as np

TASKS = ("binary", "multilabel", "multiclass")


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
