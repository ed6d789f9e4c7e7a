"""Compiling and training models on an :class:`~xraykit.datasets.XRayDataset` (lesson 2).

:func:`compile_model` picks the loss and the metrics that fit the task; :func:`fit` trains with
the callbacks every lesson wants:

* :class:`BestCheckpoint` keeping the best model by validation AUC (``<run_dir>/best.keras``,
  its score in ``best.json``), with early stopping on ``val_auc`` that restores the best weights;
* ``CSVLogger`` (``<run_dir>/history.csv``);
* ``BackupAndRestore`` (``<run_dir>/backup``): call :func:`fit` again with the same ``run_dir``
  after an interruption (a Colab disconnect) and training resumes from the last finished epoch;
  the best model, early stopping and ``history.csv`` then count every epoch of the run once.

Metric names in the history (prefix ``val_`` for validation): ``auc`` (ROC AUC), ``ap`` (PR
AUC), ``accuracy``, ``precision``, ``recall``, ``sensitivity`` (= recall at the threshold; the
clinical name) and ``specificity`` (true negative rate at the threshold). Multi-class tasks get
``accuracy`` and a one-vs-rest ``auc``.
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
import tempfile
import warnings

import keras
import numpy as np
from keras import ops

from xraykit import files
from xraykit.augmentation import EpochTimer  # the epoch timer lives below training (re-exported)
from xraykit.checks import check_count, check_finite_array, check_threshold
from xraykit.losses import MaskedBinaryCrossentropy, class_weight_for_fit, get_loss
from xraykit.optimizers import make_optimizer
from xraykit.tasks import check_task, task_from_model

# ---------------------------------------------------------------------------------------------
# Metrics (registered for loading: a compiled model saved with them reopens in a fresh process)
# ---------------------------------------------------------------------------------------------
_register = keras.saving.register_keras_serializable(package="xraykit")


@_register
class Specificity(keras.metrics.Metric):
    """True negative rate at a threshold: TN / (TN + FP), over all labels (micro average).

    Like ``keras.metrics.Recall``/``Precision`` (whose convention it follows), a score counts as
    positive when it is strictly greater than the threshold.

    Args:
        threshold: Scores ``> threshold`` count as positive.
        name: Metric name.
        dtype: Metric dtype.
    """

    def __init__(self, threshold: float = 0.5, name: str = "specificity", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.threshold = check_threshold(threshold)
        self.true_negatives = self.add_variable(shape=(), initializer="zeros", name="tn")
        self.false_positives = self.add_variable(shape=(), initializer="zeros", name="fp")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Accumulates the statistics of one batch."""
        y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)), "float32")
        predicted = ops.cast(ops.greater(ops.cast(y_pred, "float32"), self.threshold),
                             "float32")
        negative = 1.0 - y_true
        weight = ops.ones_like(y_true)
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, "float32")
            weight = weight * ops.reshape(sample_weight, (-1,) + (1,) * (len(y_true.shape) - 1))
        self.true_negatives.assign_add(ops.sum(negative * (1.0 - predicted) * weight))
        self.false_positives.assign_add(ops.sum(negative * predicted * weight))

    def result(self):
        """The metric value."""
        total = self.true_negatives + self.false_positives
        return ops.where(total > 0, self.true_negatives / ops.maximum(total, 1e-12), 0.0)

    def reset_state(self):
        """Clears the accumulated statistics."""
        self.true_negatives.assign(0.0)
        self.false_positives.assign(0.0)

    def get_config(self):
        """Config for saving; ``from_config`` rebuilds the object from it."""
        return {**super().get_config(), "threshold": self.threshold}


