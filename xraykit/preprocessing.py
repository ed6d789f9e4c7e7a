"""Intensity normalization, contrast, windowing, resizing and channel conventions for radiographs.

Every operation exists as a NumPy function (for looking at data, for a practitioner's own
pipeline) and, where it belongs *inside* a model, as a backend-agnostic Keras layer that is
saved and reloaded with the model (a built-in Keras layer where one does the job; the custom ones
are defined and registered in :mod:`xraykit.keras_objects` and re-exported here).

Input convention: images are float ``(H, W)``, ``(H, W, 1)`` or ``(N, H, W, 1)`` in [0, 1], as
every xraykit loader returns them. Functions that rely on that range check it with
:func:`check_unit_range` and fail with a message that says how to fix the input.

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
backbone input range      ``to_backbone_range``       ``ToRGB`` (``imagenet_utils``)
========================  ==========================  =========================================
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from xraykit.images import resize_square
from xraykit.keras_objects import PerImageMinMax, PerImageStandardize, ToRGB, Window

__all__ = [
    "BACKBONE_CONVENTIONS", "PerImageMinMax", "PerImageStandardize", "ToRGB", "Window", "XRVScale",
    "backbone_convention", "check_unit_range", "clahe", "clahe_layer", "dataset_normalizer",
    "backbone_range_layer", "dataset_stats", "equalize_hist", "minmax", "resize_batch",
    "resize_layer",
    "to_backbone_range", "to_rgb", "window", "xrv_scale",
]

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


def check_unit_range(x, name: str = "images", atol: float = 1e-4) -> np.ndarray:
    """Checks that an array is finite and in [0, 1], as xraykit's functions expect.

    Like TorchXRayVision's ``normalize`` check, but the message says what to do.

    Args:
        x: Array-like of image intensities.
        name: What to call the array in the error message.
        atol: Tolerance for values just outside [0, 1] (rounding).

    Returns:
        The input as a float32 NumPy array (clipped to [0, 1] within the tolerance).

    Raises:
        ValueError: If the array holds NaN/inf, or values outside [0, 1] (e.g. raw 0-255 pixels
            or already-normalized data).
    """
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}).")
    finite = np.isfinite(x)
    if not finite.all():
        bad = int((~finite).sum())
        raise ValueError(
            f"{name} contains {bad} NaN/inf values: find where they come from (a failed read, a "
            "division by a zero std) or replace them, e.g. np.nan_to_num(x), before preprocessing."
        )
    lo, hi = float(x.min()), float(x.max())
    if lo < -atol or hi > 1 + atol:
        if hi > 1 and hi <= 255 and lo >= 0:
            hint = "it looks like 8-bit pixels: divide by 255 (or use xraykit.read_image)"
        elif hi > 255 and lo >= 0:
            hint = ("it looks like 12/16-bit pixels: divide by the maximum stored value, "
                    "or read the file with xraykit.read_image / read_dicom")
        else:
            hint = ("it looks already normalized (negative values): pass the [0, 1] images, "
                    "or rescale with xraykit.preprocessing.minmax")
        raise ValueError(f"{name} must be in [0, 1] but spans [{lo:.4g}, {hi:.4g}]; {hint}.")
    return np.clip(x, 0.0, 1.0)


def _per_image_axes(x: np.ndarray) -> tuple[int, ...]:
    if x.ndim == 2:
        return (0, 1)
    if x.ndim == 3:
        # (H, W, C) with a channel axis, else a batch of 2-D images (N, H, W).
        return (0, 1, 2) if x.shape[-1] in (1, 3) else (1, 2)
    if x.ndim == 4:
        return (1, 2, 3)
    raise ValueError(f"expected an image (H, W[, C]) or a batch (N, H, W, C), got shape {x.shape}.")


def minmax(x, eps: float = 1e-7) -> np.ndarray:
    """Rescales each image to [0, 1] by its own minimum and maximum.

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
    if not np.isfinite(x).all():
        raise ValueError("minmax: input contains NaN/inf; replace them (np.nan_to_num) first.")
    axes = _per_image_axes(x)
    lo = x.min(axis=axes, keepdims=True)
    hi = x.max(axis=axes, keepdims=True)
    return ((x - lo) / np.maximum(hi - lo, eps)).astype(np.float32)


def zscore(x, eps: float = 1e-6) -> np.ndarray:
    """Per-image z-score: subtracts each image's mean and divides by its standard deviation.

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
    x = check_unit_range(x)
    axes = _per_image_axes(x)
    mean = x.mean(axis=axes, keepdims=True)
    std = x.std(axis=axes, keepdims=True)
    return ((x - mean) / np.maximum(std, eps)).astype(np.float32)


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


def window(x, center: float, width: float) -> np.ndarray:
    """Window/level: maps ``[center - width/2, center + width/2]`` to [0, 1] and clips outside.

    Center and width are in the same units as ``x`` (e.g. 0.5/0.4 for [0, 1] images, or raw
    stored values for a DICOM read without a window).

    Args:
        x: Image(s), any finite range.
        center: Window center (level).
        width: Window width (> 0).

    Returns:
        Float32 array in [0, 1].

    Raises:
        ValueError: If ``width <= 0`` or the input is not finite.
    """
    if width <= 0:
        raise ValueError(f"window width must be > 0, got {width}.")
    x = np.asarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError("window: input contains NaN/inf; replace them (np.nan_to_num) first.")
    low = center - width / 2.0
    return np.clip((x - low) / width, 0.0, 1.0).astype(np.float32)


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
        ValueError: If the input is outside [0, 1] or not finite.
    """
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
    """
    return keras.layers.ContrastLimitedAdaptiveHistogramEqualization(
        value_range=(0, 1), clip_limit=clip_limit, tile_grid_size=tuple(tile_grid_size))


def clahe(x, clip_limit: float = 2.0, tile_grid_size: tuple[int, int] = (4, 4)) -> np.ndarray:
    """CLAHE on NumPy images, through Keras' layer (see :func:`clahe_layer`).

    Args:
        x: Image ``(H, W[, 1])`` or batch ``(N, H, W, 1)`` in [0, 1].
        clip_limit: Histogram clip limit.
        tile_grid_size: Tiles along (rows, columns).

    Returns:
        Float32 array of the same shape in [0, 1].

    Raises:
        ValueError: If the input is outside [0, 1] or not finite.
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
    out = ops.convert_to_numpy(clahe_layer(clip_limit, tile_grid_size)(batch))
    return np.clip(out, 0.0, 1.0).astype(np.float32).reshape(shape)


