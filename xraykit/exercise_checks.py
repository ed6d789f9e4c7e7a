"""The exercises that can be checked automatically, and the checks: lesson, exercise → check.

Each :class:`Check` names the variable the exercise's solution cell defines (so the instructor
edition passes as it is) and a function that judges its value in the notebook's namespace. The
student edition sets that variable to ``None`` in the answer cell: an empty answer is reported as
"not answered yet" by the check cell (which never raises) and counted as failed by the grader.
Exercises that are questions, or whose result is a table to read, have no check.

Checks run inside the lesson's kernel; they import Keras-dependent modules lazily.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

#: The MIME type of a check result in a notebook's outputs (read by :mod:`xraykit.grading`).
RESULT_MIME = "application/vnd.xraykit.exercise-check+json"
PASSED, FAILED, NOT_ANSWERED, SKIPPED = "passed", "failed", "not answered", "skipped"
MANUAL = "manual"


class Skip(Exception):
    """Raised by a check that cannot judge in this run (its sample data is absent)."""


@dataclasses.dataclass(frozen=True)
class Check:
    """How one exercise is checked.

    Attributes:
        lesson: Two-digit lesson prefix.
        number: Exercise number.
        variable: The name the answer (and the instructor's solution) defines.
        asks: One line telling the student what to put in ``variable``.
        judge: ``judge(value, namespace)`` raises ``AssertionError`` with a message saying what
            is wrong, :class:`Skip` when it cannot judge, and returns a message when right.
    """

    lesson: str
    number: int
    variable: str
    asks: str
    judge: Callable


def answer_variable(lesson: str, number: int) -> str:
    """The answer variable of an exercise without a check, e.g. ``answer_4_1``.

    Args:
        lesson: Two-digit lesson prefix.
        number: Exercise number.

    Returns:
        The variable's name.
    """
    return f"answer_{int(lesson)}_{number}"


def _need(namespace: dict, *names: str) -> list:
    missing = [name for name in names if name not in namespace]
    if missing:
        raise AssertionError(f"run the lesson's cells above first ({', '.join(missing)} "
                             "not defined)")
    return [namespace[name] for name in names]


def _mono1(namespace: dict):
    (folder,) = _need(namespace, "DICOMS")
    if folder is None:
        raise Skip("needs the DICOM samples (set XRAYKIT_DATA to the course's data folder)")
    return folder / "cr_mono1_10bit_chest_nometa.dcm"


def _lesson00_window(ours, namespace):
    import numpy as np

    import xraykit

    mono1 = _mono1(namespace)
    (window,) = _need(namespace, "window")
    assert np.ndim(window) == 1 and len(window) == 2, \
        "set window = (centre, width), the window you chose"
    assert 0 <= window[0] <= 1023 and 0 < window[1] <= 1024, \
        f"window {tuple(window)}: choose a centre in 0..1023 and a width in 1..1024 (10 bits)"
    expected = xraykit.read_dicom(mono1, window=tuple(window))
    assert np.shape(ours) == expected.shape, \
        f"ours has shape {np.shape(ours)}, the image {expected.shape}"
    difference = float(np.abs(np.asarray(ours, dtype=np.float64) - expected).max())
    assert difference <= 1e-6, f"ours differs from read_dicom(window={tuple(window)}) by up " \
                               f"to {difference:.3g}"
    return f"dicom_to_unit and read_dicom agree for window {tuple(window)}"


def _lesson01_group_folds(validated, namespace):
    import numpy as np

    (patient_ids,) = _need(namespace, "patient_ids")
    validated = np.sort(np.asarray(validated).ravel())
    patients = np.unique(patient_ids)
    assert len(validated) == len(patients), \
        f"{len(validated)} patients validated, the data has {len(patients)}: each exactly once"
    assert np.array_equal(validated, patients), "some patients are validated twice or never"
    return f"all {len(patients)} patients validated exactly once"


def _lesson01_window_model(windowed, namespace):
    import keras
    import numpy as np

    from xraykit import preprocessing

    batch, tol = _need(namespace, "batch", "TOL")
    assert isinstance(windowed, keras.Model), "windowed should be a keras model"
    first = keras.ops.convert_to_numpy(windowed.layers[0](batch)).astype("float32")
    expected = np.asarray(preprocessing.window(batch, 0.4, 0.5))
    assert first.shape == expected.shape and np.allclose(first, expected, atol=tol), \
        "the first layer of windowed does not give pp.window(batch, 0.4, 0.5)"
    return "the first layer windows the images"


def _lesson02_sensitivity_threshold(t95, namespace):
    from xraykit import evaluation

    data, scores = _need(namespace, "data", "val_scores_final")
    sensitivity = evaluation.binary_metrics(data.y_val, scores, float(t95))["sensitivity"]
    assert sensitivity >= 0.95, \
        f"at t95 = {float(t95):.3f} the selection split's sensitivity is {sensitivity:.3f} < 0.95"
    return f"sensitivity on the selection split at t95: {sensitivity:.3f}"


def _lesson03_prior_bias(ml_bias, namespace):
    import numpy as np

    (y_hidden,) = _need(namespace, "y_hidden")
    y = np.asarray(y_hidden, dtype=np.float64)
    known = ~np.isnan(y)
    positives, negatives = (np.where(known, y == 1, False).sum(0),
                            np.where(known, y == 0, False).sum(0))
    expected = np.log(positives / negatives)
    got = np.asarray(ml_bias, dtype=np.float64).ravel()
    assert got.shape == expected.shape, f"ml_bias has {got.size} values; one per label " \
                                        f"({expected.size})"
    assert np.allclose(got, expected, atol=1e-4), \
        "ml_bias is not log(positives / negatives) over the known labels of each column"
    return "one prior logit per label, over the known labels"


def _lesson04_nesterov(nesterov_path, namespace):
    import numpy as np

    from xraykit import optimizers

    assert callable(nesterov_path), "nesterov_path should be a function"
    gradient, start = _need(namespace, "bowl_gradient", "START")
    ours = np.asarray(nesterov_path(gradient, start, 0.01))
    keras_path = optimizers.optimizer_trajectory("nesterov", "ill_conditioned", steps=60,
                                                 learning_rate=0.01)
    assert ours.shape == keras_path.shape, \
        f"the path has shape {ours.shape}; Keras' has {keras_path.shape} (start + 60 steps)"
    assert np.allclose(ours, keras_path, rtol=1e-3, atol=1e-4), \
        "the path leaves Keras' SGD(nesterov=True) path"
    return "your Nesterov path follows keras.optimizers.SGD(nesterov=True)"


def _lesson06_loss_choice(build_model_with_loss, namespace):
    import keras
    import keras_tuner

    assert callable(build_model_with_loss), "build_model_with_loss should be a function of hp"
    expected = {"focal": keras.losses.BinaryFocalCrossentropy,
                "bce": keras.losses.BinaryCrossentropy}
    for choice, kind in expected.items():
        hp = keras_tuner.HyperParameters()
        hp.Fixed("loss", choice)
        model = build_model_with_loss(hp)
        assert isinstance(model.loss, kind), \
            f"with loss={choice!r} the model's loss is {type(model.loss).__name__}, " \
            f"not {kind.__name__}"
    return "the loss follows the hyperparameter 'loss'"


def _lesson07_specificity_threshold(t_spec, namespace):
    from xraykit import evaluation

    y_val, p_val = _need(namespace, "y_val", "p_val")
    specificity = evaluation.binary_metrics(y_val, p_val, float(t_spec))["specificity"]
    assert specificity >= 0.9, \
        f"at t_spec = {float(t_spec):.3f} the validation specificity is {specificity:.3f} < 0.9"
    return f"validation specificity at t_spec: {specificity:.3f}"


CHECKS = [
    Check("00", 1, "ours", "Set window = (centre, width) and ours = dicom_to_unit(mono1, window).",
          _lesson00_window),
    Check("01", 2, "validated", "Collect every fold's validation patient ids in validated.",
          _lesson01_group_folds),
    Check("01", 3, "windowed", "Build windowed = keras.Sequential([...]).",
          _lesson01_window_model),
    Check("02", 3, "t95", "Set t95 to the threshold you chose.",
          _lesson02_sensitivity_threshold),
    Check("03", 4, "ml_bias", "Set ml_bias to the prior logits, one per label.",
          _lesson03_prior_bias),
    Check("04", 2, "nesterov_path",
          "Define nesterov_path(grad, start, learning_rate, momentum=0.9, steps=60).",
          _lesson04_nesterov),
    Check("06", 1, "build_model_with_loss", "Define build_model_with_loss(hp).",
          _lesson06_loss_choice),
    Check("07", 2, "t_spec", "Set t_spec to the threshold for specificity 0.9.",
          _lesson07_specificity_threshold),
]


def find_check(lesson: str, number: int) -> Check | None:
    """The check of one exercise.

    Args:
        lesson: Two-digit lesson prefix.
        number: Exercise number.

    Returns:
        The :class:`Check`, or ``None`` when the exercise is not checked automatically.
    """
    return next((c for c in CHECKS if c.lesson == lesson and c.number == number), None)


def lesson_checks(lesson: str) -> list[Check]:
    """The checks of one lesson, in exercise order.

    Args:
        lesson: Two-digit lesson prefix.

    Returns:
        Its checks (possibly none).
    """
    return sorted((c for c in CHECKS if c.lesson == lesson), key=lambda c: c.number)


def run_check(check: Check, namespace: dict) -> dict:
    """Judges one answer; never raises.

    Args:
        check: The exercise's check.
        namespace: The notebook's globals.

    Returns:
        ``{"lesson", "exercise", "variable", "status", "message"}`` with status ``passed``,
        ``failed``, ``not answered`` or ``skipped``.
    """
    result = {"lesson": check.lesson, "exercise": check.number, "variable": check.variable}
    value = namespace.get(check.variable)
    if value is None:
        return {**result, "status": NOT_ANSWERED,
                "message": f"not answered yet: {check.variable} is not set. {check.asks}"}
    try:
        message = check.judge(value, namespace)
        status = PASSED
    except Skip as skip:
        status, message = SKIPPED, str(skip)
    except AssertionError as error:
        status, message = FAILED, str(error) or "the answer does not pass the check"
    except Exception as error:  # the student's code raised inside the check
        status, message = FAILED, f"{type(error).__name__} while checking: {error}"
    return {**result, "status": status, "message": message}


def _show(results: list[dict]) -> None:
    """Displays results as text for the reader and as JSON for the grader."""
    text = "\n".join(f"exercise {int(r['lesson'])}.{r['exercise']}: {r['status']}: "
                     f"{r['message']}" for r in results) or "no checked exercise in this lesson"
    try:
        from IPython.display import display

        display({"text/plain": text, RESULT_MIME: {"results": results}}, raw=True)
    except ImportError:
        print(text)


def check_exercise(lesson: str, number: int, namespace: dict) -> dict:
    """The check cell's call: judges one answer and shows the result (never raises).

    Args:
        lesson: Two-digit lesson prefix.
        number: Exercise number.
        namespace: The notebook's ``globals()``.

    Returns:
        The result of :func:`run_check`.

    Raises:
        KeyError: If the exercise has no check.
    """
    check = find_check(lesson, number)
    if check is None:
        raise KeyError(f"lesson {lesson}, exercise {number} has no automatic check "
                       "(xraykit.exercise_checks.CHECKS lists them)")
    result = run_check(check, namespace)
    _show([result])
    return result


def check_lesson(lesson: str, namespace: dict, unchecked: tuple[int, ...] = ()) -> list[dict]:
    """Judges every checked exercise of a lesson and shows the results (the grader's cell).

    Args:
        lesson: Two-digit lesson prefix.
        namespace: The notebook's ``globals()``.
        unchecked: Numbers of the lesson's exercises without a check: each gets a ``manual``
            result saying whether its answer variable (``answer_L_N``) was set, ``unknown``
            when the notebook has no such variable (the instructor edition).

    Returns:
        One result per check, then one per unchecked exercise.
    """
    results = [run_check(check, namespace) for check in lesson_checks(lesson)]
    for number in unchecked:
        name = answer_variable(lesson, number)
        answered = "unknown" if name not in namespace else namespace[name] is not None
        results.append({"lesson": lesson, "exercise": number, "variable": name,
                        "status": MANUAL, "answered": answered,
                        "message": "not checked automatically"})
    _show(results)
    return results