@_register
class SparseAUC(keras.metrics.AUC):
    """One-vs-rest ROC AUC for integer class labels (one-hot encodes ``y_true`` first).

    Args:
        num_classes: Number of classes.
        name: Metric name.
        **kwargs: Passed to ``keras.metrics.AUC``.
    """

    def __init__(self, num_classes: int, name: str = "auc", **kwargs):
        kwargs.pop("multi_label", None)
        kwargs.pop("num_labels", None)
        super().__init__(name=name, multi_label=False, **kwargs)
        self.num_classes = int(num_classes)

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Accumulates the statistics of one batch."""
        y_true = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.num_classes)
        return super().update_state(y_true, y_pred, sample_weight=sample_weight)

    def get_config(self):
        """Config for saving; ``from_config`` rebuilds the object from it."""
        config = super().get_config()
        for key in ("multi_label", "num_labels", "label_weights", "from_logits"):
            config.pop(key, None)
        return {**config, "num_classes": self.num_classes}



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
    check_task(task)
    threshold = check_threshold(threshold)
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
    inferred_task, units = task_from_model(model)
    task = check_task(task or inferred_task)
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
class BestCheckpoint(keras.callbacks.Callback):
    """Keeps the best epoch of a run, across interruptions: checkpoint, early stop, restore.

    After each epoch whose ``monitor`` beats the best so far, the model is saved to
    ``<run_dir>/best.keras`` and the score to ``<run_dir>/best.json`` (``{"monitor", "mode",
    "best", "epoch"}``, epoch 0-based as in ``history.csv``). Both are written to temp names
    first and then renamed, so a process killed mid-save never leaves a half-written file under
    the final name, and an unfinished pair is completed or dropped when training starts again.

    Why not ``ModelCheckpoint`` + ``EarlyStopping(restore_best_weights=True)``: both keep the
    best score in memory only. A run resumed by ``BackupAndRestore`` starts them from scratch,
    so the checkpoint overwrites ``best.keras`` with the first resumed epoch even when it is
    worse, early stopping restores the best of the resumed epochs only, and its patience
    restarts. This callback reads the stored best back, so all three count every epoch of the
    run.

    A fit that starts at epoch 0 (nothing to resume) is a new run: a previous run's
    ``best.keras``/``best.json`` in the folder are replaced. A process killed after saving an
    epoch's best but before ``BackupAndRestore`` saved that epoch re-runs it on resume; the
    re-run replaces ``best.keras`` only if it scores higher than the first attempt.

    Args:
        run_dir: Folder of ``best.keras`` and ``best.json`` (must exist).
        monitor: Logged metric to watch (``"val_auc"``).
        mode: ``"max"`` or ``"min"``: whether a higher or a lower score is better.
        patience: Stop after this many epochs without improvement; ``None`` never stops.
        restore_best: At the end of training, give the model the best epoch's weights (from
            memory, or from ``best.keras`` when the best epoch ran before an interruption).
        save: Save ``best.keras``/``best.json``. Without it the best is kept in memory only and
            a resumed run cannot see the epochs before the interruption.

    Raises:
        ValueError: When training starts, if ``best.json`` is unreadable, watches another
            metric, or ``best.keras`` is missing; after an epoch, if ``monitor`` is not logged.
    """

    def __init__(self, run_dir, monitor: str = "val_auc", mode: str = "max",
                 patience: int | None = None, restore_best: bool = True, save: bool = True):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', not {mode!r}.")
        self.run_dir = pathlib.Path(run_dir)
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.restore_best, self.save = restore_best, save
        self.model_path = self.run_dir / "best.keras"
        self.record_path = self.run_dir / "best.json"
        self._model_tmp = self.run_dir / "best.partial.keras"
        self._record_tmp = self.record_path.with_name(self.record_path.name + ".partial")
        self.best: float | None = None
        self.best_epoch: int | None = None
        self._best_weights = None
        self._first_epoch: int | None = None

    def _finish_interrupted_save(self) -> None:
        if self._model_tmp.exists():  # killed before best.keras was replaced: old pair holds
            self._model_tmp.unlink()
            self._record_tmp.unlink(missing_ok=True)
        elif self._record_tmp.exists():  # best.keras replaced, best.json not yet
            os.replace(self._record_tmp, self.record_path)

    def _read_record(self) -> None:
        if not self.record_path.exists():
            return
        fix = (f"delete {self.record_path.name} and best.keras in {self.run_dir} to start the "
               f"run over, or pass another run_dir.")
        try:
            record = json.loads(self.record_path.read_text())
            best, epoch = float(record["best"]), int(record["epoch"])
            stored = (record["monitor"], record["mode"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{self.record_path} is not a best-epoch record written by "
                             f"xraykit ({error!r}): {fix}") from error
        if stored != (self.monitor, self.mode):
            raise ValueError(f"{self.record_path} records the best {stored[0]!r} (mode "
                             f"{stored[1]!r}), but this run watches {self.monitor!r} (mode "
                             f"{self.mode!r}): {fix}")
        if not self.model_path.exists():
            raise ValueError(f"{self.record_path} records epoch {epoch} as the best, but "
                             f"{self.model_path} is missing: put it back, or {fix}")
        self.best, self.best_epoch = best, epoch

    def on_train_begin(self, logs=None):
        """Keras callback hook: training starts."""
        self.best = self.best_epoch = self._best_weights = self._first_epoch = None
        if self.save:
            self._finish_interrupted_save()
            self._read_record()

    def on_epoch_begin(self, epoch, logs=None):
        """Keras callback hook: an epoch starts."""
        if self._first_epoch is None:
            self._first_epoch = epoch
            if epoch == 0 and self.best_epoch is not None:  # not a resume: a new run
                warnings.warn(f"{self.run_dir}: no interrupted run to resume, starting a new "
                              "run; its best.keras and best.json replace the previous run's.",
                              stacklevel=2)
                self.best = self.best_epoch = None
                self.record_path.unlink()
                self.model_path.unlink()

    def _improved(self, score: float) -> bool:
        if self.best is None:
            return not np.isnan(score)
        return score > self.best if self.mode == "max" else score < self.best

    def on_epoch_end(self, epoch, logs=None):
        """Keras callback hook: an epoch ended."""
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"fit() watches {self.monitor!r}, but the epoch logs only have "
                             f"{sorted(logs)}: compile the model with "
                             f"xraykit.training.compile_model (it adds the 'auc' metric) and "
                             f"pass validation data.")
        score = float(logs[self.monitor])
        if not all(np.isfinite(float(logs[k])) for k in ("loss", "val_loss") if k in logs):
            return  # a diverged epoch's weights are not a model, whatever its metrics say
        if self._improved(score):
            self.best, self.best_epoch = score, epoch
            if self.restore_best:
                self._best_weights = self.model.get_weights()
            if self.save:  # the model is moved into place first: see _finish_interrupted_save
                with files.atomic_files(self.model_path, self.record_path,
                                        temporaries=(self._model_tmp, self._record_tmp)):
                    self.model.save(self._model_tmp)
                    self._record_tmp.write_text(json.dumps(
                        {"monitor": self.monitor, "mode": self.mode, "best": score,
                         "epoch": epoch}))
        elif self.patience is not None and self.best_epoch is not None and \
                epoch - self.best_epoch >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        """Keras callback hook: training ended."""
        if not self.restore_best or self.best_epoch is None:
            return
        if self._best_weights is not None:
            self.model.set_weights(self._best_weights)
        elif self.save:  # the best epoch ran before the interruption
            self.model.load_weights(self.model_path)


class NonFiniteLossError(RuntimeError):
    """Training stopped because the loss became NaN or infinite.

    Attributes:
        epoch: The epoch (0-based) whose loss stopped being finite.
        batch: The batch of that epoch.
        history: The ``keras.callbacks.History`` of the run up to there (``run_dir`` set).
    """

    def __init__(self, message: str, epoch: int, batch: int, history=None):
        super().__init__(message)
        self.epoch, self.batch, self.history = epoch, batch, history


class StopOnNonFiniteLoss(keras.callbacks.TerminateOnNaN):
    """``keras.callbacks.TerminateOnNaN`` that remembers where the loss stopped being finite.

    Keras's callback stops training at the first NaN or infinite batch loss but only prints a
    line; this one also keeps ``epoch``, ``batch`` and ``loss`` so that :func:`fit` and a
    tuner trial can report it (:class:`BestCheckpoint` never keeps such an epoch).

    Attributes:
        epoch: The epoch of the first non-finite batch loss, or ``None``.
        batch: Its batch, or ``None``.
        loss: The loss value (NaN or inf), or ``None``.
    """

    def __init__(self):
        super().__init__()
        self.epoch = self.batch = self.loss = None
        self._current_epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        """Keras callback hook: an epoch starts."""
        self._current_epoch = epoch

    def on_batch_end(self, batch, logs=None):
        """Keras callback hook: a training batch ended; stops at a NaN or infinite loss."""
        loss = (logs or {}).get("loss")
        if self.epoch is None and loss is not None and not np.isfinite(float(loss)):
            self.epoch, self.batch, self.loss = self._current_epoch, batch, float(loss)
            self.model.stop_training = True

    def message(self, learning_rate=None) -> str:
        """Where the loss diverged and what to try, for an error or a failed trial."""
        rate = "" if learning_rate is None else f" (it is {learning_rate:.3g})"
        return (f"The training loss became {self.loss} at epoch {self.epoch}, batch "
                f"{self.batch}, so training stopped: lower the learning rate{rate}, check the "
                f"inputs and labels for NaN, and use a loss suited to the outputs "
                f"(from_logits=True for logits).")


def check_training_data(data) -> None:
    """Checks a dataset's train and validation splits before ``fit``.

    Args:
        data: An object with ``x_train``, ``y_train``, ``x_val``, ``y_val`` (and ``task``).

    Raises:
        ValueError: If a split is missing or empty, images and labels differ in number, an
            image array holds NaN or infinite values, a label is infinite, or the training or
            validation labels hold one class only (val AUC would be undefined, and an epoch
            would be chosen on it); the message names the split.
    """
    for attr in ("x_train", "y_train", "x_val", "y_val"):
        if getattr(data, attr, None) is None:
            raise ValueError(f"data has no {attr}: pass an XRayDataset (xraykit.course_data).")
    task = getattr(data, "task", "binary")
    for split in ("train", "val"):
        x = check_finite_array(getattr(data, f"x_{split}"), f"data.x_{split}")
        y = check_finite_array(getattr(data, f"y_{split}"), f"data.y_{split}", allow_nan=True)
        if len(x) != len(y):
            raise ValueError(f"data.x_{split} holds {len(x)} images but data.y_{split} "
                             f"{len(y)} labels: pass one label (row) per image.")
        known = y[~np.isnan(y)] if y.dtype.kind == "f" else y.reshape(-1)
        known = known[known >= 0]  # -1 marks an unknown label too
        classes = np.unique(known).tolist()
        if len(classes) < 2:
            found = f"class {classes[0]:g}" if classes else "no known label"
            need = "several classes" if task == "multiclass" else "positives and negatives"
            why = ("val AUC is undefined, so no epoch could be chosen on it" if split == "val"
                   else "there is nothing to tell apart")
            raise ValueError(f"data.y_{split} holds one class only ({found}): {why}. Use a "
                             f"{split} split with {need} (a stratified split).")


class _ResumableCSVLogger(keras.callbacks.CSVLogger):
    """``CSVLogger(append=True)`` that first drops the rows of the epochs about to be re-run.

    ``CSVLogger`` opens its file when training begins, before the first epoch is known, and
    appends: a resumed run would log the interrupted epoch twice. This one opens the file at
    the first epoch, after removing the rows from that epoch on.
    """

    def __init__(self, filename):
        super().__init__(filename, append=True)
        self._opened = False

    def on_train_begin(self, logs=None):
        """Keras callback hook: training starts."""
        self._opened = False

    def on_epoch_begin(self, epoch, logs=None):
        """Keras callback hook: an epoch starts."""
        if not self._opened:
            _drop_history_rows(pathlib.Path(self.filename), first_epoch=epoch)
            super().on_train_begin()
            self._opened = True


class _NamedBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose damaged backup is named, with what to do, when a run resumes.

    Keras falls back to the previous copy of damaged weights (``double_checkpoint``) but lets
    a damaged ``training_metadata.json`` (or both weight copies) fail with a bare
    ``JSONDecodeError``/``OSError`` that names no file.
    """

    def on_train_begin(self, logs=None):
        """Keras callback hook: restores the backup, or says which folder is damaged."""
        try:
            super().on_train_begin(logs)
        except (OSError, ValueError, KeyError, TypeError) as error:
            if not os.path.isdir(self.backup_dir) or not self.model.built:
                raise
            raise ValueError(
                f"{self.backup_dir}: the backup of an interrupted run cannot be read "
                f"({type(error).__name__}: {error}); delete this folder to start the run over "
                f"(best.keras and history.csv next to it are kept), or pass another "
                f"run_dir.") from error

