"""Evaluating predictions: ROC/PR curves, thresholds, confusion matrices, confidence intervals.

Every function takes plain arrays (labels and scores), so it works for any model, and uses
``sklearn.metrics`` for the numbers. Typical use (lesson 2):

>>> y_val_score = model.predict(data.x_val).ravel()
>>> t = choose_threshold(data.y_val, y_val_score, method="youden")   # chosen on validation
>>> binary_metrics(data.y_test, model.predict(data.x_test).ravel(), threshold=t)

Choose the threshold on validation data, never on the test set: a threshold tuned on the test
set makes its sensitivity and specificity optimistic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn import metrics as skm

from xraykit.checks import check_count, check_level, check_number, check_threshold
from xraykit.tasks import check_binary


def _both_classes(y_true) -> bool:
    return len(np.unique(y_true)) == 2


def predict_scores(model, x, batch_size: int = 256, tta: Sequence[str] = ()) -> np.ndarray:
    """Predicts scores, optionally averaged over simple test-time augmentations.

    Args:
        model: A Keras model taking ``(N, H, W, C)`` images.
        x: Images.
        batch_size: Prediction batch size.
        tta: Extra views to average with the original: ``"shift"`` (1-pixel shifts in the four
            directions, with edge padding) and/or ``"flip"`` (left-right; only for models
            trained with flips: chest X-rays are not left-right symmetric).

    Returns:
        Scores, ``(N,)`` for single-output models, else ``(N, K)``.

    Raises:
        ValueError: On an unknown TTA name.
    """
    x = np.asarray(x, dtype="float32")
    views = [x]
    for name in tta:
        if name == "flip":
            views.append(x[:, :, ::-1])
        elif name == "shift":
            padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
            h, w = x.shape[1:3]
            for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
                views.append(padded[:, dy:dy + h, dx:dx + w])
        else:
            raise ValueError(f"Unknown TTA view {name!r}: use 'shift' and/or 'flip'.")
    scores = np.mean([np.asarray(model.predict(v, batch_size=batch_size, verbose=0))
                      for v in views], axis=0)
    return scores[:, 0] if scores.ndim == 2 and scores.shape[1] == 1 else scores


def predict_batches(model, batches) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, scores and images of a stream of ``(images, labels)`` batches, in order.

    For a ``keras.utils.PyDataset`` such as ``load_folder(..., stream=True)``: each batch is
    read once, so the labels line up with the scores even when a file could not be read (its
    batch is shorter).

    Args:
        model: A Keras model.
        batches: A sequence of ``(images, labels)`` batches (``len`` and indexing).

    Returns:
        ``(labels, scores, images)``: labels ``(N, L)``, scores ``(N, K)``, images
        ``(N, H, W, C)`` (kept for Grad-CAM and the export checks: a test set, not a
        training set).
    """
    labels, scores, images = [], [], []
    for index in range(len(batches)):
        x, y = batches[index]
        if len(x) == 0:
            continue
        scores.append(np.asarray(model.predict_on_batch(x), dtype=np.float32))
        labels.append(np.asarray(y).reshape(len(x), -1))
        images.append(np.asarray(x, dtype=np.float32))
    return np.concatenate(labels), np.concatenate(scores), np.concatenate(images)


def confusion(y_true, y_score, threshold: float = 0.5) -> np.ndarray:
    """Confusion matrix at a threshold, rows = truth, columns = prediction, order (0, 1).

    Args:
        y_true: 0/1 labels.
        y_score: Scores or probabilities of the positive class.
        threshold: Scores ``>= threshold`` are predicted positive.

    Returns:
        ``[[tn, fp], [fn, tp]]`` as a 2x2 int array.

    Raises:
        ValueError: On labels or scores :func:`xraykit.tasks.check_binary` refuses, or a
            threshold that is not a number in [0, 1].
    """
    y_true, y_score = check_binary(y_true, y_score)
    threshold = check_threshold(threshold)
    return skm.confusion_matrix(y_true, (y_score >= threshold).astype(int), labels=[0, 1])


