"""Random rotation, translation and zoom in one resampling: the ``RandomAffine`` layer.

``keras.layers.RandomRotation``, ``RandomTranslation`` and ``RandomZoom`` in a row resample every
image three times: three passes over the pixels, three bilinear blurs, and, under JAX, a model
that is never compiled (these three layers declare ``supports_jit = False``, which switches
``jit_compile`` off for the whole training step). :class:`RandomAffine` draws the same three
parameters per image, composes them into one 3x3 matrix and resamples once with
``keras.ops.image.affine_transform``.

The composition, written out. ``affine_transform`` takes, per image, the matrix that maps an
*output* pixel ``(x, y)`` (column, row) to the *input* point it samples. Each built-in layer's
matrix is one of (``c`` = the image centre, ``((W - 1) / 2, (H - 1) / 2)``)::

    rotation     R = C · [[cos a, -sin a, 0], [sin a, cos a, 0], [0, 0, 1]] · C⁻¹
    translation  T = [[1, 0, -tx], [0, 1, -ty], [0, 0, 1]]            (tx, ty in pixels)
    zoom         Z = C · [[z, 0, 0], [0, z, 0], [0, 0, 1]] · C⁻¹      (z > 1 zooms out)

with ``C`` the shift by ``c``. Applied in the presets' order, rotation → translation → zoom, the
image after the three layers is ``out(p) = zoomed(Z p) = shifted(T Z p) = rotated(R T Z p) =
in(R T Z p)``: one matrix ``M = R · T · Z``. Since ``T`` commutes with ``C``,
``M = C · rot(a) · T · zoom(z) · C⁻¹``.

The draws are those of the three layers: with ``seed=s`` the rotation angle, the two shifts and
the zoom are the numbers ``RandomRotation(seed=s)``, ``RandomTranslation(seed=s + 1)`` and
``RandomZoom(seed=s + 2)`` draw on the same backend, so the fused and the three-layer pipeline
can be compared image by image. One resampling instead of three is also a little sharper, and
content that an intermediate step would have pushed out of the frame and a later zoom-out
would have brought back stays visible instead of turning black.
"""

from __future__ import annotations

import math
import sys

import keras
from keras import ops

__all__ = ["RandomAffine", "affine_matrix"]

_FILL_MODES = ("constant", "nearest", "reflect", "wrap")
_INTERPOLATIONS = ("bilinear", "nearest")


