"""Loss functions and balanced class weights for chest X-ray classification (lesson 3).

Chest X-ray labels are imbalanced (PneumoniaMNIST is 1 normal : 3 pneumonia; ChestMNIST's
hernia is 0.2 % of images) and sometimes unknown (CheXpert marks findings as uncertain or
unmentioned). This module gives the losses a lesson compares, all as Keras 3 losses that run
on every backend and are saved and reloaded with a model (the custom classes are defined and
registered for loading here; :func:`xraykit.inference.load_model` imports this module):

* plain binary cross-entropy (``keras.losses.BinaryCrossentropy``);
* :class:`WeightedBinaryCrossentropy`, with per-class (and per-label) weights from
  :func:`class_weights` (also the ``class_weight`` of :func:`xraykit.training.fit`, through
  :func:`class_weight_for_fit`);
* :func:`focal_loss`, a thin wrapper around ``keras.losses.BinaryFocalCrossentropy``;
* :func:`smoothed_bce`, cross-entropy with label smoothing;
* :class:`MaskedBinaryCrossentropy`, multi-label cross-entropy where unknown labels
  (``NaN`` or ``-1``) contribute nothing and the loss is the mean over the known entries;
* :func:`prior_logit`, the output bias that starts a sigmoid at the class prior
  (``xraykit.models.build_model(..., output_bias=prior_logit(y_train))``).

:func:`get_loss` builds any of them by name; training and tuning code call it.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
from keras import ops

from xraykit.checks import check_finite_array, check_level, check_number
from xraykit.tasks import check_binary

_register = keras.saving.register_keras_serializable(package="xraykit")

LOSS_NAMES = ("bce", "weighted_bce", "focal", "smooth", "masked_bce")
_HIDE_STREAM = 0x48494445  # "HIDE": the second word of hide_labels' seed sequence


# --------------------------------------------------------------------------------------------
# Class weights
# --------------------------------------------------------------------------------------------
def _as_label_matrix(y) -> np.ndarray:
    y = np.asarray(check_finite_array(y, "labels", allow_nan=True), dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(f"Labels must have shape (N,), (N, 1) or (N, L); got {y.shape}.")
    return y


def _known(y: np.ndarray) -> np.ndarray:
    return ~np.isnan(y) & (y >= 0)


def class_weights(y, per_label: bool | None = None):
    """Balanced class weights ``n / (k * n_class)``: scikit-learn's ``"balanced"`` mode.

    With these weights every class contributes the same total weight to the loss: a rare
    class gets a weight above 1, a common one below 1. One label column (binary 0/1 or
    multi-class indices) gives the dict for Keras ``fit(class_weight=...)``, computed by
    ``sklearn.utils.class_weight.compute_class_weight``; ``per_label=True`` gives one
    ``[w_negative, w_positive]`` row per label for :class:`WeightedBinaryCrossentropy`.

    Args:
        y: Labels ``(N,)`` or ``(N, 1)`` (0/1 or class indices), or multi-label ``(N, L)``
            0/1; unknown entries (``NaN`` or ``-1``) are not counted.
        per_label: ``True`` gives an ``(L, 2)`` array (0/1 labels only); ``False`` gives the
            dict and needs a single label column. ``None`` (default) picks the dict for one
            column and the array otherwise.

    Returns:
        ``{class: weight}`` (e.g. ``{0: w_negative, 1: w_positive}``), or a float array of
        shape ``(L, 2)`` whose columns are ``[w_negative, w_positive]``. A binary label with no
        known positive (or no negative) gets weights 1 and a warning, since there is nothing
        to balance.

    Raises:
        ValueError: If per-label labels are not 0/1 (or unknown), class indices are not
            whole numbers, the shape is wrong, or ``per_label=False`` is asked for several
            label columns.

    Example:
        >>> class_weights(np.array([0, 1, 1, 1]))
        {0: 2.0, 1: 0.6666666666666666}
    """
    y = _as_label_matrix(y)
    if per_label is None:
        per_label = y.shape[1] > 1
    if not per_label:
        if y.shape[1] != 1:
            raise ValueError(
                f"per_label=False needs one label column; got {y.shape[1]}. Use per_label=True "
                "for multi-label data (Keras fit(class_weight=...) only supports single-output "
                "labels).")
        return _balanced_dict(y[_known(y)])
    known = _known(y)
    check_binary(np.where(known, y, np.nan))  # raises, naming the values, unless 0/1
    # Hand-written per label: compute_class_weight has no per-column mode or unknown mask.
    n_pos = np.sum(np.where(known, y, 0) == 1, axis=0).astype(np.float64)
    n_known = known.sum(axis=0).astype(np.float64)
    n_neg = n_known - n_pos
    weights = np.ones((y.shape[1], 2), np.float64)
    ok = (n_pos > 0) & (n_neg > 0)
    weights[ok, 0] = n_known[ok] / (2.0 * n_neg[ok])
    weights[ok, 1] = n_known[ok] / (2.0 * n_pos[ok])
    if not ok.all():
        warnings.warn(
            f"{int((~ok).sum())} label column(s) have only one class among the known labels "
            f"(columns {np.flatnonzero(~ok).tolist()[:10]}); their weights are left at 1.",
            stacklevel=2,
        )
    return weights


def _balanced_dict(labels: np.ndarray) -> dict[int, float]:
    """``compute_class_weight("balanced")`` as a dict, for one column of known labels."""
    from sklearn.utils.class_weight import compute_class_weight

    if labels.size == 0:
        raise ValueError("No labelled examples: every label is unknown (NaN or -1).")
    if not np.all(labels == np.round(labels)):
        bad = np.unique(labels[labels != np.round(labels)])[:5]
        raise ValueError(f"class_weights expects 0/1 labels or class indices; found "
                         f"{bad.tolist()}.")
    labels = labels.astype(int)
    classes = np.unique(labels)
    if len(classes) < 2:
        warnings.warn(f"Only class {classes.tolist()} among the known labels: nothing to "
                      f"balance, the weights are left at 1.", stacklevel=3)
        return {c: 1.0 for c in sorted({0, 1} | set(classes.tolist()))}
    weights = compute_class_weight("balanced", classes=classes, y=labels)
    return {int(c): float(w) for c, w in zip(classes, weights)}


def class_weight_for_fit(class_weight, y, task: str = "binary", loss=None):
    """The ``class_weight`` to give Keras ``fit``: ``"balanced"`` becomes :func:`class_weights`.

    Training (:func:`xraykit.training.fit`) and tuning (:class:`xraykit.tuning.XRayHyperModel`)
    both resolve their ``class_weight`` argument here, so both skip it in the same cases.

    Args:
        class_weight: ``"balanced"``, ``None`` or a dict ``{class: weight}`` (passed through).
        y: Training labels (read for ``"balanced"`` only).
        task: ``"binary"``, ``"multilabel"`` or ``"multiclass"``. Keras' ``class_weight``
            cannot weight several labels independently: ``"balanced"`` gives ``None`` for
            multilabel tasks (use :class:`WeightedBinaryCrossentropy` there).
        loss: The model's compiled loss. When it already weights the classes
            (:class:`WeightedBinaryCrossentropy`, or :class:`MaskedBinaryCrossentropy` with
            weights other than 1), ``"balanced"`` is skipped with a warning: the classes would
            otherwise be weighted twice.

    Returns:
        A dict for ``fit(class_weight=...)``, or ``None``.

    Raises:
        ValueError: If ``class_weight`` is a string other than ``"balanced"``.
    """
    if not isinstance(class_weight, str):
        return class_weight
    if class_weight != "balanced":
        raise ValueError(f"class_weight must be 'balanced', None or a dict, not "
                         f"{class_weight!r}.")
    if task == "multilabel" or y is None:
        return None
    if _weights_classes(loss):
        warnings.warn(f"class_weight='balanced' skipped: the loss {type(loss).__name__} "
                      "already weights the classes.", stacklevel=3)
        return None
    return class_weights(y, per_label=False)


def _weights_classes(loss) -> bool:
    """Whether a compiled loss already re-weights classes (so class weights would double it)."""
    if isinstance(loss, WeightedBinaryCrossentropy):
        return True
    if isinstance(loss, MaskedBinaryCrossentropy):
        weights = (loss.positive_weight, loss.negative_weight)
        return any(np.any(np.asarray(w, dtype=float) != 1.0) for w in weights)
    return False


def positive_fraction(y) -> np.ndarray:
    """Fraction of positives per label among the known entries.

    Args:
        y: Labels ``(N,)``, ``(N, 1)`` or ``(N, L)``; ``NaN`` or ``-1`` = unknown.

    Returns:
        Float array of shape ``(L,)``.
    """
    y = _as_label_matrix(y)
    known = _known(y)
    return np.where(known, y, 0).sum(axis=0) / np.maximum(known.sum(axis=0), 1)


def prior_logit(y) -> np.ndarray:
    """Log-odds of the class prior per label, ``log(positives / negatives)``.

    Used as the initial bias of the logits layer (``build_model(..., output_bias=...)``), it
    makes an untrained sigmoid output predict the training prevalence, so the first loss is the
    entropy of the prior instead of ``log 2`` and the first steps are not spent learning it.

    Args:
        y: 0/1 labels ``(N,)``, ``(N, 1)`` or ``(N, L)``; ``NaN`` or ``-1`` = unknown, not counted.

    Returns:
        Float array of shape ``(L,)``.

    Raises:
        ValueError: If a label has no known positive or no known negative (the log-odds would be
            infinite).

    Example:
        >>> prior_logit(np.array([0, 1, 1, 1]))  # log(3 / 1)
        array([1.09861229])
    """
    fraction = positive_fraction(y)
    if np.any((fraction <= 0) | (fraction >= 1)):
        bad = np.flatnonzero((fraction <= 0) | (fraction >= 1)).tolist()[:10]
        raise ValueError(f"Label column(s) {bad} have only one class among the known labels: "
                         "the prior log-odds is infinite; leave their bias at 0.")
    return np.log(fraction / (1.0 - fraction))


def hide_labels(y, fraction: float = 0.3, seed: int = 0, value: float = np.nan) -> np.ndarray:
    """Marks a random fraction of labels as unknown, to simulate incompletely labelled data.

    CheXpert-style data leave many findings unmentioned or uncertain; this turns a fully
    labelled set into such a set so a lesson can compare masked and unmasked losses.

    Args:
        y: Labels ``(N,)``, ``(N, 1)`` or ``(N, L)``.
        fraction: Probability that each entry becomes unknown, in [0, 1).
        seed: Random seed.
        value: The "unknown" marker: ``NaN`` (default) or ``-1``.

    Returns:
        A float32 copy of ``y`` (same shape) with the hidden entries set to ``value``.

    Raises:
        ValueError: If ``fraction`` is outside [0, 1) or ``value`` is neither NaN nor negative.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1); got {fraction}.")
    if not (np.isnan(value) or value < 0):
        raise ValueError(f"value must be NaN or negative (e.g. -1) to mean 'unknown'; got {value}.")
    out = np.array(y, dtype=np.float32, copy=True)
    # A stream of its own: labels drawn by default_rng(seed) (the synthetic phantoms) would
    # otherwise be hidden by the very numbers that drew them, positives first.
    hidden = np.random.default_rng([seed, _HIDE_STREAM]).random(out.shape) < fraction
    out[hidden] = value
    return out


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------
def _to_list(value):
    if value is None:
        return None
    array = np.asarray(value, dtype=np.float64)
    return float(array) if array.ndim == 0 else array.tolist()