def binary_metrics(y_true, y_score, threshold: float = 0.5) -> dict[str, float]:
    """The usual binary metrics at one threshold.

    Args:
        y_true: 0/1 labels, any shape with one value per image (NaN = unknown, skipped).
        y_score: Scores of the positive class, same number of values.
        threshold: Scores ``>= threshold`` are predicted positive.

    Returns:
        ``auc`` (ROC AUC), ``ap`` (average precision), ``accuracy``, ``sensitivity`` (recall,
        TPR), ``specificity`` (TNR), ``precision`` (PPV), ``npv``, ``f1``, ``tp``, ``fp``,
        ``tn``, ``fn``, ``threshold``, ``n``. AUC and AP are NaN when only one class is present,
        a rate is NaN when its denominator is 0 (PPV with no image predicted positive):
        :func:`metric_text` and :func:`why_undefined` say why.

    Raises:
        ValueError: On mismatched sizes, non-binary labels or NaN/infinite scores
            (:func:`xraykit.tasks.check_binary`), or a threshold outside [0, 1].
    """
    y_true, y_score = check_binary(y_true, y_score)
    threshold = check_threshold(threshold)
    both = _both_classes(y_true)
    return {
        "auc": float(skm.roc_auc_score(y_true, y_score)) if both else float("nan"),
        "ap": float(skm.average_precision_score(y_true, y_score)) if both else float("nan"),
        **_threshold_metrics(y_true, y_score, threshold),
    }