def resize_batch(images, size: int, mode: str = "pad") -> np.ndarray:
    """Resizes a batch of images to ``size x size`` keeping aspect (pad) or center-cropping.

    Uses :func:`xraykit.images.resize_square` image by image.

    Args:
        images: ``(H, W)``, ``(N, H, W)`` or ``(N, H, W, 1)`` array.
        size: Output side in pixels.
        mode: ``"pad"`` (whole image, black borders) or ``"crop"`` (fill, cut the long side).

    Returns:
        Float32 ``(size, size)`` for one 2-D image, else ``(N, size, size, 1)``.

    Raises:
        ValueError: On an unknown mode or an unsupported shape.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 2:
        return resize_square(images, size, mode)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(f"resize_batch expects (N, H, W) or (N, H, W, 1), got {images.shape}.")
    return np.stack([resize_square(img, size, mode) for img in images])[..., None]


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


def to_backbone_range(rgb, backbone: str):
    """Maps RGB images in [0, 1] to a backbone's input convention (NumPy or a backend tensor).

    ``keras.applications.imagenet_utils.preprocess_input(rgb * 255, mode=...)`` for the
    ``"tf"``, ``"torch"`` and ``"caffe"`` conventions; ``* 255`` for backbones that rescale
    inside; unchanged for ``"unit"``. :class:`ToRGB` calls it inside a model.

    Args:
        rgb: ``(..., 3)`` RGB values in [0, 1] (not checked, so tensors pass through).
        backbone: Backbone or mode name (see :data:`BACKBONE_CONVENTIONS`).

    Returns:
        The converted array or tensor (NumPy in, NumPy float32 out).

    Raises:
        ValueError: For an unknown backbone.
    """
    mode = backbone_convention(backbone)
    if mode == "unit":
        return rgb
    scaled = rgb * 255.0
    if mode == "raw255":
        return scaled
    if isinstance(scaled, np.ndarray):
        scaled = scaled.astype(np.float32)
    return keras.applications.imagenet_utils.preprocess_input(
        scaled, data_format="channels_last", mode=mode)


def backbone_range_layer(backbone: str, name: str | None = None):
    """A built-in Keras layer doing :func:`to_backbone_range` on RGB [0, 1] inside a model.

    Its numbers are read from ``keras.applications.imagenet_utils.preprocess_input`` (its output
    for black and white), and it is a ``keras.layers.Rescaling`` or ``Normalization``, so a saved
    model loads without xraykit. ``"caffe"`` (a channel swap, not a per-channel affine map) has
    no such layer: use :class:`ToRGB`.

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
    black, white = (to_backbone_range(np.full((1, 3), v, np.float32), mode)[0] for v in (0, 1))
    scale = white - black
    if np.allclose(scale, scale[0]) and np.allclose(black, black[0]):
        return keras.layers.Rescaling(float(scale[0]), offset=float(black[0]),
                                      name=name or ("to_0_255" if mode == "raw255"
                                                    else "to_minus1_1"))
    std = 1.0 / scale
    return keras.layers.Normalization(mean=(-black * std).tolist(), variance=(std ** 2).tolist(),
                                      name=name or "imagenet_normalization")


def to_rgb(x, backbone: str = "unit") -> np.ndarray:
    """Grayscale [0, 1] images → 3 channels in a ``keras.applications`` backbone's convention.

    Equivalent to ``keras.applications.<module>.preprocess_input(np.repeat(x, 3, -1) * 255)``
    for that backbone (see :data:`BACKBONE_CONVENTIONS` and :func:`to_backbone_range`).

    Args:
        x: ``(H, W)``, ``(H, W, 1)`` or ``(N, H, W, 1)`` images in [0, 1].
        backbone: Backbone or mode name.

    Returns:
        Float32 array with a last axis of 3.

    Raises:
        ValueError: If the input is outside [0, 1] or the backbone is unknown.
    """
    backbone_convention(backbone)  # an unknown name fails before the range check
    x = check_unit_range(x)
    if x.ndim == 2 or x.shape[-1] != 1:
        x = x[..., None]
    rgb = np.repeat(x, 3, axis=-1)
    return np.asarray(to_backbone_range(rgb, backbone), dtype=np.float32)


# --------------------------------------------------------------------------------------------
# Keras layers (backend-agnostic, serializable with the model). The custom classes
# (PerImageStandardize, PerImageMinMax, Window, ToRGB) live in xraykit.keras_objects so that
# one import registers them for loading; they are imported at the top of this module.
# --------------------------------------------------------------------------------------------


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
