"""Running and reading a KerasTuner search: tuners that log their trials, failures, results.

:func:`make_tuner` makes a RandomSearch, Hyperband or BayesianOptimization tuner sized by a run
profile; :func:`run_search` runs it on an :class:`~xraykit.datasets.XRayDataset` (train on
``train``, judge on ``val``; the test split is never touched) and raises
:class:`TrialsFailedError` with the cause when trials failed. KerasTuner 1.4.8 does not: a
search with fewer failed trials than ``max_consecutive_failed_trials`` "finishes" and
returns no usable result. :func:`results_frame` turns a search (local, or distributed and read
from its folder) into a pandas table.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import time
import warnings
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import keras_tuner
import numpy as np

from xraykit import files
from xraykit.checks import check_count, check_folder_name, check_positive
from xraykit.training import check_training_data

KINDS = ("random", "hyperband", "bayesian")
DEFAULT_OBJECTIVE = ("val_auc", "max")
TRIAL_LOG_PREFIX = "trials_"
FAILED_STATUSES = ("FAILED", "INVALID")
#: Seconds a worker of a distributed search waits for an answer from the chief.
DEFAULT_CHIEF_TIMEOUT = 60.0

__all__ = [
    "DEFAULT_CHIEF_TIMEOUT", "KINDS", "ChiefUnreachableError", "SearchStateError",
    "TrialsFailedError", "best_config", "check_search_state", "check_trials", "load_trials",
    "make_tuner", "results_frame", "run_search",
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


class SearchStateError(ValueError):
    """A search folder whose state files (KerasTuner's or xraykit's trial log) are damaged."""


class ChiefUnreachableError(RuntimeError):
    """A worker of a distributed search got no answer from the chief in time."""


# --------------------------------------------------------------------------------------------
# The search folder
# --------------------------------------------------------------------------------------------
def _state_error(path: pathlib.Path, project_dir: pathlib.Path, what: str) -> SearchStateError:
    return SearchStateError(
        f"{path}: {what}; the search in {project_dir} cannot be resumed. Delete the folder "
        f"{project_dir} to start the search again (or run without --no-overwrite / with "
        f"overwrite=True), or restore the file from a copy.")


def check_search_state(project_dir: str | os.PathLike) -> None:
    """Checks that the state files of a search folder can be read before it is resumed.

    The files are KerasTuner's ``oracle.json``, ``<tuner_id>.json`` and
    ``trial_*/trial.json`` and xraykit's trial log ``trials_<tuner_id>.jsonl``. A process
    killed while writing, a full disk or a hand edit leaves one truncated or empty; KerasTuner
    would then fail with a bare ``JSONDecodeError`` that names no file.

    Args:
        project_dir: ``<directory>/<project_name>`` of the search (absent: nothing to check).

    Raises:
        SearchStateError: If a state file is empty, not UTF-8, not JSON, or not a JSON object
            (a trial log line likewise); the message names the file (and line) and says what
            to do.
    """
    project_dir = pathlib.Path(project_dir)
    if not project_dir.is_dir():
        return
    documents = [*sorted(project_dir.glob("*.json")),
                 *sorted(project_dir.glob("trial_*/trial.json"))]
    for path in documents:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise _state_error(path, project_dir, f"cannot be read as JSON ({error})") from error
        if not isinstance(record, dict):
            raise _state_error(path, project_dir, "does not hold a JSON object")
    _logged_trials(project_dir)  # raises SearchStateError naming a damaged trial log


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
               max_epochs: int | None = None, chief_timeout: float = DEFAULT_CHIEF_TIMEOUT,
               **kwargs):
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
        chief_timeout: Seconds a worker of a distributed search waits for each answer of the
            chief (KerasTuner waits an hour): a worker whose chief never started or has died
            stops after this long with :class:`ChiefUnreachableError`.
        **kwargs: Passed to the tuner (e.g. ``executions_per_trial``,
            ``distribution_strategy`` under TensorFlow, ``max_consecutive_failed_trials``).

    Returns:
        The tuner (a subclass of the KerasTuner class that logs trial times and workers).

    Raises:
        ValueError: If ``kind`` is unknown, ``max_trials``/``max_epochs`` is not a whole number
            >= 1, ``project_name`` is not one folder name, or ``chief_timeout`` is not > 0.
        SearchStateError: If a search resumed (``overwrite=False``) has damaged state files
            (:func:`check_search_state`).
        OSError: If ``directory`` is a file or cannot be created or written.
        ChiefUnreachableError: If a distributed worker gets no answer from the chief.
    """
    from xraykit.profiles import get_profile

    kind = str(kind).lower()
    if kind not in KINDS:
        raise ValueError(f"Unknown tuner kind {kind!r}: use one of {', '.join(KINDS)}.")
    profile = get_profile(profile)
    if isinstance(objective, (tuple, list)):
        objective = keras_tuner.Objective(objective[0], direction=objective[1])
    trials = check_count(profile.tuner_trials if max_trials is None else max_trials,
                         "max_trials")
    epochs = check_count(max(2, profile.tuner_epochs) if max_epochs is None else max_epochs,
                         "max_epochs")
    project_name = check_folder_name(project_name or kind, "project_name", kind)
    files.check_writable(directory, "The search directory",
                         "pass a --directory (directory=) you can write to")
    overwrite = bool(overwrite) and not _is_distributed_worker()
    if not overwrite:
        check_search_state(pathlib.Path(directory) / project_name)
    common = dict(hypermodel=hypermodel, objective=objective, seed=seed,
                  directory=str(directory), project_name=project_name, overwrite=overwrite)
    common.update(kwargs)
    if kind == "hyperband":
        common.setdefault("factor", 3)
    elif kind == "bayesian":
        common.setdefault("num_initial_points", max(2, trials // 2))
    with _chief_answers(chief_timeout), _state_reload(pathlib.Path(directory) / project_name):
        if kind == "random":
            return RandomSearch(max_trials=trials, **common)
        if kind == "bayesian":
            return BayesianOptimization(max_trials=trials, **common)
        tuner = Hyperband(max_epochs=epochs, **common)
    if not _is_distributed_worker():
        tuner.oracle.max_trials = trials  # same trial budget as the other tuners
    return tuner


@contextlib.contextmanager
def _state_reload(project_dir: pathlib.Path):
    """Names the search folder when KerasTuner cannot make sense of state files it reloads."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        if isinstance(error, SearchStateError) or not project_dir.is_dir():
            raise
        raise _state_error(project_dir, project_dir,
                           f"KerasTuner could not reload its state ({error!r})") from error


@contextlib.contextmanager
def _chief_answers(chief_timeout: float):
    """Bounds a distributed worker's wait for the chief; its silence becomes a clear error.

    KerasTuner's worker asks the chief over gRPC with ``wait_for_ready`` and a one-hour
    deadline (``oracle_client.TIMEOUT``, read at each call), so a worker whose chief never came
    up, or died, hangs for an hour. Here the deadline is ``chief_timeout``.
    """
    chief_timeout = check_positive(chief_timeout, "chief_timeout",
                                   what="seconds a worker waits for the chief")
    if not _is_distributed_worker():
        yield
        return
    import grpc
    from keras_tuner.src.distribute import oracle_client

    oracle_client.TIMEOUT = chief_timeout
    try:
        yield
    except grpc.RpcError as error:
        address = (f"{os.environ.get('KERASTUNER_ORACLE_IP')}:"
                   f"{os.environ.get('KERASTUNER_ORACLE_PORT')}")
        code = getattr(error, "code", lambda: None)()
        raise ChiefUnreachableError(
            f"Worker {os.environ.get('KERASTUNER_TUNER_ID')}: no answer from the chief at "
            f"{address} within {chief_timeout:g} s ({getattr(code, 'name', code)}): the chief "
            f"never started, has died, or is not reachable there. Start the chief first "
            f"(KERASTUNER_TUNER_ID=chief), check KERASTUNER_ORACLE_IP/PORT, or raise "
            f"chief_timeout (--chief-timeout).") from None


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
    """The records of xraykit's trial logs; a damaged line raises :class:`SearchStateError`."""
    project_dir = pathlib.Path(project_dir)
    records = []
    for path in sorted(project_dir.glob(f"{TRIAL_LOG_PREFIX}*.jsonl")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise _state_error(path, project_dir, f"cannot be read ({error})") from error
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or "trial_id" not in record:
                    raise ValueError("not a trial record")
            except ValueError as error:
                raise _state_error(path, project_dir, f"line {number} is not a trial record "
                                                      f"written by xraykit ({error})") from error
            records.append(record)
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
               verbose: int = 0, max_failed: int = 0,
               chief_timeout: float = DEFAULT_CHIEF_TIMEOUT, **fit_kwargs):
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
        chief_timeout: Seconds a distributed worker waits for each answer of the chief.
        **fit_kwargs: Passed to ``model.fit`` through :meth:`XRayHyperModel.fit`.

    Returns:
        The results as a ``pandas.DataFrame`` (see :func:`results_frame`); a distributed worker
        returns the rows of its own trials.

    Raises:
        TrialsFailedError: If trials failed (with the cause of the first; a trial whose loss
            became NaN or infinite is ``FAILED``), or none ran.
        ValueError: If ``epochs`` is not a whole number >= 1, or the data is refused by
            :func:`xraykit.training.check_training_data` (NaN/inf images, one-class splits).
        ChiefUnreachableError: If a distributed worker gets no answer from the chief within
            ``chief_timeout`` seconds.
    """
    from xraykit.profiles import get_profile

    profile = get_profile(profile)
    x, y, validation = _split_data(data)
    check_training_data(SimpleNamespace(x_train=x, y_train=y, x_val=validation[0],
                                        y_val=validation[1],
                                        task=getattr(data, "task", "binary")))
    epochs = check_count(profile.tuner_epochs if epochs is None else epochs, "epochs")
    try:
        with warnings.catch_warnings():
            # Hyperband continues a trial from an earlier trial's checkpoint, which holds that
            # trial's optimizer state; the new trial's optimizer is not built yet, so Keras skips
            # those variables (the optimizer restarts, as KerasTuner intends) and says so.
            warnings.filterwarnings("ignore", "Skipping variable loading for optimizer",
                                    UserWarning)
            with _chief_answers(chief_timeout):
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
        SearchStateError: If a state file is damaged (the message names it).
    """
    from keras_tuner.engine import trial as trial_module

    paths = sorted(pathlib.Path(project_dir).glob("trial_*/trial.json"))
    if not paths:
        raise FileNotFoundError(f"{project_dir}: no trial_*/trial.json here; is it the "
                                "<directory>/<project_name> folder of a search?")
    check_search_state(project_dir)
    trials = []
    for path in paths:
        try:
            trials.append(trial_module.Trial.load(str(path)))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise _state_error(path, pathlib.Path(project_dir),
                               f"not a KerasTuner trial ({error!r})") from error
    return trials


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
