"""Checks of the numbers and arrays users pass: counts, levels, thresholds, finite arrays, classes.

Every public entry point that takes a count (epochs, trials, batch size, bootstrap resamples),
a level or a rate (a significance ``alpha`` in (0, 1), a threshold in [0, 1]), a positive scale
(a temperature) or an array that must be finite asks this module, so the same mistake gets the
same message everywhere and the message names the argument. This module imports neither Keras
nor a backend (0/1 labels with their scores are checked by :func:`xraykit.tasks.check_binary`).

Example:
    >>> check_count(3, "epochs")
    3
    >>> check_count(0, "epochs")
    Traceback (most recent call last):
    ...
    ValueError: epochs must be a whole number >= 1, not 0.
"""

from __future__ import annotations

import numbers
import os

import numpy as np

__all__ = ["check_class_indices", "check_count", "check_finite_array", "check_folder_name",
           "check_level", "check_number", "check_positive", "check_threshold"]


def check_number(value, name: str, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, what: str = "") -> float:
    """Checks that ``value`` is a finite real number inside a range.

    Args:
        value: The number to check.
        name: The argument's name, used in the message.
        low: Smallest value allowed (``None``: no lower limit).
        high: Largest value allowed (``None``: no upper limit).
        low_open: ``low`` itself is refused.
        high_open: ``high`` itself is refused.
        what: A few words on what the number means, added to the message.

    Returns:
        ``value`` as a float.

    Raises:
        ValueError: If ``value`` is not a real number, is NaN or infinite, or is out of range;
            the message names ``name`` and the range.
    """
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    span = "" if low is None and high is None else (
        f" in {left}{'-inf' if low is None else f'{low:g}'}, "
        f"{'inf' if high is None else f'{high:g}'}{right}")
    hint = f" ({what})" if what else ""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray)) or \
            np.ndim(value) != 0:
        raise ValueError(f"{name} must be a number{span}{hint}, not {value!r}.")
    number = float(value)
    below = low is not None and (number < low or (low_open and number == low))
    above = high is not None and (number > high or (high_open and number == high))
    if not np.isfinite(number) or below or above:
        raise ValueError(f"{name} must be a finite number{span}{hint}, not {value!r}.")
    return number


def check_level(value, name: str = "alpha", what: str = "") -> float:
    """Checks a significance level or a share strictly between 0 and 1 (``alpha=0.05``).

    Args:
        value: The level.
        name: The argument's name.
        what: What it means, added to the message.

    Returns:
        The level as a float.

    Raises:
        ValueError: If it is not a finite number in (0, 1).
    """
    return check_number(value, name, 0.0, 1.0, low_open=True, high_open=True, what=what)


def check_threshold(value, name: str = "threshold") -> float:
    """Checks a decision threshold on probabilities: a finite number in [0, 1].

    Args:
        value: The threshold.
        name: The argument's name.

    Returns:
        The threshold as a float.

    Raises:
        ValueError: If it is not a finite number in [0, 1].
    """
    return check_number(value, name, 0.0, 1.0,
                        what="scores >= threshold are predicted positive")


def check_positive(value, name: str, what: str = "") -> float:
    """Checks a scale that must be a finite number above 0 (a temperature, a learning rate).

    Args:
        value: The number.
        name: The argument's name.
        what: What it means, added to the message.

    Returns:
        The number as a float.

    Raises:
        ValueError: If it is not a finite number > 0.
    """
    return check_number(value, name, 0.0, None, low_open=True, what=what)


def check_count(value, name: str, minimum: int = 1) -> int:
    """Checks a count: a whole number (epochs, trials, batch size, resamples, bins).

    Args:
        value: The count; an int, or a float with no fractional part.
        name: The argument's name.
        minimum: Smallest count allowed.

    Returns:
        The count as an int.

    Raises:
        ValueError: If it is not a whole number ``>= minimum`` (booleans are refused).
    """
    whole = isinstance(value, (numbers.Integral, np.integer)) or (
        isinstance(value, (numbers.Real, np.floating)) and np.isfinite(value)
        and float(value).is_integer())
    if isinstance(value, bool) or not whole or int(value) < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, not {value!r}.")
    return int(value)


def check_finite_array(values, name: str, allow_nan: bool = False) -> np.ndarray:
    """Checks that an array is numeric, not empty and finite.

    Args:
        values: Array-like of numbers.
        name: The argument's name.
        allow_nan: NaN is allowed (it means "unknown" in label arrays); infinities never are.

    Returns:
        ``values`` as a NumPy array (unchanged dtype).

    Raises:
        ValueError: If the array is empty, not numeric, or holds infinities (or NaN unless
            ``allow_nan``); the message says how many values and where the first one is.
    """
    array = np.asarray(values)
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}): pass at least one value.")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold numbers, not values of dtype {array.dtype}.")
    if array.dtype.kind == "f":
        bad = np.isinf(array) if allow_nan else ~np.isfinite(array)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            kind = "infinite" if allow_nan else "NaN or infinite"
            raise ValueError(f"{name} holds {int(bad.sum())} {kind} value(s) (the first at "
                             f"index {first if len(first) > 1 else first[0]}): remove or "
                             f"repair them before using it.")
    return array


def check_class_indices(labels, num_classes: int, name: str = "y_true") -> np.ndarray:
    """Checks class indices of a multiclass task: whole numbers in ``0 .. num_classes - 1``.

    Args:
        labels: ``(N,)`` or ``(N, 1)`` class indices.
        num_classes: Number of classes (columns of the scores).
        name: The argument's name.

    Returns:
        The labels as a flat int array.

    Raises:
        ValueError: If a label is not a whole number or falls outside the classes; the
            message shows the values found.
    """
    values = check_finite_array(labels, name).reshape(-1)
    bad = (values != np.round(values)) | (values < 0) | (values >= num_classes)
    if bad.any():
        raise ValueError(f"{name} must hold class indices 0..{num_classes - 1} (one per "
                         f"column of the scores); found {np.unique(values[bad])[:5].tolist()}.")
    return values.astype(int)


def check_folder_name(name, argument: str, example: str = "demo") -> str:
    """Checks a name that becomes one folder inside a given folder (a search's project name).

    Args:
        name: The name.
        argument: The argument's name, used in the message (``"--project-name"``).
        example: A valid name to suggest.

    Returns:
        The name as a string.

    Raises:
        ValueError: If the name is empty, ``.`` or ``..``, or holds a path separator or a NUL
            character: it could then leave the folder it is meant to live in.
    """
    text = str(name)
    separators = {"/", "\\", os.sep, os.altsep or "/"}
    if text.strip() in ("", ".", "..") or any(s in text for s in separators) or "\0" in text:
        raise ValueError(f"{argument} {text!r} must be one folder name (no '/', '\\', '..' or "
                         f"empty name), e.g. {example!r}.")
    return text