def _factor_range(value, name: str, low: float, high: float) -> tuple[float, float]:
    """``f`` → ``(-|f|, |f|)``, ``(a, b)`` → sorted; both checked against ``[low, high]``."""
    if isinstance(value, (int, float)):
        lower, upper = -abs(float(value)), abs(float(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        lower, upper = sorted(float(v) for v in value)
    else:
        raise ValueError(f"RandomAffine: {name} must be a number or a pair (lower, upper), "
                         f"got {value!r}.")
    if not (math.isfinite(lower) and math.isfinite(upper)) or lower < low or upper > high or (
            name == "zoom_factor" and lower <= -1.0):
        raise ValueError(f"RandomAffine: {name}={value!r} is out of range: use values in "
                         f"{'(-1, 1]' if name == 'zoom_factor' else f'[{low}, {high}]'}.")
    return lower, upper


def affine_matrix(angle, shift_x, shift_y, zoom, height, width):
    """Output → input matrices of a rotation, then a translation, then a zoom about the centre.

    Args:
        angle: ``(N,)`` rotation angles in radians (``keras.layers.RandomRotation``'s sign).
        shift_x: ``(N,)`` horizontal shifts in pixels (positive moves the image right).
        shift_y: ``(N,)`` vertical shifts in pixels (positive moves the image down).
        zoom: ``(N,)`` scale of the sampling grid (``> 1`` zooms out, as ``RandomZoom``).
        height: Image height in pixels.
        width: Image width in pixels.

    Returns:
        ``(N, 3, 3)`` float32 matrices ``M = R · T · Z`` (module docstring); the first 8 entries
        of each, flattened, are the transform of ``keras.ops.image.affine_transform``.
    """
    angle = ops.reshape(ops.cast(angle, "float32"), (-1,))
    shift_x = ops.reshape(ops.cast(shift_x, "float32"), (-1,))
    shift_y = ops.reshape(ops.cast(shift_y, "float32"), (-1,))
    zoom = ops.reshape(ops.cast(zoom, "float32"), (-1,))
    zeros, ones = ops.zeros_like(angle), ops.ones_like(angle)
    cx = (ops.cast(width, "float32") - 1.0) / 2.0 * ones
    cy = (ops.cast(height, "float32") - 1.0) / 2.0 * ones
    cos, sin = ops.cos(angle), ops.sin(angle)

    def matrices(*rows):  # nine (N,) entries, row by row → (N, 3, 3)
        return ops.reshape(ops.stack(rows, axis=-1), (-1, 3, 3))

    to_pixels = matrices(ones, zeros, cx, zeros, ones, cy, zeros, zeros, ones)
    to_centred = matrices(ones, zeros, -cx, zeros, ones, -cy, zeros, zeros, ones)
    rotation = matrices(cos, -sin, zeros, sin, cos, zeros, zeros, zeros, ones)
    translation = matrices(ones, zeros, -shift_x, zeros, ones, -shift_y, zeros, zeros, ones)
    scaling = matrices(zoom, zeros, zeros, zeros, zoom, zeros, zeros, zeros, ones)
    return ops.matmul(ops.matmul(ops.matmul(ops.matmul(
        to_pixels, rotation), translation), scaling), to_centred)


@keras.saving.register_keras_serializable(package="xraykit")
class RandomAffine(keras.layers.Layer):
    """Random rotation, translation and zoom of each image, resampled once.

    Draws what ``keras.layers.RandomRotation(rotation_factor)``,
    ``RandomTranslation(translation_factor, translation_factor)`` and
    ``RandomZoom(zoom_factor)`` would draw, composes the three in that order about the image
    centre (module docstring) and applies the result with ``keras.ops.image.affine_transform``.
    Active only in training (``fit``) or when called with ``training=True`` (the default when
    called on its own, like Keras' augmentation layers); at inference it returns its input.

    Works inside a model under every backend (under JAX the training step stays compiled) and in
    a ``tf.data`` pipeline under the TensorFlow backend.

    Example:
    ```python
    layer = RandomAffine(rotation_factor=5 / 360, translation_factor=0.05, zoom_factor=0.05,
                         seed=0)
    augmented = layer(images)                  # (N, H, W, C), a new draw per image and call
    same = layer(images, training=False)       # unchanged
    ```

    Args:
        rotation_factor: Rotation as a fraction of a full turn, as ``RandomRotation``'s
            ``factor``: ``f`` draws the angle uniformly in ``[-f, f] · 2π`` (positive = counter-
            clockwise), ``(a, b)`` in ``[a, b] · 2π``.
        translation_factor: Shift as a fraction of the height (vertical) and of the width
            (horizontal), drawn independently per axis, uniformly in ``[-f, f]`` or ``[a, b]``.
        zoom_factor: As ``RandomZoom``'s ``height_factor`` (the width follows the height): the
            sampling grid is scaled by ``1 + u``, ``u`` uniform in ``[-f, f]`` or ``[a, b]``;
            positive values zoom out (the chest looks smaller), negative ones zoom in.
        fill_mode: Points outside the input: ``"constant"`` (``fill_value``; the default, black,
            like the padding of a square resize), ``"nearest"``, ``"reflect"`` or ``"wrap"``.
        interpolation: ``"bilinear"`` or ``"nearest"``.
        fill_value: The constant of ``fill_mode="constant"``.
        seed: Seed of the draws (the three built-in layers' seeds are ``seed``, ``seed + 1``,
            ``seed + 2``); ``None`` draws differently in every process.
        data_format: ``"channels_last"`` or ``"channels_first"`` (default: Keras' setting).
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, ``dtype``).

    Raises:
        ValueError: On a factor out of range or an unknown fill mode or interpolation.
    """

    def __init__(self, rotation_factor=0.0, translation_factor=0.0, zoom_factor=0.0,
                 fill_mode: str = "constant", interpolation: str = "bilinear",
                 fill_value: float = 0.0, seed: int | None = None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.rotation_factor, self.translation_factor = rotation_factor, translation_factor
        self.zoom_factor = zoom_factor
        self._rotation = _factor_range(rotation_factor, "rotation_factor", -1.0, 1.0)
        self._translation = _factor_range(translation_factor, "translation_factor", -1.0, 1.0)
        self._zoom = _factor_range(zoom_factor, "zoom_factor", -1.0, 1.0)
        for option, value, allowed in (("fill_mode", fill_mode, _FILL_MODES),
                                       ("interpolation", interpolation, _INTERPOLATIONS)):
            if value not in allowed:
                raise ValueError(f"RandomAffine: unknown {option} {value!r}: use one of "
                                 f"{list(allowed)}.")
        self.fill_mode, self.interpolation = fill_mode, interpolation
        self.fill_value = float(fill_value)
        self.seed = seed
        self.data_format = data_format or keras.config.image_data_format()
        if self.data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"RandomAffine: data_format must be 'channels_last' or "
                             f"'channels_first', got {data_format!r}.")
        seeds = (None, None, None) if seed is None else (seed, seed + 1, seed + 2)
        self.rotation_generator = keras.random.SeedGenerator(seeds[0])
        self.translation_generator = keras.random.SeedGenerator(seeds[1])
        self.zoom_generator = keras.random.SeedGenerator(seeds[2])
        # TensorFlow's XLA has no kernel for ImageProjectiveTransformV3 (the op behind
        # affine_transform there); JAX's version is plain jnp and compiles.
        self.supports_jit = keras.backend.backend() != "tensorflow"

    def __call__(self, inputs, *args, **kwargs):
        """Refuses, with the fix in the message, a ``tf.data`` graph under another backend."""
        if keras.backend.backend() != "tensorflow" and "tensorflow" in sys.modules:
            tf = sys.modules["tensorflow"]
            if isinstance(inputs, tf.Tensor) and not tf.executing_eagerly():
                raise ValueError(
                    f"RandomAffine runs in a tf.data pipeline only under KERAS_BACKEND=tensorflow "
                    f"(this is {keras.backend.backend()}): put it inside the model, or use "
                    "xraykit.augmentation.augmented_dataset (a keras.utils.PyDataset here).")
        return super().__call__(inputs, *args, **kwargs)

    def _image_axes(self, shape) -> tuple[int, int]:
        return (shape[-3], shape[-2]) if self.data_format == "channels_last" \
            else (shape[-2], shape[-1])

    def get_random_transformation(self, images, training: bool = True):
        """Draws one rotation, shift and zoom per image and their composed matrix.

        Args:
            images: A batch ``(N, H, W, C)`` (or ``(N, C, H, W)``), or one image.
            training: ``False`` draws nothing.

        Returns:
            ``None`` when not training, else a dict: ``angle`` ``(N,)`` in radians,
            ``shift_x``/``shift_y`` ``(N,)`` in pixels, ``zoom`` ``(N,)`` (the grid's scale),
            ``transform`` ``(N, 8)`` (the input of ``keras.ops.image.affine_transform``).
        """
        if not training:
            return None
        shape = ops.shape(images)
        batch = shape[0] if len(shape) == 4 else 1
        height, width = self._image_axes(shape)
        (r_lo, r_hi), (t_lo, t_hi), (z_lo, z_hi) = self._rotation, self._translation, self._zoom
        # Drawn as RandomRotation, RandomTranslation and RandomZoom draw (same shapes, order and
        # units), so the same seeds give the same numbers.
        degrees = keras.random.uniform((batch,), r_lo * 360.0, r_hi * 360.0,
                                       seed=self.rotation_generator)
        angle = degrees * ops.convert_to_tensor(math.pi / 180.0)
        shift_y = keras.random.uniform((batch, 1), t_lo, t_hi,
                                       seed=self.translation_generator) * height
        shift_x = keras.random.uniform((batch, 1), t_lo, t_hi,
                                       seed=self.translation_generator) * width
        zoom = keras.random.uniform((batch, 1), 1.0 + z_lo, 1.0 + z_hi, seed=self.zoom_generator)
        matrix = affine_matrix(angle, shift_x, shift_y, zoom, height, width)
        return {"angle": angle, "shift_x": ops.reshape(shift_x, (-1,)),
                "shift_y": ops.reshape(shift_y, (-1,)), "zoom": ops.reshape(zoom, (-1,)),
                "transform": ops.reshape(matrix, (-1, 9))[:, :8]}

    def call(self, inputs, training=True):
        """Augments ``(N, H, W, C)`` images (or one image) when training; else returns them."""
        images = ops.cast(inputs, self.compute_dtype)
        if not training:
            return images
        unbatched = len(images.shape) == 3
        if unbatched:
            images = ops.expand_dims(images, 0)
        transformation = self.get_random_transformation(images, training=True)
        outputs = ops.image.affine_transform(
            images, transformation["transform"], interpolation=self.interpolation,
            fill_mode=self.fill_mode, fill_value=self.fill_value, data_format=self.data_format)
        return ops.squeeze(outputs, 0) if unbatched else outputs

    def compute_output_shape(self, input_shape):
        """The input's shape."""
        return input_shape

    def get_config(self):
        """Config for saving; ``from_config`` rebuilds the layer from it."""
        return {**super().get_config(), "rotation_factor": self.rotation_factor,
                "translation_factor": self.translation_factor, "zoom_factor": self.zoom_factor,
                "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "fill_value": self.fill_value, "seed": self.seed, "data_format": self.data_format}
