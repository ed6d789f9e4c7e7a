"""Compiling and training models on an :class:`~xraykit.datasets.XRayDataset` (lesson 2).

:func:`compile_model` picks the loss and the metrics that fit the task; :func:`fit` trains with
the callbacks every lesson wants:

* ``ModelCheckpoint`` keeping the best model by validation AUC (``<run_dir>/best.keras``);
* ``EarlyStopping`` on ``val_auc`` (mode max) that restores the best weights;
* ``CSVLogger`` (``<run_dir>/history.csv``);
* ``BackupAndRestore`` (``<run_dir>/backup``): call :func:`fit` again with the same ``run_dir``
  after an interruption (a Colab disconnect) and training resumes from the last finished epoch.

Metric names in the history (prefix ``val_`` for validation): ``auc`` (ROC AUC), ``ap`` (PR
AUC), ``accuracy``, ``precision``, ``recall``, ``sensitivity`` (= recall at the threshold; the
clinical name) and ``specificity`` (true negative rate at the threshold). Multi-class tasks get
``accuracy`` and a one-vs-rest ``auc``.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import time

import keras
import numpy as np
from keras import ops

from xraykit.keras_objects import SparseAUC, Specificity
from xraykit.losses import MaskedBinaryCrossentropy, WeightedBinaryCrossentropy, get_loss
from xraykit.optimizers import make_optimizer

TASKS = ("binary", "multilabel", "multiclass")


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------
# Specificity and SparseAUC are defined (and registered for loading) in xraykit.keras_objects.


def task_metrics(task: str = "binary", threshold: float = 0.5,
                 num_classes: int | None = None) -> list[keras.metrics.Metric]:
    """The metrics :func:`compile_model` uses for a task.

    Args:
        task: ``"binary"``, ``"multilabel"`` or ``"multiclass"``.
        threshold: Decision threshold of the threshold metrics.
        num_classes: Labels (multilabel) or classes (multiclass).

    Returns:
        Fresh metric objects.

    Raises:
        ValueError: On an unknown task or a missing ``num_classes`` for multiclass.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {task!r}.")
    if task == "multiclass":
        if not num_classes or num_classes < 2:
            raise ValueError("task='multiclass' needs num_classes >= 2 (the number of classes).")
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                SparseAUC(num_classes, name="auc")]
    multi = task == "multilabel"
    labels = num_classes if multi else None
    return [
        keras.metrics.AUC(name="auc", multi_label=multi, num_labels=labels),
        keras.metrics.AUC(name="ap", curve="PR", multi_label=multi, num_labels=labels),
        keras.metrics.BinaryAccuracy(name="accuracy", threshold=threshold),
        keras.metrics.Precision(thresholds=threshold, name="precision"),
        keras.metrics.Recall(thresholds=threshold, name="recall"),
        keras.metrics.Recall(thresholds=threshold, name="sensitivity"),
        Specificity(threshold=threshold, name="specificity"),
    ]


def _infer_task(model) -> tuple[str, int]:
    out = model.outputs[0] if getattr(model, "outputs", None) else None
    units = int(out.shape[-1]) if out is not None else 1
    layer = model.layers[-1] if model.layers else None
    activation = getattr(getattr(layer, "activation", None), "__name__", "")
    if activation == "softmax":
        return "multiclass", units
    return ("binary", 1) if units == 1 else ("multilabel", units)


def _make_optimizer(optimizer, learning_rate, weight_decay):
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer must be a name (e.g. 'adam') or a keras Optimizer, "
                        f"not {type(optimizer).__name__}.")
    return make_optimizer(optimizer, learning_rate=learning_rate, weight_decay=weight_decay)


def _make_loss(loss, task, label_smoothing, y_train, loss_options):
    if loss is None:
        if task == "multiclass":
            return keras.losses.SparseCategoricalCrossentropy(name="loss")
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)
    if isinstance(loss, str):
        return get_loss(loss, y_train=y_train, **(loss_options or {}))
    return loss


