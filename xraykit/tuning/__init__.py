r"""Hyperparameter search with KerasTuner (lesson 6): search spaces, tuners, results.

* :mod:`xraykit.tuning.space`: :class:`SearchSpace` (what a search varies; the named ones in
  :data:`SEARCH_SPACES`) and :class:`XRayHyperModel`, the ``keras_tuner.HyperModel`` that
  builds a trial's model as a lesson would;
* :mod:`xraykit.tuning.search`: :func:`make_tuner`, :func:`run_search` (which raises
  :class:`TrialsFailedError` with the cause when trials failed), :func:`results_frame`.

The same search runs from the command line, as one process or distributed with KerasTuner's
chief/worker mode (``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT`` give each process its role; ``--workers`` starts them here)::

    python -m xraykit tune --kind random --directory runs/tuning --project-name demo \
        --profile smoke --space tiny --workers 2

(``python -m xraykit.tuning ...`` is its old spelling and still works.)
"""

try:
    import keras_tuner  # noqa: F401  (checked here, with what to install)
except ImportError as _err:  # pragma: no cover - depends on the install
    raise ImportError(
        "xraykit.tuning needs KerasTuner: pip install 'xraykit[tuning]' "
        "(keras-tuner and tensorboard)."
    ) from _err

from xraykit.tuning.search import (
    DEFAULT_CHIEF_TIMEOUT,
    DEFAULT_OBJECTIVE,
    FAILED_STATUSES,
    KINDS,
    TRIAL_LOG_PREFIX,
    BayesianOptimization,
    ChiefUnreachableError,
    Hyperband,
    RandomSearch,
    SearchStateError,
    TrialsFailedError,
    best_config,
    check_search_state,
    check_trials,
    load_trials,
    make_tuner,
    results_frame,
    run_search,
)
from xraykit.tuning.space import SEARCH_SPACES, SearchSpace, XRayHyperModel, tiny_hypermodel

__all__ = [
    "DEFAULT_CHIEF_TIMEOUT", "DEFAULT_OBJECTIVE", "FAILED_STATUSES", "KINDS", "SEARCH_SPACES",
    "TRIAL_LOG_PREFIX", "BayesianOptimization", "ChiefUnreachableError", "Hyperband",
    "RandomSearch", "SearchSpace", "SearchStateError", "TrialsFailedError", "XRayHyperModel",
    "best_config", "check_search_state", "check_trials", "load_trials", "make_tuner",
    "results_frame", "run_search", "tiny_hypermodel",
]