def _elementwise_bce(y_true, y_pred, positive_weight, negative_weight, from_logits,
                     label_smoothing):
    """``-(w+ y log p + w- (1 - y) log(1 - p))`` per element (same clipping as Keras)."""
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        log_p = -ops.softplus(-y_pred)
        log_not_p = -ops.softplus(y_pred)
    else:
        eps = keras.config.epsilon()
        p = ops.clip(y_pred, eps, 1.0 - eps)
        log_p = ops.log(p)
        log_not_p = ops.log(1.0 - p)
    pos = ops.convert_to_tensor(positive_weight, dtype=y_pred.dtype)
    neg = ops.convert_to_tensor(negative_weight, dtype=y_pred.dtype)
    return -(pos * y_true * log_p + neg * (1.0 - y_true) * log_not_p)


class _BinaryCrossentropyBase(keras.losses.Loss):
    """Options, validation, ``from_labels`` and config shared by the weighted and masked BCE."""

    default_name = "binary_crossentropy"

    def __init__(self, positive_weight=1.0, negative_weight=1.0, from_logits=False,
                 label_smoothing=0.0, reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(name=name or self.default_name, reduction=reduction, dtype=dtype)
        for label, value in (("positive_weight", positive_weight),
                             ("negative_weight", negative_weight)):
            array = np.asarray(value, dtype=np.float64)
            if array.ndim > 1 or np.any(~np.isfinite(array)) or np.any(array < 0):
                raise ValueError(f"{label} must be a non-negative float or a list of them; "
                                 f"got {value!r}.")
        if not 0.0 <= float(label_smoothing) <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1]; got {label_smoothing}.")
        self.positive_weight = _to_list(positive_weight)
        self.negative_weight = _to_list(negative_weight)
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    @classmethod
    def from_labels(cls, y, **kwargs):
        """Builds the loss with balanced weights computed by :func:`class_weights`.

        Args:
            y: Training labels, ``(N,)``, ``(N, 1)`` or ``(N, L)`` (``NaN``/``-1`` = unknown,
                not counted).
            **kwargs: Other constructor arguments.

        Returns:
            The loss; per-label weights when ``y`` has several columns.
        """
        weights = class_weights(y, per_label=True)
        if weights.shape[0] == 1:
            return cls(float(weights[0, 1]), float(weights[0, 0]), **kwargs)
        return cls(weights[:, 1].tolist(), weights[:, 0].tolist(), **kwargs)

    def _elementwise(self, y_true, y_pred):
        return _elementwise_bce(y_true, y_pred, self.positive_weight, self.negative_weight,
                                self.from_logits, self.label_smoothing)

    def get_config(self):
        """Config for saving; ``from_config`` rebuilds the object from it."""
        config = super().get_config()
        config.update(positive_weight=self.positive_weight, negative_weight=self.negative_weight,
                      from_logits=self.from_logits, label_smoothing=self.label_smoothing)
        return config


