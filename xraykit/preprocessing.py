"""Intensity normalization, contrast, windowing, resizing and channel conventions for radiographs.

Every operation that belongs *inside* a model is a backend-agnostic Keras layer, saved and reloaded
with the model (a built-in Keras layer where one does the job; the custom ones are defined and
registered here, with numbers only in their configs). Each also has a NumPy function, for looking
at data and for a practitioner's own pipeline, that runs the same layer (or the same built-in
Keras call), so the two cannot disagree.

Input convention: images are float ``(H, W)``, ``(H, W, 1)`` or ``(N, H, W, 1)`` in [0, 1], as
every xraykit loader returns them. Functions that rely on that range check it with
:func:`xraykit.pixels.check_unit_range` and fail with a message that says how to fix the input.

========================  ==========================  =========================================
operation                 NumPy                       Keras layer (inside a model)
========================  ==========================  =========================================
range check               ``check_unit_range``        —
min–max to [0, 1]         ``minmax``                  ``PerImageMinMax``
per-image z-score         ``zscore``                  ``PerImageStandardize``
dataset mean/std          ``dataset_stats``           ``dataset_normalizer`` (``Normalization``)
TorchXRayVision scale     ``xrv_scale``               ``XRVScale`` (``keras.layers.Rescaling``)
histogram equalization    ``equalize_hist``           ``keras.layers.Equalization``
CLAHE                     ``clahe``                   ``clahe_layer`` (Keras' CLAHE layer)
window center/width       ``window``                  ``Window``
square pad / center-crop  ``resize_batch``            ``resize_layer`` (``keras.layers.Resizing``)
gray → 3 channels         ``to_rgb``                  ``ToRGB``
backbone input range      ``to_backbone_range``       ``ToRGB``, ``backbone_range_layer``
========================  ==========================  =========================================
"""

from __future__ import annotations

import importlib.util

import keras
import numpy as np
from keras import ops

from xraykit.checks import check_count, check_number, check_positive
from xraykit.pixels import check_finite, check_unit_range, resize_batch

__all__ = [
    "BACKBONE_CONVENTIONS", "PerImageMinMax", "PerImageStandardize", "ToRGB", "Window", "XRVScale",
    "backbone_affine", "backbone_convention", "backbone_range_layer", "check_unit_range", "clahe",
    "clahe_layer", "dataset_normalizer", "dataset_stats", "equalize_hist", "minmax",
    "resize_batch", "resize_layer", "to_backbone_range", "to_rgb", "window", "xrv_scale",
]

_register = keras.saving.register_keras_serializable(package="xraykit")

#: What each ``keras.applications`` backbone expects as input, i.e. which mode of
#: ``keras.applications.imagenet_utils.preprocess_input`` its own ``preprocess_input`` uses on
#: an RGB image in [0, 255] (the one home of this table: :mod:`xraykit.models` reads it too):
#:
#: - ``"unit"``: [0, 1] (our own models; no ImageNet convention)
#: - ``"raw255"``: [0, 255]; the model rescales inside (``include_preprocessing=True``)
#: - ``"tf"``: [-1, 1]
#: - ``"torch"``: [0, 1], then the ImageNet mean/std per channel, RGB
#: - ``"caffe"``: RGB → BGR, then minus the ImageNet BGR means, [0, 255] scale
BACKBONE_CONVENTIONS = {
    "unit": "unit",
    "small_cnn": "unit", "vgg_small": "unit", "resnet_small": "unit",
    "densenet121": "torch", "densenet169": "torch", "densenet201": "torch",
    "resnet50v2": "tf", "resnet101v2": "tf", "resnet152v2": "tf",
    "mobilenetv2": "tf", "inceptionv3": "tf", "xception": "tf",
    "resnet50": "caffe", "resnet101": "caffe", "vgg16": "caffe", "vgg19": "caffe",
    "efficientnetb0": "raw255", "efficientnetv2b0": "raw255", "efficientnetv2s": "raw255",
    "convnext_tiny": "raw255", "convnext_small": "raw255",
    "mobilenetv3small": "raw255", "mobilenetv3large": "raw255",
}
_MODES = ("unit", "raw255", "tf", "torch", "caffe")