def compile_model(model: keras.Model, task: str | None = "binary", optimizer="adam",
                  learning_rate=1e-3, loss=None, threshold: float = 0.5,
                  num_classes: int | None = None, weight_decay: float | None = None,
                  label_smoothing: float = 0.0, y_train=None, loss_options: dict | None = None,
                  **compile_kwargs) -> keras.Model:
    """Compiles a model with the loss and metrics that fit the task.

    Args:
        model: A model from :func:`xraykit.models.build_model` (or any Keras model).
        task: ``"binary"``, ``"multilabel"``, ``"multiclass"``; ``None`` infers it from the
            output layer (softmax → multiclass; 1 unit → binary; else multilabel).
        optimizer: A name (``"adam"``, ``"adamw"``, ``"sgd"``...; built with
            :func:`xraykit.optimizers.make_optimizer`) or a ``keras.optimizers.Optimizer``.
        learning_rate: Learning rate (a float or a ``LearningRateSchedule``) for a named
            optimizer.
        loss: ``None`` (binary cross-entropy, or sparse categorical for multiclass), a name
            (see :func:`xraykit.losses.get_loss`) or a Keras loss.
        threshold: Decision threshold of accuracy/precision/recall/sensitivity/specificity.
        num_classes: Labels or classes; inferred from the model output when ``None``.
        weight_decay: Decoupled weight decay of a named optimizer (AdamW, ...).
        label_smoothing: Label smoothing of the default binary cross-entropy.
        y_train: Training labels, for losses that weight classes from them
            (``"weighted_bce"``, ``"focal"`` with ``alpha="balanced"``, ``"masked_bce"``).
        loss_options: Keyword arguments of a named loss (e.g. ``{"gamma": 2.0}``).
        **compile_kwargs: Passed to ``model.compile`` (e.g. ``jit_compile``).

    Returns:
        The compiled model.

    Raises:
        ValueError: On an unknown task or optimizer.
    """
    inferred_task, units = _infer_task(model)
    task = task or inferred_task
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} or None, not {task!r}.")
    num_classes = num_classes or units
    model.compile(
        optimizer=_make_optimizer(optimizer, learning_rate, weight_decay),
        loss=_make_loss(loss, task, label_smoothing, y_train, loss_options),
        metrics=task_metrics(task, threshold, num_classes),
        **compile_kwargs,
    )
    return model


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
def balanced_class_weight(y, task: str = "binary") -> dict[int, float] | None:
    """Class weights ``n / (k * n_class)`` (scikit-learn's "balanced") for ``fit``.

    Args:
        y: Training labels: ``(N, 1)`` or ``(N,)`` binary, or ``(N,)`` class indices.
        task: ``"binary"`` or ``"multiclass"``; ``"multilabel"`` returns ``None`` (Keras'
            ``class_weight`` cannot weight labels independently: use a weighted loss,
            :func:`xraykit.losses.get_loss` ``"weighted_bce"``).

    Returns:
        ``{class_index: weight}``, or ``None`` for multi-label.
    """
    if task == "multilabel":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.asarray(y).reshape(-1)
    labels = labels[~np.isnan(labels.astype(float))].astype(int)
    classes = np.unique(labels)
    weights = compute_class_weight("balanced", classes=classes, y=labels)
    return {int(c): float(w) for c, w in zip(classes, weights)}


def _loss_weights_classes(loss) -> bool:
    """Whether a compiled loss already re-weights classes (so class weights would double it)."""
    if isinstance(loss, WeightedBinaryCrossentropy):
        return True
    if isinstance(loss, MaskedBinaryCrossentropy):
        weights = (loss.positive_weight, loss.negative_weight)
        return any(np.any(np.asarray(w, dtype=float) != 1.0) for w in weights)
    return False


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of each epoch (training plus validation) in ``self.seconds``."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def default_run_dir(name: str = "model") -> pathlib.Path:
    """A fresh temporary folder for one training run (checkpoint, CSV log, backup).

    Args:
        name: Prefix of the folder name (the model name).

    Returns:
        The folder path.
    """
    return pathlib.Path(tempfile.mkdtemp(prefix=f"xraykit-{name}-"))