@_register
class WeightedBinaryCrossentropy(_BinaryCrossentropyBase):
    """Binary cross-entropy with a weight for positives and one for negatives.

    ``loss = -(w+ * y * log(p) + w- * (1 - y) * log(1 - p))``, averaged over the labels (last
    axis) and then over the batch, as ``keras.losses.BinaryCrossentropy`` does. With
    ``w+ = w- = 1`` it equals plain BCE. Weights may be scalars or one per label.

    Args:
        positive_weight: Weight of positive entries (a float, or a list of one per label).
        negative_weight: Weight of negative entries (a float, or a list of one per label).
        from_logits: Whether ``y_pred`` are logits instead of probabilities.
        label_smoothing: Squeezes targets towards 0.5 by this amount (as Keras does).
        reduction: Keras loss reduction.
        name: Name of the loss.
        dtype: Dtype of the loss computation.

    Raises:
        ValueError: For negative or non-finite weights, or a smoothing outside [0, 1].

    Example:
        >>> loss = WeightedBinaryCrossentropy.from_labels(data.y_train)  # balanced weights
    """

    default_name = "weighted_binary_crossentropy"

    def call(self, y_true, y_pred):
        """Returns the loss of each sample."""
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        return ops.mean(self._elementwise(y_true, y_pred), axis=-1)