def _as_4d(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """A 4-D batch view of one image ``(H, W[, C])`` or a batch ``(N, H, W[, C])``, and the shape.

    A 3-D array is one ``(H, W, C)`` image when its last axis is 1 or 3, else a batch.
    """
    if x.ndim == 2:
        return x[None, ..., None], x.shape
    if x.ndim == 3:
        return (x[None] if x.shape[-1] in (1, 3) else x[..., None]), x.shape
    if x.ndim == 4:
        return x, x.shape
    raise ValueError(f"expected an image (H, W[, C]) or a batch (N, H, W[, C]), got shape "
                     f"{x.shape}.")


def _run_layer(layer: keras.layers.Layer, x: np.ndarray) -> np.ndarray:
    """Applies a per-image layer to NumPy images of any accepted shape; float32 out, same shape."""
    batch, shape = _as_4d(x)
    return np.asarray(ops.convert_to_numpy(layer(batch)), dtype=np.float32).reshape(shape)


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
        low = ops.min(x, axis=axes, keepdims=True)
        high = ops.max(x, axis=axes, keepdims=True)
        return (x - low) / ops.maximum(high - low, self.epsilon)


def minmax(x, eps: float = 1e-7) -> np.ndarray:
    """Rescales each image to [0, 1] by its own minimum and maximum (runs :class:`PerImageMinMax`).

    Any finite range is accepted (raw 12-bit pixels, Hounsfield-like values).

    Args:
        x: Image ``(H, W[, C])`` or batch ``(N, H, W, C)`` / ``(N, H, W)``.
        eps: Guards against division by zero for constant images (which become 0).

    Returns:
        Float32 array of the same shape in [0, 1].

    Raises:
        ValueError: If ``x`` holds NaN/inf.
    """
    x = np.asarray(x, dtype=np.float32)
    check_finite(x, "minmax input")
    return _run_layer(PerImageMinMax(eps, dtype="float32"), x)


def zscore(x, eps: float = 1e-6) -> np.ndarray:
    """Per-image z-score (runs :class:`PerImageStandardize`): minus the mean, over the std.

    Removes brightness and contrast differences between scanners; the output is no longer in
    [0, 1] (mean 0, std 1 per image).

    Args:
        x: Image or batch in [0, 1].
        eps: Lower bound of the std (constant images become 0).

    Returns:
        Float32 array of the same shape.

    Raises:
        ValueError: If ``x`` is outside [0, 1] or not finite.
    """
    return _run_layer(PerImageStandardize(eps, dtype="float32"), check_unit_range(x))


def dataset_stats(x) -> tuple[float, float]:
    """Mean and standard deviation of all pixels of a training set.

    Compute them on the *training* split only and reuse them for validation and test.

    Args:
        x: Training images in [0, 1].

    Returns:
        ``(mean, std)`` as floats.

    Raises:
        ValueError: If ``x`` is outside [0, 1] or not finite.
    """
    x = check_unit_range(x)
    return float(x.mean()), float(x.std())


def dataset_normalizer(x_train) -> keras.layers.Normalization:
    """A ``keras.layers.Normalization`` adapted to the training images (dataset mean/std).

    The mean and variance are stored in the layer, so they are saved with the model and the
    same numbers are applied at inference.

    Args:
        x_train: Training images ``(N, H, W, 1)`` in [0, 1].
        batch_size: Batch size for ``adapt``.

    Returns:
        An adapted ``Normalization`` layer computing ``(x - mean) / std``.

    Raises:
        ValueError: If the images are outside [0, 1] or not finite.
    """
    x_train = check_unit_range(x_train, "x_train")
    if x_train.ndim == 3:
        x_train = x_train[..., None]
    layer = keras.layers.Normalization(axis=-1, name="dataset_normalization")
    layer.adapt(x_train)
    return layer


def xrv_scale(x, maxval: float = 1.0, check: bool = True) -> np.ndarray:
    """TorchXRayVision's input scale: ``(2 * x / maxval - 1) * 1024`` ([0, maxval] → ±1024).

    Models pretrained by TorchXRayVision expect this range (their ``xrv.datasets.normalize``).

    Args:
        x: Image(s) in [0, maxval].
        maxval: The largest possible input value (1 for xraykit images, 255 for 8-bit).
        check: Checks the input lies in [0, maxval] and is finite.

    Returns:
        Float32 array in [-1024, 1024].

    Raises:
        ValueError: If ``maxval <= 0`` or the input is outside [0, maxval].
    """
    if maxval <= 0:
        raise ValueError(f"maxval must be > 0, got {maxval}.")
    x = np.asarray(x, dtype=np.float32)
    if check:
        check_unit_range(x / maxval, f"images / maxval ({maxval})")
    return ((2.0 * x / maxval - 1.0) * 1024.0).astype(np.float32)


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
        self.center = check_number(center, "window center", what="the level, in the input's units")
        self.width = check_positive(width, "window width", what="in the input's units")

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


def window(x, center: float, width: float) -> np.ndarray:
    """Window/level (runs :class:`Window`): ``[center ± width/2]`` to [0, 1], clipped outside.

    Center and width are in the same units as ``x`` (e.g. 0.5/0.4 for [0, 1] images, or raw
    stored values for a DICOM read without a window).

    Args:
        x: Image(s), any finite range.
        center: Window center (level).
        width: Window width (> 0).

    Returns:
        Float32 array in [0, 1].

    Raises:
        ValueError: If ``center`` is not finite, ``width`` not a finite number > 0, or the input
            is not finite.
    """
    layer = Window(center, width, dtype="float32")  # a bad width fails before the data check
    x = np.asarray(x, dtype=np.float32)
    check_finite(x, "window input")
    return _run_layer(layer, x)


def equalize_hist(x, bins: int = 256) -> np.ndarray:
    """Global histogram equalization of each image (NumPy).

    Spreads the intensities so that their cumulative histogram is a straight line; the in-model
    equivalent is ``keras.layers.Equalization(value_range=(0, 1))``.

    Args:
        x: Image ``(H, W[, 1])`` or batch ``(N, H, W[, 1])`` in [0, 1].
        bins: Number of histogram bins.

    Returns:
        Float32 array of the same shape in [0, 1].

    Raises:
        ValueError: If the input is outside [0, 1] or not finite, or ``bins`` is not a whole
            number >= 2.
    """
    bins = check_count(bins, "bins", minimum=2)
    x = check_unit_range(x)
    single = x.ndim == 2 or (x.ndim == 3 and x.shape[-1] == 1)
    batch = x[None] if single else x
    out = np.empty_like(batch)
    for i, img in enumerate(batch):
        levels = np.minimum((img * bins).astype(np.int64), bins - 1)
        hist = np.bincount(levels.ravel(), minlength=bins)
        cdf = np.cumsum(hist).astype(np.float64)
        nonzero = cdf[hist > 0]
        cdf_min = nonzero[0] if nonzero.size else 0.0
        denom = max(cdf[-1] - cdf_min, 1.0)
        lut = np.clip((cdf - cdf_min) / denom, 0.0, 1.0)
        out[i] = lut[levels]
    return (out[0] if single else out).astype(np.float32)


def clahe_layer(clip_limit: float = 2.0, tile_grid_size: tuple[int, int] = (4, 4)):
    """CLAHE as a Keras layer: ``keras.layers.ContrastLimitedAdaptiveHistogramEqualization``.

    Contrast-limited adaptive histogram equalization equalizes each tile of the image separately
    (local contrast: ribs, vessels, lung texture) and caps each tile's histogram at
    ``clip_limit`` so noise is not amplified.

    Args:
        clip_limit: Histogram clip limit (higher = stronger local contrast).
        tile_grid_size: Tiles along (rows, columns); use few tiles for 28 px images.

    Returns:
        The Keras layer, set up for [0, 1] inputs.

    Raises:
        ValueError: If ``clip_limit`` is not a finite number > 0 or ``tile_grid_size`` is not
            two whole numbers >= 1.
        NotImplementedError: Under the torch backend, where Keras 3.15's layer returns its input
            almost unchanged (measured: largest change 0.004 where TensorFlow and JAX change
            pixels by 0.14). The NumPy function :func:`clahe` still works there.
    """
    if keras.backend.backend() == "torch":
        raise NotImplementedError(
            "Keras' CLAHE layer does not equalize under the torch backend (it returns its input "
            "almost unchanged): put CLAHE in a model under KERAS_BACKEND=tensorflow or jax, or "
            "apply xraykit.preprocessing.clahe to the images before training.")
    return _clahe_keras_layer(clip_limit, tile_grid_size)


def _clahe_keras_layer(clip_limit, tile_grid_size):
    """Keras' CLAHE layer for [0, 1] inputs, its settings checked (see :func:`clahe_layer`)."""
    clip_limit = check_positive(clip_limit, "clip_limit", what="the histogram clip limit")
    if np.ndim(tile_grid_size) != 1 or len(tile_grid_size) != 2:
        raise ValueError(f"tile_grid_size must be (rows, columns), not {tile_grid_size!r}.")
    tile_grid_size = tuple(check_count(n, "tile_grid_size") for n in tile_grid_size)
    return keras.layers.ContrastLimitedAdaptiveHistogramEqualization(
        value_range=(0, 1), clip_limit=clip_limit, tile_grid_size=tuple(tile_grid_size))


def _clahe_numpy_layer(clip_limit, tile_grid_size):
    """The CLAHE layer for NumPy use; under torch it computes with JAX or TensorFlow instead."""
    layer = _clahe_keras_layer(clip_limit, tile_grid_size)
    if keras.backend.backend() != "torch":
        return layer
    for name in ("jax", "tensorflow"):
        if importlib.util.find_spec(name) is not None:
            layer.backend.set_backend(name)  # as Keras does for its layers inside tf.data
            return layer
    raise NotImplementedError(
        "clahe under the torch backend needs jax or tensorflow installed (Keras' CLAHE layer "
        "does not equalize under torch): pip install jax, or set KERAS_BACKEND=tensorflow.")


def clahe(x, clip_limit: float = 2.0, tile_grid_size: tuple[int, int] = (4, 4)) -> np.ndarray:
    """CLAHE on NumPy images, through Keras' layer (see :func:`clahe_layer`).

    Args:
        x: Image ``(H, W[, 1])`` or batch ``(N, H, W, 1)`` in [0, 1].
        clip_limit: Histogram clip limit.
        tile_grid_size: Tiles along (rows, columns).

    Returns:
        Float32 array of the same shape in [0, 1].

    Raises:
        ValueError: If the input is outside [0, 1] or not finite, or the CLAHE settings are
            refused by :func:`clahe_layer`.
    """
    x = check_unit_range(x)
    shape = x.shape
    if x.ndim == 2:
        batch = x[None, ..., None]
    elif x.ndim == 3:
        batch = x[None] if shape[-1] == 1 else x[..., None]
    elif x.ndim == 4 and shape[-1] == 1:
        batch = x
    else:
        raise ValueError(f"clahe expects grayscale (H, W[, 1]) or (N, H, W[, 1]), got {shape}.")
    out = np.asarray(_clahe_numpy_layer(clip_limit, tile_grid_size)(batch))
    return np.clip(out, 0.0, 1.0).astype(np.float32).reshape(shape)


def resize_layer(size: int, mode: str = "pad") -> keras.layers.Resizing:
    """The in-model version of :func:`resize_batch`: a ``keras.layers.Resizing`` layer.

    Args:
        size: Output side in pixels.
        mode: ``"pad"`` (``pad_to_aspect_ratio``) or ``"crop"`` (``crop_to_aspect_ratio``).

    Returns:
        A configured ``keras.layers.Resizing``.

    Raises:
        ValueError: On an unknown mode.
    """
    if mode not in ("pad", "crop"):
        raise ValueError(f"mode must be 'pad' or 'crop', not {mode!r}.")
    return keras.layers.Resizing(size, size, pad_to_aspect_ratio=(mode == "pad"),
                                 crop_to_aspect_ratio=(mode == "crop"), fill_value=0.0)


def backbone_convention(backbone: str) -> str:
    """The input convention (a key of the list in :data:`BACKBONE_CONVENTIONS`) of a backbone.

    Args:
        backbone: A backbone name (``"densenet121"``, ``"resnet50v2"``, …) or a mode name
            (``"unit"``, ``"raw255"``, ``"tf"``, ``"torch"``, ``"caffe"``).

    Returns:
        The mode name.

    Raises:
        ValueError: For an unknown backbone.
    """
    key = backbone.lower().replace("-", "_")
    if key in _MODES:
        return key
    compact = key.replace("_", "")
    for name, mode in BACKBONE_CONVENTIONS.items():
        if name.replace("_", "") == compact:
            return mode
    raise ValueError(f"unknown backbone {backbone!r}: use one of {sorted(BACKBONE_CONVENTIONS)} "
                     f"or a mode {list(_MODES)}.")


def backbone_affine(backbone: str) -> tuple[list[float], list[float], bool]:
    """The numbers of a backbone's input convention, for RGB images in [0, 1].

    Every convention is ``out[..., c] = rgb[..., order][..., c] * scale[c] + offset[c]``, with the
    channels reversed (RGB → BGR) for ``"caffe"``. The numbers are read from
    ``keras.applications.imagenet_utils.preprocess_input`` (its output for black and white), so
    they follow Keras.

    Args:
        backbone: Backbone or mode name (see :data:`BACKBONE_CONVENTIONS`).

    Returns:
        ``(scale, offset, reverse_channels)``: two lists of three floats and a flag.

    Raises:
        ValueError: For an unknown backbone.
    """
    mode = backbone_convention(backbone)
    if mode in ("unit", "raw255"):
        return [1.0 if mode == "unit" else 255.0] * 3, [0.0] * 3, False
    black, white = (keras.applications.imagenet_utils.preprocess_input(
        np.full((1, 3), value, np.float32), data_format="channels_last", mode=mode)[0]
        for value in (0.0, 255.0))
    return (white - black).astype(float).tolist(), black.astype(float).tolist(), mode == "caffe"


@_register
class ToRGB(keras.layers.Layer):
    """Grayscale [0, 1] → 3 channels in a backbone's ImageNet input convention, inside a model.

    Put it between the ``(H, W, 1)`` input and a ``keras.applications`` backbone so the saved
    model takes the same [0, 1] grayscale images as every other xraykit model. Its config holds
    the numbers (per-channel scale and offset, channel order), not a backbone name.

    Args:
        backbone: Backbone or mode name (see :data:`BACKBONE_CONVENTIONS`) whose numbers to
            use (:func:`backbone_affine`); or ``None`` to give them yourself.
        scale: Per-channel factors (three floats), with ``backbone=None``.
        offset: Per-channel offsets (three floats), with ``backbone=None``.
        reverse_channels: Whether RGB becomes BGR before scaling, with ``backbone=None``.
        **kwargs: Standard layer arguments.

    Raises:
        ValueError: For an unknown backbone, or a scale/offset that is not three numbers.

    Example:
        >>> layer = ToRGB("densenet121")    # ImageNet mean/std, as DenseNet's preprocess_input
    """

    def __init__(self, backbone: str | None = None, scale=(1.0, 1.0, 1.0),
                 offset=(0.0, 0.0, 0.0), reverse_channels: bool = False, **kwargs):
        super().__init__(**kwargs)
        if backbone is not None:
            scale, offset, reverse_channels = backbone_affine(backbone)
        numbers = [np.asarray(v, np.float64).ravel() for v in (scale, offset)]
        if any(v.shape != (3,) or not np.isfinite(v).all() for v in numbers):
            raise ValueError(f"ToRGB: scale and offset must be three finite numbers each; got "
                             f"{scale!r} and {offset!r}.")
        self.scale, self.offset = (v.tolist() for v in numbers)
        self.reverse_channels = bool(reverse_channels)

    def call(self, inputs):
        """Applies the layer."""
        x = ops.cast(inputs, self.compute_dtype)
        if x.shape[-1] == 1:
            x = ops.concatenate([x, x, x], axis=-1)
        elif self.reverse_channels:
            x = ops.flip(x, axis=-1)
        scale = ops.convert_to_tensor(self.scale, dtype=self.compute_dtype)
        offset = ops.convert_to_tensor(self.offset, dtype=self.compute_dtype)
        return x * scale + offset

    def compute_output_shape(self, input_shape):
        """Output shape for an input shape."""
        return tuple(input_shape[:-1]) + (3,)

    def get_config(self):
        """Config for saving; ``from_config`` rebuilds the object from it."""
        return {**super().get_config(), "scale": self.scale, "offset": self.offset,
                "reverse_channels": self.reverse_channels}


def to_backbone_range(rgb, backbone: str) -> np.ndarray:
    """Maps RGB images in [0, 1] to a backbone's input convention (runs :class:`ToRGB`).

    The same as ``keras.applications.imagenet_utils.preprocess_input(rgb * 255, mode=...)``
    for the ``"tf"``, ``"torch"`` and ``"caffe"`` conventions; ``* 255`` for backbones that
    rescale inside; unchanged for ``"unit"``.

    Args:
        rgb: ``(..., H, W, 3)`` RGB values in [0, 1] (not range-checked).
        backbone: Backbone or mode name (see :data:`BACKBONE_CONVENTIONS`).

    Returns:
        Float32 array of the same shape.

    Raises:
        ValueError: For an unknown backbone or an input whose last axis is not 3.
    """
    layer = ToRGB(backbone, dtype="float32")
    rgb = np.asarray(rgb, dtype=np.float32)
    if rgb.ndim == 0 or rgb.shape[-1] != 3:
        raise ValueError(f"to_backbone_range expects RGB (..., 3), got shape {rgb.shape}.")
    return np.asarray(ops.convert_to_numpy(layer(rgb)), dtype=np.float32)


def backbone_range_layer(backbone: str, name: str | None = None):
    """A built-in Keras layer doing :func:`to_backbone_range` on RGB [0, 1] inside a model.

    The numbers are :func:`backbone_affine`'s, in a ``keras.layers.Rescaling`` or
    ``Normalization``, so a saved model loads without xraykit. ``"caffe"`` (a channel swap, not a
    per-channel affine map) has no such layer: use :class:`ToRGB`.

    Args:
        backbone: Backbone or mode name (see :data:`BACKBONE_CONVENTIONS`).
        name: Layer name (default: one that says what the layer does).

    Returns:
        The layer, or ``None`` for the ``"unit"`` convention (nothing to do).

    Raises:
        ValueError: For an unknown backbone, or a ``"caffe"`` one.
    """
    mode = backbone_convention(backbone)
    if mode == "unit":
        return None
    if mode == "caffe":
        raise ValueError(f"{backbone!r} expects BGR input ('caffe'): use the ToRGB layer.")
    scale, offset, _ = (np.asarray(v) for v in backbone_affine(mode))
    if np.allclose(scale, scale[0]) and np.allclose(offset, offset[0]):
        return keras.layers.Rescaling(float(scale[0]), offset=float(offset[0]),
                                      name=name or ("to_0_255" if mode == "raw255"
                                                    else "to_minus1_1"))
    std = 1.0 / scale
    return keras.layers.Normalization(mean=(-offset * std).tolist(), variance=(std ** 2).tolist(),
                                      name=name or "imagenet_normalization")


def to_rgb(x, backbone: str = "unit") -> np.ndarray:
    """Grayscale [0, 1] images → 3 channels in a backbone's convention (runs :class:`ToRGB`).

    Equivalent to ``keras.applications.<module>.preprocess_input(np.repeat(x, 3, -1) * 255)``
    for that backbone (see :data:`BACKBONE_CONVENTIONS` and :func:`backbone_affine`).

    Args:
        x: ``(H, W)``, ``(H, W, 1)`` or ``(N, H, W, 1)`` images in [0, 1].
        backbone: Backbone or mode name.

    Returns:
        Float32 array with a last axis of 3.

    Raises:
        ValueError: If the input is outside [0, 1] or the backbone is unknown.
    """
    layer = ToRGB(backbone, dtype="float32")  # an unknown name fails before the range check
    x = check_unit_range(x)
    if x.ndim == 2 or x.shape[-1] != 1:
        x = x[..., None]
    return np.asarray(ops.convert_to_numpy(layer(x)), dtype=np.float32)


def XRVScale(maxval: float = 1.0, **kwargs) -> keras.layers.Rescaling:  # noqa: N802 (layer-like name)
    """TorchXRayVision scale inside a model: ``(2 * x / maxval - 1) * 1024``.

    A built-in ``keras.layers.Rescaling(2048 / maxval, offset=-1024)``, so a model using it
    loads anywhere without xraykit.

    Args:
        maxval: Largest possible input value (1 for [0, 1] images).
        **kwargs: Standard layer arguments (``name=``...).

    Returns:
        The ``keras.layers.Rescaling`` layer (named ``"xrv_scale"`` unless ``name`` is given).

    Raises:
        ValueError: If ``maxval <= 0``.
    """
    if not maxval > 0:
        raise ValueError(f"maxval must be > 0, got {maxval}.")
    kwargs.setdefault("name", "xrv_scale")
    return keras.layers.Rescaling(2048.0 / float(maxval), offset=-1024.0, **kwargs)
