r"""Hyperparameter search with KerasTuner (lesson 6).

A :class:`SearchSpace` says what a search varies: the architecture (model name, width, depth),
dropout, L2, the optimizer and its learning rate, the augmentation preset, the loss and the batch
size (:data:`SEARCH_SPACES` names the course's). :class:`XRayHyperModel` is the
``keras_tuner.HyperModel`` that draws a trial from it and builds through
:func:`xraykit.models.build_model` and :func:`xraykit.training.compile_model`, so a trial is
exactly the model a lesson would train by hand.

:func:`make_tuner` makes a RandomSearch, Hyperband or BayesianOptimization tuner sized by a run
profile; :func:`run_search` runs it on an :class:`~xraykit.datasets.XRayDataset` (train on
``train``, judge on ``val``; the test split is never touched) and raises
:class:`TrialsFailedError` with the cause when trials failed. KerasTuner 1.4.8 does not: a
search with fewer failed trials than ``max_consecutive_failed_trials`` "finishes" and
returns no usable result. :func:`results_frame` turns a search into a pandas table.

The same search runs from the command line, as one process or distributed with KerasTuner's
chief/worker mode (``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT`` give each process its role; ``--workers`` starts them here)::

    python -m xraykit tune --kind random --directory runs/tuning --project-name demo \
        --profile smoke --space tiny --workers 2

(``python -m xraykit.tuning ...`` is its old spelling and still works.)
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from xraykit import models, training
from xraykit.losses import class_weight_for_fit, get_loss
from xraykit.tasks import check_task

try:
    import keras_tuner
except ImportError as _err:  # pragma: no cover - depends on the install
    raise ImportError(
        "xraykit.tuning needs KerasTuner: pip install 'xraykit[tuning]' "
        "(keras-tuner and tensorboard)."
    ) from _err

KINDS = ("random", "hyperband", "bayesian")
DEFAULT_OBJECTIVE = ("val_auc", "max")
TRIAL_LOG_PREFIX = "trials_"
FAILED_STATUSES = ("FAILED", "INVALID")

__all__ = [
    "KINDS", "SEARCH_SPACES", "SearchSpace", "TrialsFailedError", "XRayHyperModel", "best_config",
    "check_trials", "load_trials", "make_tuner", "results_frame", "run_search", "tiny_hypermodel",
]


class TrialsFailedError(RuntimeError):
    """A hyperparameter search whose trials failed.

    Attributes:
        failures: ``[(trial_id, message), ...]`` of the failed trials.
        completed: Number of trials that completed.
    """

    def __init__(self, message: str, failures: list[tuple[str, str]], completed: int):
        super().__init__(message)
        self.failures = failures
        self.completed = completed


# --------------------------------------------------------------------------------------------
# The search space
# --------------------------------------------------------------------------------------------
#: Old keyword names of the space's entries (``XRayHyperModel(models=..., optimizers=...)``).
_OLD_NAMES = {"models": "model", "optimizers": "optimizer", "losses": "loss"}
#: Numeric entries searched over a ``(low, high)`` range, and their sampling.
_RANGES = {"dropout": "linear", "l2": "log", "learning_rate": "log", "weight_decay": "log"}
#: Categorical entries, in the order they are declared (the tuners sample in this order).
_CHOICES = ("model", "width", "depth", "batch_norm", "augmentation", "optimizer", "loss",
            "batch_size")


def _is_scalar(value) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _choice(hp, name: str, value):
    """Declares a categorical entry: fixed for a scalar or a single choice."""
    if _is_scalar(value):
        return hp.Fixed(name, value)
    values = list(value)
    return hp.Fixed(name, values[0]) if len(values) == 1 else hp.Choice(name, values)


def _range(hp, name: str, value, sampling: str, step: float | None = None):
    """Declares a numeric entry: fixed for a number or an empty range."""
    if _is_scalar(value):
        return hp.Fixed(name, float(value))
    low, high = float(value[0]), float(value[1])
    if low == high:
        return hp.Fixed(name, low)
    if step is not None:
        return hp.Float(name, low, high, step=step)
    return hp.Float(name, low, high, sampling=sampling)


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """What a search varies: one entry per hyperparameter, named as in the trial's values.

    Each entry is either a fixed value (a scalar: not tuned, but recorded with every trial) or
    the set to search: a list/tuple of choices for categorical entries, a ``(low, high)`` pair
    for numeric ranges. The named spaces are in :data:`SEARCH_SPACES` (``"default"``, the
    course's; ``"tiny"``, seconds per trial for tests, CI and smoke runs).

    Attributes:
        model: Model names (from-scratch nets of :func:`xraykit.models.list_models`).
        width: Choices of the base width (filters of the first block).
        depth: Choices of the number of blocks.
        dropout: ``(low, high)`` range of the dropout rate before the head (step 0.1).
        l2: ``(low, high)`` range of the L2 kernel penalty (log sampling).
        optimizer: Optimizer names accepted by :func:`xraykit.training.compile_model`.
        learning_rate: ``(low, high)`` range of the learning rate (log sampling).
        weight_decay: ``(low, high)`` range of AdamW's decoupled weight decay (log sampling);
            only active when the trial's optimizer is ``"adamw"``.
        augmentation: Augmentation presets (``"none"``, ``"light"``, ``"medium"``, ``"heavy"``).
        loss: Loss names accepted by :func:`xraykit.losses.get_loss`.
        batch_size: Choices of the mini-batch size.
        batch_norm: Whether the nets use batch normalization (a choice list to tune it).

    Raises:
        ValueError: If a range is not a number or a ``(low, high)`` pair, or a log-sampled
            range does not lie above 0.

    Example::

        space = SearchSpace.named("tiny").replace(learning_rate=(1e-4, 1e-2))
        hypermodel = XRayHyperModel.for_data(data, space)
    """

    model: Sequence[str] | str = ("small_cnn", "vgg_small", "resnet_small")
    width: Sequence[int] | int = (16, 32, 64)
    depth: Sequence[int] | int = (2, 3)
    dropout: tuple[float, float] | float = (0.0, 0.5)
    l2: tuple[float, float] | float = (1e-6, 1e-2)
    optimizer: Sequence[str] | str = ("adam", "adamw", "momentum")
    learning_rate: tuple[float, float] | float = (1e-4, 1e-2)
    weight_decay: tuple[float, float] | float = (1e-5, 1e-2)
    augmentation: Sequence[str] | str = ("none", "light", "medium")
    loss: Sequence[str] | str = ("bce", "focal")
    batch_size: Sequence[int] | int = (32, 64, 128)
    batch_norm: Sequence[bool] | bool = True

    def __post_init__(self):
        for name, sampling in _RANGES.items():
            value = getattr(self, name)
            if _is_scalar(value):
                continue
            if len(value) != 2 or value[0] > value[1]:
                raise ValueError(f"{name} must be a number or a (low, high) pair, not "
                                 f"{value!r}.")
            if sampling == "log" and value[0] <= 0:
                raise ValueError(f"{name} range {value!r} is sampled on a log scale: both ends "
                                 "must be > 0 (give 0.0 alone to switch it off).")

    @classmethod
    def named(cls, name: str) -> SearchSpace:
        """One of :data:`SEARCH_SPACES` by name.

        Raises:
            ValueError: If there is no space of that name.
        """
        if name not in SEARCH_SPACES:
            raise ValueError(f"Unknown search space {name!r}: use one of "
                             f"{', '.join(SEARCH_SPACES)}.")
        return SEARCH_SPACES[name]

    def replace(self, **changes) -> SearchSpace:
        """A copy with some entries changed (``models``/``optimizers``/``losses`` also accepted).

        Raises:
            TypeError: If an entry name is unknown.
        """
        fields = [f.name for f in dataclasses.fields(self)]
        changes = {_OLD_NAMES.get(name, name): value for name, value in changes.items()}
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise TypeError(f"Unknown search-space entry {unknown[0]!r}: use one of "
                            f"{', '.join(fields)}.")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The entries as a dict, e.g. to show as a table."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def declare(self, hp) -> dict[str, Any]:
        """Declares the space on ``hp`` and returns the trial's values.

        Args:
            hp: A ``keras_tuner.HyperParameters``.

        Returns:
            Dict of the values of this trial (``weight_decay`` is ``None`` unless the
            optimizer is AdamW).
        """
        values = {name: _choice(hp, name, getattr(self, name)) for name in _CHOICES}
        values["dropout"] = _range(hp, "dropout", self.dropout, "linear", step=0.1)
        values["l2"] = _range(hp, "l2", self.l2, "log")
        values["learning_rate"] = _range(hp, "learning_rate", self.learning_rate, "log")
        values["weight_decay"] = self._declare_weight_decay(hp, values["optimizer"])
        return values

    def _declare_weight_decay(self, hp, optimizer: str):
        optimizers = [self.optimizer] if _is_scalar(self.optimizer) else list(self.optimizer)
        if "adamw" not in optimizers:
            return None
        if len(optimizers) == 1:
            return _range(hp, "weight_decay", self.weight_decay, "log")
        with hp.conditional_scope("optimizer", ["adamw"]):
            decay = _range(hp, "weight_decay", self.weight_decay, "log")
        return decay if optimizer == "adamw" else None


#: The named search spaces (``python -m xraykit tune --space NAME``).
SEARCH_SPACES: dict[str, SearchSpace] = {
    "default": SearchSpace(),
    "tiny": SearchSpace(model="small_cnn", width=(8, 16), depth=(1, 2), dropout=(0.0, 0.3),
                        l2=(1e-5, 1e-3), optimizer=("adam", "momentum"),
                        learning_rate=(1e-3, 1e-2), augmentation="none", loss="bce",
                        batch_size=64),
}


# --------------------------------------------------------------------------------------------
# The hypermodel
# --------------------------------------------------------------------------------------------
class XRayHyperModel(keras_tuner.HyperModel):
    """The model of a trial drawn from a :class:`SearchSpace`, built as a lesson builds it.

    The network comes from :func:`xraykit.models.build_model` and is compiled by
    :func:`xraykit.training.compile_model`, so a trial is exactly the model a lesson would train
    by hand.

    Args:
        input_shape: Image shape ``(H, W, 1)``.
        task: ``"binary"``, ``"multilabel"`` or ``"multiclass"``.
        num_classes: Outputs (1 for binary).
        search_space: A :class:`SearchSpace` or the name of one in :data:`SEARCH_SPACES`.
        class_weight: ``"balanced"`` (weights from the training labels, resolved by
            :func:`xraykit.losses.class_weight_for_fit`), ``None`` or a dict, passed to ``fit``.
        y_train: Training labels, given to losses that need class frequencies.
        seed: Seed of weight initialization and augmentation.
        name: Name of the hypermodel.
        **changes: Entries of the space to change (see :meth:`SearchSpace.replace`), e.g.
            ``XRayHyperModel(width=(8, 16), optimizers=("adam", "adamw"))``.

    Raises:
        ValueError: On an unknown task, space name or ``class_weight`` name, or a bad range.
        TypeError: On an unknown entry of the space.
    """

    def __init__(self, input_shape: Sequence[int] = (28, 28, 1), task: str = "binary",
                 num_classes: int = 1, search_space: SearchSpace | str = "default",
                 class_weight: str | dict | None = "balanced",
                 y_train: np.ndarray | None = None, seed: int = 0,
                 name: str = "xray_hypermodel", **changes):
        super().__init__(name=name, tunable=True)
        check_task(task)
        if isinstance(search_space, str):
            search_space = SearchSpace.named(search_space)
        self.search_space = search_space.replace(**changes) if changes else search_space
        class_weight_for_fit(class_weight, None)  # a misspelt name fails here, not per trial
        self.input_shape = tuple(int(s) for s in input_shape)
        self.task = task
        self.num_classes = int(num_classes)
        self.class_weight = class_weight
        self.y_train = y_train
        self.seed = int(seed)

    @classmethod
    def for_data(cls, data, search_space: SearchSpace | str = "default",
                 **options) -> XRayHyperModel:
        """Makes the hypermodel for a dataset (shape, task, classes and training labels).

        Args:
            data: An :class:`~xraykit.datasets.XRayDataset`.
            search_space: A :class:`SearchSpace` or the name of one.
            **options: Other arguments of the class (changes of the space included).

        Returns:
            The hypermodel.
        """
        options.setdefault("input_shape", data.image_shape)
        options.setdefault("task", data.task)
        options.setdefault("num_classes", 1 if data.task == "binary" else data.num_classes)
        options.setdefault("y_train", data.y_train)
        return cls(search_space=search_space, **options)

    @property
    def space(self) -> dict[str, Any]:
        """The search space as a dict: hyperparameter name → fixed value or set searched."""
        return self.search_space.as_dict()

    def declare(self, hp) -> dict[str, Any]:
        """Declares the space on ``hp``; the trial's values (:meth:`SearchSpace.declare`)."""
        return self.search_space.declare(hp)

    # -- keras_tuner.HyperModel API --------------------------------------------------------
    def build(self, hp) -> keras.Model:
        """Builds and compiles the trial's model.

        Args:
            hp: The trial's ``keras_tuner.HyperParameters``.

        Returns:
            A compiled ``keras.Model`` (metrics include ``auc``).
        """
        v = self.declare(hp)
        model = models.build_model(
            v["model"], input_shape=self.input_shape, task=self.task,
            num_classes=self.num_classes, dropout=v["dropout"], l2=v["l2"],
            batch_norm=bool(v["batch_norm"]),
            augmentation=None if v["augmentation"] in (None, "none") else v["augmentation"],
            width=int(v["width"]), depth=int(v["depth"]), seed=self.seed,
        )
        loss = None if v["loss"] is None else get_loss(v["loss"], y_train=self.y_train)
        training.compile_model(
            model, task=self.task, optimizer=v["optimizer"], learning_rate=v["learning_rate"],
            loss=loss, num_classes=self.num_classes, weight_decay=v["weight_decay"],
        )
        return model

    def fit(self, hp, model, *args, **kwargs):
        """Trains the trial's model: ``model.fit`` with the trial's batch size.

        Args:
            hp: The trial's hyperparameters.
            model: The model from :meth:`build`.
            *args: Passed to ``model.fit`` (``x, y``).
            **kwargs: Passed to ``model.fit`` (``validation_data``, ``epochs``,
                ``callbacks``, ...). ``batch_size`` and ``class_weight`` come from the
                trial unless given here.

        Returns:
            The ``keras.callbacks.History``.
        """
        batch_size = _choice(hp, "batch_size", self.search_space.batch_size)
        kwargs.setdefault("batch_size", int(batch_size))
        if "class_weight" not in kwargs:
            y = args[1] if len(args) > 1 else kwargs.get("y")
            kwargs["class_weight"] = class_weight_for_fit(self.class_weight, y, self.task,
                                                          model.loss)
        return model.fit(*args, **kwargs)


def tiny_hypermodel(data, **options) -> XRayHyperModel:
    """The hypermodel of the ``"tiny"`` space (seconds per trial: tests, CI, smoke runs).

    Args:
        data: The dataset.
        **options: Other arguments of :class:`XRayHyperModel` (changes of the space included).

    Returns:
        An :class:`XRayHyperModel` over ``small_cnn`` with 8-16 filters, 1-2 blocks.
    """
    return XRayHyperModel.for_data(data, "tiny", **options)


# --------------------------------------------------------------------------------------------
# Tuners
# --------------------------------------------------------------------------------------------
class _TrialLog:
    """Mixin: writes one JSON line per trial this tuner ran (tuner id, status, seconds)."""

    def on_trial_begin(self, trial):
        self._xraykit_started = time.perf_counter()
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        seconds = time.perf_counter() - getattr(self, "_xraykit_started", time.perf_counter())
        record = {"trial_id": trial.trial_id, "tuner_id": self.tuner_id,
                  "status": trial.status, "seconds": round(seconds, 3),
                  "pid": os.getpid(), "message": _cause(trial.message)}
        path = pathlib.Path(self.project_dir) / f"{TRIAL_LOG_PREFIX}{self.tuner_id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        super().on_trial_end(trial)


class RandomSearch(_TrialLog, keras_tuner.RandomSearch):
    """``keras_tuner.RandomSearch`` that logs which process ran each trial and how long."""


class Hyperband(_TrialLog, keras_tuner.Hyperband):
    """``keras_tuner.Hyperband`` that logs which process ran each trial and how long."""


class BayesianOptimization(_TrialLog, keras_tuner.BayesianOptimization):
    """``keras_tuner.BayesianOptimization`` that logs which process ran each trial."""


def _is_distributed_worker() -> bool:
    return ("KERASTUNER_ORACLE_IP" in os.environ
            and "chief" not in os.environ.get("KERASTUNER_TUNER_ID", ""))


def make_tuner(kind: str, hypermodel, profile=None, directory: str | os.PathLike = "tuning",
               project_name: str | None = None, overwrite: bool = True, seed: int = 0,
               objective=DEFAULT_OBJECTIVE, max_trials: int | None = None,
               max_epochs: int | None = None, **kwargs):
    """Makes a KerasTuner tuner sized by a run profile.

    Budgets: RandomSearch and BayesianOptimization run ``profile.tuner_trials`` trials
    (Bayesian starts from ``max(2, trials // 2)`` random points, then fits its Gaussian
    process). Hyperband trains up to ``max(2, profile.tuner_epochs)`` epochs with factor 3,
    capped at the same number of trials, so the three tuners compare on one trial budget
    (Hyperband's trials are cheaper: most stop after a few epochs).

    Args:
        kind: ``"random"``, ``"hyperband"`` or ``"bayesian"``.
        hypermodel: An :class:`XRayHyperModel` (or any ``keras_tuner.HyperModel``).
        profile: Run profile (name or object; ``None`` reads ``XRAYKIT_PROFILE``).
        directory: Folder of the search's files.
        project_name: Sub-folder of this search (default ``"<kind>"``).
        overwrite: Start afresh (else resume a search found there). Workers of a distributed
            search never overwrite (the chief does).
        seed: Seed of the tuner's sampling.
        objective: ``(name, "max"|"min")``, a name, or a ``keras_tuner.Objective``.
        max_trials: Overrides the profile's number of trials.
        max_epochs: Overrides Hyperband's largest number of epochs.
        **kwargs: Passed to the tuner (e.g. ``executions_per_trial``,
            ``distribution_strategy`` under TensorFlow, ``max_consecutive_failed_trials``).

    Returns:
        The tuner (a subclass of the KerasTuner class that logs trial times and workers).

    Raises:
        ValueError: If ``kind`` is unknown.
    """
    from xraykit.profiles import get_profile

    kind = str(kind).lower()
    if kind not in KINDS:
        raise ValueError(f"Unknown tuner kind {kind!r}: use one of {', '.join(KINDS)}.")
    profile = get_profile(profile)
    if isinstance(objective, (tuple, list)):
        objective = keras_tuner.Objective(objective[0], direction=objective[1])
    trials = int(max_trials or profile.tuner_trials)
    common = dict(hypermodel=hypermodel, objective=objective, seed=seed,
                  directory=str(directory), project_name=project_name or kind,
                  overwrite=bool(overwrite) and not _is_distributed_worker())
    common.update(kwargs)
    if kind == "random":
        return RandomSearch(max_trials=trials, **common)
    if kind == "bayesian":
        common.setdefault("num_initial_points", max(2, trials // 2))
        return BayesianOptimization(max_trials=trials, **common)
    common.setdefault("factor", 3)
    tuner = Hyperband(max_epochs=int(max_epochs or max(2, profile.tuner_epochs)), **common)
    if not _is_distributed_worker():
        tuner.oracle.max_trials = trials  # same trial budget as the other tuners
    return tuner


# --------------------------------------------------------------------------------------------
# Running and reading a search
# --------------------------------------------------------------------------------------------
def _cause(message: str | None) -> str:
    """The last meaningful lines of a trial's traceback (the exception itself)."""
    if not message:
        return ""
    lines = [line for line in str(message).strip().splitlines() if line.strip()]
    for i in range(len(lines) - 1, -1, -1):
        if not lines[i].startswith(" ") and ("Error" in lines[i] or "Exception" in lines[i]):
            return "\n".join(lines[i:])[:2000]
    return "\n".join(lines[-3:])[:2000]


def _split_data(data):
    if hasattr(data, "x_train"):
        return data.x_train, data.y_train, (data.x_val, data.y_val)
    if isinstance(data, (tuple, list)) and len(data) == 4:
        return data[0], data[1], (data[2], data[3])
    raise TypeError("data must be an XRayDataset or (x_train, y_train, x_val, y_val); "
                    f"got {type(data).__name__}.")


def _logged_trials(project_dir) -> list[dict]:
    records = []
    for path in sorted(pathlib.Path(project_dir).glob(f"{TRIAL_LOG_PREFIX}*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                records.append(json.loads(line))
    return records


def check_trials(tuner, max_failed: int = 0) -> tuple[int, list[tuple[str, str]]]:
    """Checks the status of every trial of a search and raises when trials failed.

    Args:
        tuner: A tuner after ``search`` (a distributed worker checks the trials it ran).
        max_failed: Failed trials tolerated.

    Returns:
        ``(completed, failures)``.

    Raises:
        TrialsFailedError: If more than ``max_failed`` trials failed, or none completed.
    """
    oracle = tuner.oracle
    if hasattr(oracle, "trials"):
        statuses = [(t.trial_id, t.status, t.message) for t in oracle.trials.values()]
    else:  # a distributed worker: its own trials, from its log
        mine = [r for r in _logged_trials(tuner.project_dir) if r["tuner_id"] == tuner.tuner_id]
        statuses = [(r["trial_id"], r["status"], r["message"]) for r in mine]
        if not statuses:  # the other workers took the whole budget: nothing to check here
            return 0, []
    failures = [(tid, _cause(msg)) for tid, status, msg in statuses if status in FAILED_STATUSES]
    completed = sum(1 for _, status, _ in statuses if status == "COMPLETED")
    if len(failures) > max_failed or (statuses and completed == 0) or not statuses:
        if not statuses:
            text = "the search ran no trial (is max_trials 0, or was the search resumed " \
                   "from a finished project? pass overwrite=True)."
        else:
            trial_id, cause = failures[0] if failures else ("?", "")
            text = (f"{len(failures)} of {len(statuses)} trials failed ({completed} completed). "
                    f"Cause (trial {trial_id}):\n{cause or 'no message recorded'}\n"
                    "Fix the cause and run the search again with overwrite=True.")
        raise TrialsFailedError(f"Hyperparameter search failed: {text}", failures, completed)
    return completed, failures


def run_search(tuner, data, epochs: int | None = None, profile=None, callbacks=None,
               verbose: int = 0, max_failed: int = 0, **fit_kwargs):
    """Runs a search: trains on ``train``, judges on ``val``, and checks every trial.

    Args:
        tuner: From :func:`make_tuner`.
        data: An :class:`~xraykit.datasets.XRayDataset` (its test split is not used), or
            ``(x_train, y_train, x_val, y_val)``.
        epochs: Epochs per trial (default: the profile's ``tuner_epochs``; Hyperband sets
            its own).
        profile: Run profile (name or object).
        callbacks: Extra Keras callbacks for every trial (deep-copied per trial).
        verbose: Keras verbosity of the trials.
        max_failed: Failed trials tolerated before raising.
        **fit_kwargs: Passed to ``model.fit`` through :meth:`XRayHyperModel.fit`.

    Returns:
        The results as a ``pandas.DataFrame`` (see :func:`results_frame`); a distributed worker
        returns the rows of its own trials.

    Raises:
        TrialsFailedError: If trials failed (with the cause of the first), or none ran.
    """
    from xraykit.profiles import get_profile

    profile = get_profile(profile)
    x, y, validation = _split_data(data)
    epochs = int(epochs or profile.tuner_epochs)
    try:
        with warnings.catch_warnings():
            # Hyperband continues a trial from an earlier trial's checkpoint, which holds that
            # trial's optimizer state; the new trial's optimizer is not built yet, so Keras skips
            # those variables (the optimizer restarts, as KerasTuner intends) and says so.
            warnings.filterwarnings("ignore", "Skipping variable loading for optimizer",
                                    UserWarning)
            tuner.search(x, y, validation_data=validation, epochs=epochs,
                         callbacks=list(callbacks or []), verbose=verbose, **fit_kwargs)
    except RuntimeError as err:  # KerasTuner's own stop after consecutive failures
        if "consecutive failures" not in str(err):
            raise
        failures = [(t.trial_id, _cause(t.message)) for t in tuner.oracle.trials.values()
                    if t.status in FAILED_STATUSES]
        raise TrialsFailedError(
            f"Hyperparameter search failed: {len(failures)} trials failed in a row. Cause:\n"
            f"{_cause(str(err))}", failures, 0) from err
    check_trials(tuner, max_failed=max_failed)
    return results_frame(tuner)


def load_trials(project_dir: str | os.PathLike) -> list[keras_tuner.engine.trial.Trial]:
    """Reads the trials of a search from its folder (e.g. after a distributed search).

    Args:
        project_dir: ``<directory>/<project_name>`` of the search.

    Returns:
        The trials, in id order.

    Raises:
        FileNotFoundError: If the folder holds no ``trial_*/trial.json``.
    """
    from keras_tuner.engine import trial as trial_module

    paths = sorted(pathlib.Path(project_dir).glob("trial_*/trial.json"))
    if not paths:
        raise FileNotFoundError(f"{project_dir}: no trial_*/trial.json here; is it the "
                                "<directory>/<project_name> folder of a search?")
    return [trial_module.Trial.load(str(p)) for p in paths]


def results_frame(tuner_or_dir, metrics: Sequence[str] | None = ("auc", "val_accuracy")):
    """One row per trial: id, status, score, seconds, worker and hyperparameter values.

    Args:
        tuner_or_dir: A tuner (local or distributed chief) or a search folder
            ``<directory>/<project_name>``.
        metrics: Tracked metrics to add as ``best_<name>`` columns (their best value over the
            trial's epochs); ``None`` adds every tracked metric.

    Returns:
        A ``pandas.DataFrame`` with columns ``trial_id, status, score, best_step, seconds,
        tuner_id, error, epochs_trained``, the hyperparameters (one column each, ``NaN`` where
        inactive) and ``best_<metric>`` columns, in trial order. ``seconds`` and ``tuner_id``
        come from the trial log of xraykit's tuner classes (NaN and None for a plain KerasTuner
        tuner); ``epochs_trained`` is the epochs a Hyperband trial ran (``tuner/epochs`` minus
        ``tuner/initial_epoch``), NaN for the other tuners, whose trials all run the
        ``epochs`` given to ``search``. ``score`` is the objective (val AUC).
    """
    import pandas as pd

    if isinstance(tuner_or_dir, (str, os.PathLike)):
        project_dir = pathlib.Path(tuner_or_dir)
        trials = load_trials(project_dir)
    else:
        project_dir = pathlib.Path(tuner_or_dir.project_dir)
        oracle = tuner_or_dir.oracle
        trials = (list(oracle.trials.values()) if hasattr(oracle, "trials")
                  else load_trials(project_dir))
    log = {r["trial_id"]: r for r in _logged_trials(project_dir)}
    rows = []
    for trial in trials:
        row = {"trial_id": trial.trial_id, "status": trial.status,
               "score": np.nan if trial.score is None else float(trial.score),
               "best_step": trial.best_step,
               "seconds": log.get(trial.trial_id, {}).get("seconds", np.nan),
               "tuner_id": log.get(trial.trial_id, {}).get("tuner_id"),
               "error": _cause(trial.message).splitlines()[-1] if trial.message else ""}
        values = trial.hyperparameters.values
        row["epochs_trained"] = (values["tuner/epochs"] - values.get("tuner/initial_epoch", 0)
                                 if "tuner/epochs" in values else np.nan)
        row.update(values)
        for name in sorted(trial.metrics.metrics):
            if metrics is not None and name not in metrics:
                continue
            best = trial.metrics.get_best_value(name)
            row[f"best_{name}"] = np.nan if best is None else float(best)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if len(frame):
        frame = frame.sort_values("trial_id", kind="stable").reset_index(drop=True)
    return frame


def best_config(tuner) -> dict[str, Any]:
    """The best trial's hyperparameter values (Hyperband's bookkeeping entries removed).

    Args:
        tuner: A tuner after its search.

    Returns:
        Dict of hyperparameter name to value.
    """
    best = tuner.get_best_hyperparameters(1)
    if not best:
        raise TrialsFailedError("No completed trial: nothing to pick the best from.", [], 0)
    return {k: v for k, v in best[0].values.items() if not k.startswith("tuner/")}


if __name__ == "__main__":  # pragma: no cover  (the old spelling of `python -m xraykit tune`)
    from xraykit.cli import main as _cli_main  # an entry point: run, never imported

    sys.exit(_cli_main(["tune", *sys.argv[1:]]))