@_register
class MaskedBinaryCrossentropy(_BinaryCrossentropyBase):
    """Multi-label binary cross-entropy that ignores unknown labels.

    Entries whose label is ``NaN`` or negative (``-1``, CheXpert's "uncertain/unmentioned"
    convention) contribute nothing, neither to the loss nor to its gradient. With the default
    reduction the result is the **mean over the known entries of the batch** (not over all
    entries), so a batch with many unknowns is not down-weighted. A batch with no known entry
    gives 0. Optional positive/negative weights (scalars or one per label) make it a masked
    weighted BCE.

    Args:
        positive_weight: Weight of positive entries (float or one per label).
        negative_weight: Weight of negative entries (float or one per label).
        from_logits: Whether ``y_pred`` are logits.
        label_smoothing: Squeezes known targets towards 0.5 by this amount.
        reduction: Keras loss reduction. Only ``"sum_over_batch_size"`` gives the exact mean
            over known entries; per-sample values are scaled so that their batch mean is it.
        name: Name of the loss.
        dtype: Dtype of the loss computation.

    Raises:
        ValueError: For negative or non-finite weights, or a smoothing outside [0, 1].
    """

    default_name = "masked_binary_crossentropy"

    def call(self, y_true, y_pred):
        """Returns the loss of each sample."""
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        known = ops.logical_and(ops.logical_not(ops.isnan(y_true)), y_true >= 0)
        mask = ops.cast(known, y_pred.dtype)
        # Replace unknowns *before* the loss so that NaN never reaches the gradient.
        clean = ops.where(known, y_true, ops.zeros_like(y_true))
        values = self._elementwise(clean, y_pred) * mask
        per_sample = ops.sum(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)
        batch = ops.cast(ops.shape(values)[0], y_pred.dtype)
        n_known = ops.maximum(ops.sum(mask), 1.0)
        return per_sample * batch / n_known