def _drop_history_rows(path: pathlib.Path, first_epoch: int) -> None:
    """Removes the rows of ``history.csv`` whose epoch is ``>= first_epoch`` (atomically).

    Raises:
        ValueError: If a row's ``epoch`` column is not an integer.
    """
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = rows[:1]
    for line, row in enumerate(rows[1:], start=2):
        try:
            epoch = int(row[0])
        except (IndexError, ValueError):
            raise ValueError(f"{path}, row {line}, column 'epoch': {row[:1]} is not an epoch "
                             f"number: fix or delete the row (or the file) and resume "
                             f"again.") from None
        if epoch < first_epoch:
            kept.append(row)
    if len(kept) == len(rows):
        return
    with files.atomic_write(path, "w", newline="") as f:
        csv.writer(f).writerows(kept if len(kept) > 1 else [])


def _prepare_run_dir(run_dir) -> pathlib.Path:
    """Creates ``run_dir`` if needed and checks that it is a folder one can write in.

    Raises:
        OSError: ``NotADirectoryError`` if it is a file, ``PermissionError`` (or another
            ``OSError``) if it cannot be created or written; the message names the folder.
    """
    return files.check_writable(
        run_dir, "run_dir",
        "pass a folder you can write to, or run_dir=None for a fresh temporary one")


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
        class_weight: ``"balanced"`` (:func:`xraykit.losses.class_weights` of ``y_train``;
            none for multilabel tasks; skipped with a message when the compiled loss already
            weights the classes: :func:`xraykit.losses.class_weight_for_fit`), ``None`` or a
            dict.
        run_dir: Folder for ``best.keras`` (+ ``best.json``, its score and epoch),
            ``history.csv`` and the ``backup`` of ``BackupAndRestore``; created if missing.
            ``None`` makes a fresh temporary folder. Reuse a folder to resume an interrupted
            run: it goes on from the last finished epoch, ``best.keras`` is only replaced by a
            better epoch than any before the interruption, and ``history.csv`` keeps one row
            per epoch. A folder whose run finished starts a new run (replacing its files).
        callbacks: Extra Keras callbacks.
        early_stopping: ``True`` (patience ``max(3, epochs // 4)``), an int patience, or
            ``False``. With early stopping the model ends with the best-val-AUC weights of the
            whole run, epochs before an interruption included (restored at the end of
            training, stopped early or not); without it the model keeps the last epoch's
            weights and ``run_dir/best.keras`` holds the best one.
        verbose: Keras verbosity (``"auto"`` shows progress bars).
        checkpoint: Save the best-val-AUC model to ``run_dir/best.keras``. Without it the
            best weights are kept in memory only, so a resumed run's early stopping cannot
            restore an epoch from before the interruption.
        shuffle: Shuffle the training data each epoch.

    Returns:
        The ``keras.callbacks.History`` of the epochs this call ran (``history.csv`` holds
        the whole run); ``history.history`` also holds ``epoch_seconds`` and
        ``history.run_dir`` the folder used.

    Raises:
        ValueError: If the model is not compiled, ``epochs`` or ``batch_size`` is not a whole
            number >= 1, the data is refused by :func:`check_training_data` (a missing or
            empty split, NaN/inf images, a split of one class), labels are unknown (NaN or
            -1) but the loss does not skip them, the logs lack ``val_auc``,
            or the run folder's ``best.json``/``history.csv`` is damaged.
        NonFiniteLossError: If the loss became NaN or infinite: training stops at that batch
            (``StopOnNonFiniteLoss``), that epoch is never kept as the best, and the error
            says where it happened (its ``history`` holds the epochs run).
        OSError: If ``run_dir`` is a file (``NotADirectoryError``) or cannot be created or
            written (``PermissionError``...); the message names it.
    """
    from xraykit.profiles import get_profile

    if not getattr(model, "compiled", False) and getattr(model, "optimizer", None) is None:
        raise ValueError("The model is not compiled: call xraykit.training.compile_model(model, "
                         "task=...) before fit().")
    check_training_data(data)
    _check_unknown_labels(data, model.loss)
    profile = get_profile(profile)
    epochs = check_count(profile.epochs if epochs is None else epochs, "epochs")
    batch_size = check_count(profile.batch_size if batch_size is None else batch_size,
                             "batch_size")
    class_weight = class_weight_for_fit(class_weight, data.y_train,
                                        getattr(data, "task", "binary"), model.loss)
    run_dir = _prepare_run_dir(run_dir if run_dir is not None else default_run_dir(model.name))
    timer, divergence = EpochTimer(), StopOnNonFiniteLoss()
    cbs = [timer, divergence]
    patience = None
    if early_stopping:
        patience = early_stopping if not isinstance(early_stopping, bool) else max(3, epochs // 4)
    if checkpoint or early_stopping:
        cbs.append(BestCheckpoint(run_dir, monitor="val_auc", mode="max", patience=patience,
                                  restore_best=bool(early_stopping), save=checkpoint))
    cbs.append(_ResumableCSVLogger(os.fspath(run_dir / "history.csv")))
    cbs.append(_NamedBackupAndRestore(os.fspath(run_dir / "backup"), double_checkpoint=True))
    cbs.extend(callbacks or [])

    history = model.fit(
        data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
        epochs=epochs, batch_size=batch_size, class_weight=class_weight, callbacks=cbs,
        verbose=verbose, shuffle=shuffle,
    )
    history.history["epoch_seconds"] = list(timer.seconds)
    history.run_dir = run_dir
    if divergence.epoch is not None:
        kept = ("" if not checkpoint else f" {run_dir / 'best.keras'} holds the best epoch "
                f"before it." if (run_dir / "best.keras").exists() else " No epoch was kept.")
        raise NonFiniteLossError(divergence.message(_learning_rate(model)) + kept,
                                 divergence.epoch, divergence.batch, history)
    return history


def _check_unknown_labels(data, loss) -> None:
    """Refuses unknown labels (NaN, or -1 in 0/1 labels) unless the loss skips them."""
    if isinstance(loss, MaskedBinaryCrossentropy) or getattr(data, "task", "") == "multiclass":
        return
    for split in ("train", "val"):
        y = np.asarray(getattr(data, f"y_{split}"), dtype=np.float64)
        unknown = int(np.sum(np.isnan(y) | (y < 0)))
        if unknown:
            raise ValueError(
                f"data.y_{split} holds {unknown} unknown label(s) (NaN or -1), but the loss "
                f"{getattr(loss, 'name', loss)!r} does not skip them (its value would be NaN): "
                f"compile with loss='masked_bce' (xraykit.losses.MaskedBinaryCrossentropy), or "
                f"leave out the images whose labels are unknown.")

def _learning_rate(model) -> float | None:
    """The optimizer's learning rate as a number, when it is one (not a schedule)."""
    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except (AttributeError, TypeError, ValueError):
        return None