def _threshold_metrics(y_true, y_score, threshold: float) -> dict[str, float]:
    """The metrics of :func:`binary_metrics` that depend on the threshold (no AUC, no AP)."""
    (tn, fp), (fn, tp) = confusion(y_true, y_score, threshold)

    def ratio(a, b):
        return float(a / b) if b else float("nan")

    return {
        "accuracy": ratio(tp + tn, len(y_true)),
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "precision": ratio(tp, tp + fp),
        "npv": ratio(tn, tn + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
        "threshold": float(threshold), "n": int(len(y_true)),
    }


#: Why a rate of :func:`binary_metrics` is undefined: the count its denominator is made of.
_UNDEFINED = {
    "sensitivity": ("tp", "fn", "no positive image"),
    "specificity": ("tn", "fp", "no negative image"),
    "precision": ("tp", "fp", "no image predicted positive"),
    "npv": ("tn", "fn", "no image predicted negative"),
    "accuracy": ("tp", "tn", "no image"),
}


def why_undefined(metrics: dict, name: str) -> str | None:
    """Says why a metric of :func:`binary_metrics` is NaN, or ``None`` when it is defined.

    Args:
        metrics: A dict from :func:`binary_metrics` (it holds the confusion counts).
        name: A metric in it, e.g. ``"precision"`` (PPV).

    Returns:
        A short reason such as ``"no image predicted positive"`` (PPV's denominator
        TP + FP is 0), ``"one class only"`` (AUC, AP), or ``None``.

    Raises:
        KeyError: If ``name`` is not in ``metrics``.
    """
    value = metrics[name]
    if not (isinstance(value, float) and np.isnan(value)):
        return None
    if name in ("auc", "ap"):
        return "one class only"
    if name in _UNDEFINED:
        a, b, reason = _UNDEFINED[name]
        if name == "accuracy":
            return reason if metrics["n"] == 0 else None
        return reason if metrics[a] + metrics[b] == 0 else None
    return None


def metric_text(metrics: dict, name: str, digits: int = 3) -> str:
    """A metric of :func:`binary_metrics` for a table or a title: rounded, or why undefined.

    Args:
        metrics: A dict from :func:`binary_metrics`.
        name: The metric, e.g. ``"precision"``.
        digits: Decimals shown.

    Returns:
        ``"0.812"``, or ``"undefined (no image predicted positive)"`` instead of ``nan``.

    Example:
        >>> m = binary_metrics([0, 1, 1], [0.1, 0.2, 0.3], threshold=0.9)
        >>> metric_text(m, "precision")
        'undefined (no image predicted positive)'
    """
    reason = why_undefined(metrics, name)
    if reason is not None:
        return f"undefined ({reason})"
    value = metrics[name]
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def choose_threshold(y_true, y_score, method: str = "youden", target: float = 0.9) -> float:
    """Picks a decision threshold on validation data.

    Args:
        y_true: 0/1 validation labels.
        y_score: Validation scores.
        method: ``"youden"`` maximizes sensitivity + specificity - 1 (Youden's J);
            ``"sensitivity"`` gives the highest threshold whose sensitivity is ``>= target``
            (a screening setting: miss few cases); ``"specificity"`` the lowest threshold whose
            specificity is ``>= target``; ``"accuracy"`` maximizes accuracy.
        target: Target sensitivity or specificity for those methods.

    Returns:
        The threshold (apply as ``score >= threshold``).

    Raises:
        ValueError: On an unknown method, a target outside (0, 1], or one class only.
    """
    y_true, y_score = check_binary(y_true, y_score)
    if not _both_classes(y_true):
        raise ValueError("choose_threshold needs both classes in y_true (use a validation set "
                         "with positives and negatives).")
    check_number(target, "target", 0.0, 1.0, low_open=True,
                 what="the sensitivity or specificity to reach")
    fpr, tpr, thresholds = skm.roc_curve(y_true, y_score, drop_intermediate=False)
    thresholds = np.minimum(thresholds, np.nextafter(np.max(y_score), np.inf))  # drop inf
    if method == "youden":
        return float(thresholds[int(np.argmax(tpr - fpr))])
    if method == "sensitivity":
        return float(thresholds[int(np.flatnonzero(tpr >= target)[0])])
    if method == "specificity":
        return float(thresholds[int(np.flatnonzero(1 - fpr >= target)[-1])])
    if method == "accuracy":
        positives = y_true.sum()
        accuracy = (tpr * positives + (1 - fpr) * (len(y_true) - positives)) / len(y_true)
        return float(thresholds[int(np.argmax(accuracy))])
    raise ValueError(f"Unknown method {method!r}: use 'youden', 'sensitivity', 'specificity' "
                     f"or 'accuracy'.")


def _label_matrix(y_true, y_score, class_names):
    y_true = np.asarray(y_true, dtype=float)
    y_score = np.asarray(y_score, dtype=float)
    if y_true.ndim == 1:
        y_true = y_true[:, None]
    if y_score.ndim == 1:
        y_score = y_score[:, None]
    if y_true.shape != y_score.shape:
        raise ValueError(f"y_true {y_true.shape} and y_score {y_score.shape} differ: "
                         f"one score per label and image is needed.")
    names = list(class_names) if class_names is not None else [
        f"label_{i}" for i in range(y_true.shape[1])]
    if len(names) != y_true.shape[1]:
        # binary datasets list both class names but have one column: name it by the positive
        names = names[-y_true.shape[1]:] if len(names) > y_true.shape[1] else names
        if len(names) != y_true.shape[1]:
            raise ValueError(f"{len(names)} class names for {y_true.shape[1]} label columns.")
    return y_true, y_score, names


def roc_curves(y_true, y_score, class_names=None) -> dict[str, dict[str, np.ndarray | float]]:
    """ROC and precision-recall curves per label.

    Args:
        y_true: ``(N,)``/``(N, 1)`` binary or ``(N, L)`` multi-label 0/1 labels (NaN = unknown).
        y_score: Scores, same shape.
        class_names: Label names (for binary data the positive class name is used).

    Returns:
        ``{name: {"fpr", "tpr", "thresholds", "auc", "precision", "recall", "ap",
        "prevalence"}}``; labels with one class only are left out.
    """
    y_true, y_score, names = _label_matrix(y_true, y_score, class_names)
    curves = {}
    for j, name in enumerate(names):
        if np.isnan(y_true[:, j]).all():  # no known label in this column
            continue
        t, s = check_binary(y_true[:, j], y_score[:, j])
        if not _both_classes(t):
            continue
        fpr, tpr, thr = skm.roc_curve(t, s)
        precision, recall, _ = skm.precision_recall_curve(t, s)
        curves[name] = {
            "fpr": fpr, "tpr": tpr, "thresholds": thr, "auc": float(skm.roc_auc_score(t, s)),
            "precision": precision, "recall": recall,
            "ap": float(skm.average_precision_score(t, s)), "prevalence": float(t.mean()),
        }
    return curves


def multilabel_auc(y_true, y_score, class_names=None) -> dict[str, float]:
    """ROC AUC per label plus their mean (``"mean"``), skipping labels with one class only.

    Args:
        y_true: ``(N, L)`` 0/1 labels (NaN = unknown).
        y_score: ``(N, L)`` scores.
        class_names: Label names.

    Returns:
        ``{label: auc, ..., "mean": macro average}``.
    """
    curves = roc_curves(y_true, y_score, class_names)
    aucs = {name: c["auc"] for name, c in curves.items()}
    aucs["mean"] = float(np.mean(list(aucs.values()))) if aucs else float("nan")
    return aucs


def _rank_auc(y_true, y_score) -> float:
    """ROC AUC as the normalised Mann-Whitney rank sum (ties count 1/2): sklearn's value, faster.

    A bootstrap computes the AUC thousands of times, and ``sklearn.metrics.roc_auc_score``
    spends most of its time validating its input; this form sorts once
    (``scipy.stats.rankdata``) and gives the same number.
    """
    from scipy.stats import rankdata

    positive = np.asarray(y_true).ravel() == 1
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC needs both classes among the labels.")
    ranks = rankdata(np.asarray(y_score, dtype=np.float64).ravel())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


_METRICS: dict[str, Callable] = {
    "auc": _rank_auc,
    "ap": lambda t, s: skm.average_precision_score(t, s),
}


def _metric_function(metric, threshold: float) -> Callable:
    """The function ``f(y_true, y_score) -> float`` a bootstrap computes per resample."""
    threshold = check_threshold(threshold)
    if callable(metric):
        return metric
    if metric in _METRICS:
        return _METRICS[metric]
    if metric in _threshold_metrics([0, 1], [0.0, 1.0], threshold):
        def fn(t, s):  # only the confusion matrix per resample, not AUC and AP too
            return _threshold_metrics(t, s, threshold)[metric]
        return fn
    raise ValueError(f"Unknown metric {metric!r}: use 'auc', 'ap', a binary_metrics key "
                     f"or a function f(y_true, y_score).")


def _percentile_interval(labels, statistic, n_boot, seed, alpha, below_zero=False) -> dict:
    """Resamples image indices with replacement and summarises ``statistic(index)`` over them.

    Resamples with one class only are skipped. ``value`` is the statistic on all images;
    with ``below_zero`` the share of resamples below 0 is added as ``fraction_below_zero``.

    Raises:
        ValueError: If ``n_boot`` is not a count, ``alpha`` not in (0, 1), the labels hold
            fewer than 2 images or one class only, or no resample held both classes.
    """
    n_boot = check_count(n_boot, "n_boot")
    alpha = check_level(alpha, "alpha", what="0.05 gives a 95% interval")
    if len(labels) < 2 or not _both_classes(labels):
        raise ValueError(f"A bootstrap interval needs at least one positive and one negative "
                         f"label; y_true holds {len(labels)} known label(s), "
                         f"{int(np.sum(labels))} positive: evaluate on a larger test set.")
    rng = np.random.default_rng(seed)
    n = len(labels)
    values = []
    for _ in range(int(n_boot)):
        index = rng.integers(0, n, n)
        if _both_classes(labels[index]):
            values.append(float(statistic(index)))
    values = np.asarray(values)
    if values.size == 0:
        raise ValueError(f"None of the {n_boot} resamples held both classes (too few "
                         f"positives or negatives among {n} labels): raise n_boot or evaluate "
                         f"on a larger test set.")
    out = {
        "value": float(statistic(np.arange(n))),
        "low": float(np.quantile(values, alpha / 2)),
        "high": float(np.quantile(values, 1 - alpha / 2)),
        "std": float(values.std()),
        "n_boot": int(len(values)),
    }
    if below_zero:
        out["fraction_below_zero"] = float(np.mean(values < 0))
    return out


def bootstrap_ci(y_true, y_score, metric="auc", n_boot: int = 1000, seed: int = 0,
                 alpha: float = 0.05, threshold: float = 0.5) -> dict[str, float]:
    """Percentile bootstrap confidence interval of a metric (resampling images).

    Args:
        y_true: 0/1 labels.
        y_score: Scores.
        metric: ``"auc"``, ``"ap"``, any key of :func:`binary_metrics` (computed at
            ``threshold``), or a callable ``f(y_true, y_score) -> float``.
        n_boot: Bootstrap resamples.
        seed: Seed of the resampling.
        alpha: 0.05 gives a 95% interval.
        threshold: Threshold for threshold metrics.

    Returns:
        ``{"value", "low", "high", "std", "n_boot"}`` (``value`` on the full sample;
        resamples with one class only are skipped).

    Raises:
        ValueError: On an unknown metric name, labels or scores that
            :func:`xraykit.tasks.check_binary` refuses, one class only or fewer than 2 images,
            ``alpha`` outside (0, 1), ``n_boot < 1`` or a threshold outside [0, 1].
    """
    y_true, y_score = check_binary(y_true, y_score)
    fn = _metric_function(metric, threshold)
    return _percentile_interval(y_true, lambda i: fn(y_true[i], y_score[i]), n_boot, seed, alpha)


def paired_bootstrap_ci(y_true, score_a, score_b, metric="auc", n_boot: int = 1000,
                        seed: int = 0, alpha: float = 0.05,
                        threshold: float = 0.5) -> dict[str, float]:
    """Percentile bootstrap interval of the DIFFERENCE of a metric between two models.

    Both models are scored on the same images, so each resample draws one set of images and
    computes ``metric(a) - metric(b)`` on it: what makes an image easy or hard for both models
    cancels, so this interval is narrower than two separate intervals side by side. An
    interval that excludes 0 says the two models differ on this test population.

    Args:
        y_true: 0/1 labels of the shared test images (NaN = unknown, left out).
        score_a: Scores of model A.
        score_b: Scores of model B, same images in the same order.
        metric: As in :func:`bootstrap_ci`.
        n_boot: Bootstrap resamples.
        seed: Seed of the resampling.
        alpha: 0.05 gives a 95% interval.
        threshold: Threshold for threshold metrics (the same for both models).

    Returns:
        ``{"value", "low", "high", "std", "n_boot", "fraction_below_zero"}`` for the
        difference A - B (``value`` on the full sample; ``fraction_below_zero``: the share of
        resamples in which B scored higher).

    Raises:
        ValueError: On an unknown metric, scores that do not match the labels, and the
            cases :func:`bootstrap_ci` refuses.
    """
    labels, score_a = check_binary(y_true, score_a, score_name="score_a")
    _, score_b = check_binary(y_true, score_b, score_name="score_b")
    fn = _metric_function(metric, threshold)

    def difference(index):
        return fn(labels[index], score_a[index]) - fn(labels[index], score_b[index])

    return _percentile_interval(labels, difference, n_boot, seed, alpha, below_zero=True)