def focal_loss(gamma: float = 2.0, alpha: float | None = None, from_logits: bool = False,
               label_smoothing: float = 0.0, name: str = "focal_loss"):
    """Binary focal loss (Lin et al. 2017): cross-entropy down-weighted on easy examples.

    ``loss = -alpha_t * (1 - p_t) ** gamma * log(p_t)``, where ``p_t`` is the predicted
    probability of the true class. ``gamma = 0`` and no ``alpha`` gives plain BCE. A thin
    wrapper around ``keras.losses.BinaryFocalCrossentropy`` (so it saves like any Keras loss).

    Args:
        gamma: Focusing parameter; larger values ignore well-classified examples more.
        alpha: Weight of the positive class (negatives get ``1 - alpha``); ``None`` = no class
            balancing. Note ``alpha`` weights *positives*: for a rare positive class use
            ``alpha > 0.5`` (e.g. the fraction of negatives).
        from_logits: Whether predictions are logits.
        label_smoothing: Label smoothing, as in Keras.
        name: Name of the loss.

    Returns:
        A ``keras.losses.BinaryFocalCrossentropy``.

    Raises:
        ValueError: If ``gamma`` is not a finite number >= 0 or ``alpha`` is not in (0, 1).
    """
    gamma = check_number(gamma, "gamma", 0.0, what="0 gives plain cross-entropy")
    if alpha is not None:
        alpha = check_level(alpha, "alpha", what="the weight of the positive class")
    return keras.losses.BinaryFocalCrossentropy(
        apply_class_balancing=alpha is not None, alpha=0.25 if alpha is None else float(alpha),
        gamma=float(gamma), from_logits=from_logits, label_smoothing=label_smoothing, name=name,
    )


def smoothed_bce(label_smoothing: float = 0.1, from_logits: bool = False,
                 name: str = "smoothed_bce"):
    """Binary cross-entropy with label smoothing: targets 0/1 become ``s/2`` and ``1 - s/2``.

    Smoothing stops the model from pushing its outputs to exactly 0 or 1, which can help with
    noisy labels (radiology reports disagree) and often changes calibration.

    Args:
        label_smoothing: Amount ``s`` in [0, 1].
        from_logits: Whether predictions are logits.
        name: Name of the loss.

    Returns:
        A ``keras.losses.BinaryCrossentropy``.

    Raises:
        ValueError: If ``label_smoothing`` is outside [0, 1].
    """
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1]; got {label_smoothing}.")
    return keras.losses.BinaryCrossentropy(label_smoothing=float(label_smoothing),
                                           from_logits=from_logits, name=name)


