"""Every custom Keras object of xraykit (layers, losses, metrics), registered for saving/loading.

A ``.keras`` file names its custom objects (``"xraykit>PerImageMinMax"``) and Keras finds them only
if their class was registered in the *loading* process. Keeping them all in this one module makes
that a single import: ``import xraykit.keras_objects`` before ``keras.saving.load_model`` (or use
:func:`xraykit.inference.load_model`, which does it) opens any model xraykit built, compiled or
saved, in a fresh process.

Built-in Keras layers are used wherever one does the job (clipping to [0, 1] is
``keras.layers.ReLU(max_value=1.0)``, a pure rescaling is ``keras.layers.Rescaling``); a class
lives here only where no built-in does it. The topical modules re-export these names
(``xraykit.preprocessing.PerImageStandardize``, ``xraykit.losses.MaskedBinaryCrossentropy``,
``xraykit.training.Specificity``); that is where they are taught and documented for users.

=============================  ==========================================================
object                         what it is
=============================  ==========================================================
``PerImageStandardize``        layer: per-image z-score
``PerImageMinMax``             layer: per-image min–max to [0, 1]
``Window``                     layer: window center/width to [0, 1]
``ToRGB``                      layer: grayscale → 3 channels in a backbone's convention
``WeightedBinaryCrossentropy`` loss: BCE with positive/negative weights
``MaskedBinaryCrossentropy``   loss: BCE that ignores unknown (NaN / -1) labels
``Specificity``                metric: true negative rate at a threshold
``SparseAUC``                  metric: one-vs-rest ROC AUC for integer class labels
``ClipToUnit``, ``XRVScale``   kept only so that models saved by earlier xraykit versions
                               load; new models use ``ReLU(max_value=1)`` / ``Rescaling``
=============================  ==========================================================
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

__all__ = [
    "ClipToUnit", "CUSTOM_OBJECTS", "MaskedBinaryCrossentropy", "PerImageMinMax",
    "PerImageStandardize", "SparseAUC", "Specificity", "ToRGB", "WeightedBinaryCrossentropy",
    "Window",
]

_register = keras.saving.register_keras_serializable(package="xraykit")


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------
class _PerImageLayer(keras.layers.Layer):
    """Base of the per-image rescaling layers: an ``epsilon``, the input's shape out."""

    def __init__(self, epsilon: float, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def compute_output_shape(self, input_shape):
        """Output shape for an input shape."""
        return input_shape

    def get_config(self):
        """Config for saving; ``from_config`` rebuilds the object from it."""
        return {**super().get_config(), "epsilon": self.epsilon}


@_register
class PerImageStandardize(_PerImageLayer):
    """Per-image z-score inside a model: ``(x - mean(x)) / max(std(x), eps)`` over H, W, C.

    Args:
        epsilon: Lower bound of the std.
        **kwargs: Standard layer arguments.
    """

    def __init__(self, epsilon: float = 1e-6, **kwargs):
        super().__init__(epsilon, **kwargs)

    def call(self, inputs):
        """Applies the layer."""
        x = ops.cast(inputs, self.compute_dtype)
        axes = tuple(range(1, len(x.shape)))
        mean = ops.mean(x, axis=axes, keepdims=True)
        std = ops.sqrt(ops.mean(ops.square(x - mean), axis=axes, keepdims=True))
        return (x - mean) / ops.maximum(std, self.epsilon)


@_register
class PerImageMinMax(_PerImageLayer):
    """Per-image min–max rescaling to [0, 1] inside a model.

    Args:
        epsilon: Guards against division by zero for constant images.
        **kwargs: Standard layer arguments.
    """

    def __init__(self, epsilon: float = 1e-7, **kwargs):
        super().__init__(epsilon, **kwargs)

    def call(self, inputs):
        """Applies the layer."""
        x = ops.cast(inputs, self.compute_dtype)
        axes = tuple(range(1, len(x.shape)))
        lo = ops.min(x, axis=axes, keepdims=True)
        hi = ops.max(x, axis=axes, keepdims=True)
        return (x - lo) / ops.maximum(hi - lo, self.epsilon)


@_register
class Window(keras.layers.Layer):
    """Window/level inside a model: ``[center - width/2, center + width/2]`` to [0, 1], clipped.

    Args:
        center: Window center, in input units.
        width: Window width (> 0).
        **kwargs: Standard layer arguments.

    Raises:
        ValueError: If ``width <= 0``.
    """

    def __init__(self, center: float = 0.5, width: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if not width > 0:
            raise ValueError(f"window width must be > 0, got {width}.")
        self.center, self.width = float(center), float(width)

    def call(self, inputs):
        """Applies the layer."""
        x = ops.cast(inputs, self.compute_dtype)
        return ops.clip((x - (self.center - self.width / 2.0)) / self.width, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        """Output shape for an input shape."""
        return input_shape

    def get_config(self):
        """Config for saving; ``from_config`` rebuilds the object from it."""
        return {**super().get_config(), "center": self.center, "width": self.width}


@_register
class ToRGB(keras.layers.Layer):
    """Grayscale [0, 1] → 3 channels in a backbone's ImageNet input convention, inside a model.

    Put it between the ``(H, W, 1)`` input and a ``keras.applications`` backbone so the saved
    model takes the same [0, 1] grayscale images as every other xraykit model.

    Args:
        backbone: Backbone or mode name (see ``xraykit.preprocessing.BACKBONE_CONVENTIONS``).
        **kwargs: Standard layer arguments.

    Raises:
        ValueError: For an unknown backbone.
    """

    def __init__(self, backbone: str = "unit", **kwargs):
        # The convention table is taught in preprocessing, which imports this module: import it
        # here, at call time, when both modules are complete.
        from xraykit.preprocessing import backbone_convention

        super().__init__(**kwargs)
        self.backbone = backbone
        self.mode = backbone_convention(backbone)

    def call(self, inputs):
        """Applies the layer."""
        from xraykit.preprocessing import to_backbone_range

        x = ops.cast(inputs, self.compute_dtype)
        if x.shape[-1] == 1:
            x = ops.concatenate([x, x, x], axis=-1)
        return to_backbone_range(x, self.mode)

    def compute_output_shape(self, input_shape):
        """Output shape for an input shape."""
        return tuple(input_shape[:-1]) + (3,)

    def get_config(self):
        """Config for saving; ``from_config`` rebuilds the object from it."""
        return {**super().get_config(), "backbone": self.backbone}


@_register
class ClipToUnit(keras.layers.ReLU):
    """Clips to [0, 1]; a ``keras.layers.ReLU(max_value=1.0)`` under xraykit's old name.

    New augmentation pipelines use ``keras.layers.ReLU(max_value=1.0)`` directly; this class
    stays registered so that models saved by earlier xraykit versions still load.

    Args:
        **kwargs: Standard layer arguments (``max_value``/``negative_slope``/``threshold`` are
            fixed).
    """

    def __init__(self, **kwargs):
        for fixed in ("max_value", "negative_slope", "threshold"):
            kwargs.pop(fixed, None)
        super().__init__(max_value=1.0, **kwargs)

    def get_config(self):
        """Config for saving; ``from_config`` rebuilds the object from it."""
        config = super().get_config()
        for fixed in ("max_value", "negative_slope", "threshold"):
            config.pop(fixed, None)
        return config


@keras.saving.register_keras_serializable(package="xraykit", name="XRVScale")
class _LegacyXRVScale(keras.layers.Rescaling):
    """TorchXRayVision scale saved by earlier xraykit versions; new models get a ``Rescaling``.

    ``(2 * x / maxval - 1) * 1024`` is ``Rescaling(2048 / maxval, offset=-1024)``.

    Args:
        maxval: Largest possible input value.
        **kwargs: Standard layer arguments.
    """

    def __init__(self, maxval: float = 1.0, **kwargs):
        kwargs.pop("scale", None)
        kwargs.pop("offset", None)
        if not maxval > 0:
            raise ValueError(f"maxval must be > 0, got {maxval}.")
        super().__init__(scale=2048.0 / float(maxval), offset=-1024.0, **kwargs)
        self.maxval = float(maxval)

    def get_config(self):
        """Config for saving; ``from_config`` rebuilds the object from it."""
        config = super().get_config()
        config.pop("scale", None)
        config.pop("offset", None)
        return {**config, "maxval": self.maxval}

    @classmethod
    def from_config(cls, config):
        """Rebuilds the object from :meth:`get_config`'s output."""
        return cls(**config)


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


def _balanced_weights(y):
    """``(L, 2)`` balanced weights of :func:`xraykit.losses.class_weights` (taught there)."""
    from xraykit.losses import class_weights

    return class_weights(y, per_label=True)


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
        """Builds the loss with balanced weights computed by ``xraykit.losses.class_weights``.

        Args:
            y: Training labels, ``(N,)``, ``(N, 1)`` or ``(N, L)`` (``NaN``/``-1`` = unknown,
                not counted).
            **kwargs: Other constructor arguments.

        Returns:
            The loss; per-label weights when ``y`` has several columns.
        """
        weights = _balanced_weights(y)
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


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------
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
        self.threshold = float(threshold)
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


#: Every registered object by its registered name, for ``keras.saving.load_model(...,
#: custom_objects=CUSTOM_OBJECTS)`` where a caller prefers to pass them explicitly.
CUSTOM_OBJECTS = {
    keras.saving.get_registered_name(obj): obj
    for obj in (PerImageStandardize, PerImageMinMax, Window, ToRGB, ClipToUnit, _LegacyXRVScale,
                WeightedBinaryCrossentropy, MaskedBinaryCrossentropy, Specificity, SparseAUC)
}