def fit(model: keras.Model, data, profile=None, epochs: int | None = None,
        batch_size: int | None = None, class_weight="balanced", run_dir=None, callbacks=None,
        early_stopping: bool | int = True, verbose="auto", checkpoint: bool = True,
        shuffle: bool = True) -> keras.callbacks.History:
    """Trains a compiled model on a dataset's train split, validating on its val split.

    Args:
        model: A model compiled with :func:`compile_model` (so ``val_auc`` exists).
        data: An :class:`~xraykit.datasets.XRayDataset` (or anything with ``x_train``,
            ``y_train``, ``x_val``, ``y_val`` and ``task``).
        profile: Run profile (name or object) giving default epochs and batch size.
        epochs: Epochs (default: the profile's).
        batch_size: Batch size (default: the profile's).
        class_weight: ``"balanced"`` (computed from ``y_train``; skipped with a message when the
            compiled loss already weights the classes), ``None`` or a dict.
        run_dir: Folder for ``best.keras``, ``history.csv`` and the ``backup`` of
            ``BackupAndRestore``. ``None`` makes a fresh temporary folder. Reuse a folder to
            resume an interrupted run.
        callbacks: Extra Keras callbacks.
        early_stopping: ``True`` (patience ``max(3, epochs // 4)``), an int patience, or
            ``False``. With early stopping the model ends with the best-val-AUC weights
            (restored at the end of training, stopped early or not); without it the model keeps
            the last epoch's weights and ``run_dir/best.keras`` holds the best one.
        verbose: Keras verbosity (``"auto"`` shows progress bars).
        checkpoint: Save the best-val-AUC model to ``run_dir/best.keras``.
        shuffle: Shuffle the training data each epoch.

    Returns:
        The ``keras.callbacks.History``; ``history.history`` also holds ``epoch_seconds`` and
        ``history.run_dir`` the folder used.

    Raises:
        ValueError: If the model is not compiled or the data lacks train/val splits.
    """
    from xraykit.profiles import get_profile

    if not getattr(model, "compiled", False) and getattr(model, "optimizer", None) is None:
        raise ValueError("The model is not compiled: call xraykit.training.compile_model(model, "
                         "task=...) before fit().")
    for attr in ("x_train", "y_train", "x_val", "y_val"):
        if getattr(data, attr, None) is None:
            raise ValueError(f"data has no {attr}: pass an XRayDataset (xraykit.course_data).")
    profile = get_profile(profile)
    epochs = int(epochs or profile.epochs)
    batch_size = int(batch_size or profile.batch_size)
    task = getattr(data, "task", "binary")
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be 'balanced', None or a dict, not "
                             f"{class_weight!r}.")
        class_weight = balanced_class_weight(data.y_train, task)
        if _loss_weights_classes(model.loss):
            print(f"class_weight='balanced' skipped: the loss "
                  f"{type(model.loss).__name__} already weights the classes.")
            class_weight = None

    run_dir = pathlib.Path(run_dir) if run_dir is not None else default_run_dir(model.name)
    run_dir.mkdir(parents=True, exist_ok=True)
    timer = EpochTimer()
    cbs = [timer]
    if checkpoint:
        cbs.append(keras.callbacks.ModelCheckpoint(
            os.fspath(run_dir / "best.keras"), monitor="val_auc", mode="max",
            save_best_only=True, verbose=0))
    if early_stopping:
        patience = early_stopping if not isinstance(early_stopping, bool) else max(3, epochs // 4)
        cbs.append(keras.callbacks.EarlyStopping(
            monitor="val_auc", mode="max", patience=int(patience), restore_best_weights=True,
            verbose=0))
    cbs.append(keras.callbacks.CSVLogger(os.fspath(run_dir / "history.csv"), append=True))
    cbs.append(keras.callbacks.BackupAndRestore(os.fspath(run_dir / "backup")))
    cbs.extend(callbacks or [])

    history = model.fit(
        data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
        epochs=epochs, batch_size=batch_size, class_weight=class_weight, callbacks=cbs,
        verbose=verbose, shuffle=shuffle,
    )
    history.history["epoch_seconds"] = list(timer.seconds)
    history.run_dir = run_dir
    return history