def get_loss(name="bce", y_train=None, **kwargs):
    """Builds a loss by name; what ``compile_model`` and the tuners call.

    Args:
        name: ``"bce"``, ``"weighted_bce"``, ``"focal"``, ``"smooth"`` or ``"masked_bce"``.
            A ``keras.losses.Loss`` instance or a callable is returned unchanged; any other
            string is looked up with ``keras.losses.get`` (e.g. ``"categorical_crossentropy"``).
        y_train: Training labels. Needed by ``"weighted_bce"`` (balanced weights unless
            ``positive_weight``/``negative_weight`` are given); used by ``"focal"`` when
            ``alpha="balanced"`` (alpha = fraction of negatives) and by ``"masked_bce"`` when
            ``balanced=True``.
        **kwargs: Passed to the loss (e.g. ``gamma=2``, ``label_smoothing=0.1``,
            ``from_logits=True``).

    Returns:
        A Keras loss.

    Raises:
        ValueError: If the name is unknown or ``y_train`` is missing where needed.
    """
    if isinstance(name, keras.losses.Loss) or (callable(name) and not isinstance(name, str)):
        return name
    if not isinstance(name, str):
        raise ValueError(f"loss must be a name or a Keras loss; got {type(name).__name__}.")
    key = name.strip().lower().replace("-", "_")
    key = {"binary_crossentropy": "bce", "weighted": "weighted_bce", "focal_loss": "focal",
           "label_smoothing": "smooth", "smoothed_bce": "smooth",
           "masked": "masked_bce"}.get(key, key)
    if key == "bce":
        return keras.losses.BinaryCrossentropy(**kwargs)
    if key == "weighted_bce":
        if "positive_weight" in kwargs or "negative_weight" in kwargs:
            return WeightedBinaryCrossentropy(**kwargs)
        if y_train is None:
            raise ValueError("get_loss('weighted_bce') needs y_train (to compute balanced class "
                             "weights) or explicit positive_weight=/negative_weight=.")
        return WeightedBinaryCrossentropy.from_labels(y_train, **kwargs)
    if key == "focal":
        if isinstance(kwargs.get("alpha"), str):
            if kwargs["alpha"] != "balanced" or y_train is None:
                raise ValueError("focal alpha must be a float, None, or 'balanced' with y_train "
                                 "given.")
            kwargs["alpha"] = float(1.0 - np.mean(positive_fraction(y_train)))
        return focal_loss(**kwargs)
    if key == "smooth":
        return smoothed_bce(**kwargs)
    if key == "masked_bce":
        if kwargs.pop("balanced", False):
            if y_train is None:
                raise ValueError("get_loss('masked_bce', balanced=True) needs y_train.")
            return MaskedBinaryCrossentropy.from_labels(y_train, **kwargs)
        return MaskedBinaryCrossentropy(**kwargs)
    try:
        return keras.losses.get(name)
    except ValueError:
        raise ValueError(
            f"Unknown loss {name!r}: use one of {', '.join(LOSS_NAMES)} or a Keras loss name."
        ) from None


def loss_curve(loss, probabilities, y_true: float = 1.0) -> np.ndarray:
    """Per-example loss of a single prediction as a function of the predicted probability.

    Used to draw "loss vs predicted probability" for each loss.

    Args:
        loss: A Keras loss (or anything :func:`get_loss` accepts).
        probabilities: 1-D array of predicted probabilities.
        y_true: The true label (0 or 1) of every example.

    Returns:
        Float array of the same length: the loss of each prediction on its own.
    """
    loss = get_loss(loss)
    p = np.asarray(probabilities, np.float32).reshape(-1, 1)
    y = np.full_like(p, float(y_true))
    if isinstance(loss, keras.losses.Loss):
        values = ops.convert_to_numpy(loss.call(y, p))
    else:
        values = [float(ops.convert_to_numpy(loss(y[i:i + 1], p[i:i + 1]))) for i in range(len(p))]
    return np.asarray(values, np.float64).reshape(-1)
