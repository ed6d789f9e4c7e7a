"""X-ray-safe data augmentation presets of ``keras.layers`` and one fused geometric layer.

Why these choices (chest radiographs are not natural photos):

- **Small rotations and shifts** only: patients are positioned upright and centred; a few degrees
  of tilt and a few percent of shift are what real acquisitions vary by. Large rotations make
  anatomy that never occurs.
- **No vertical flip**: an upside-down chest never reaches a model.
- **Horizontal flip off by default**: the heart sits on the patient's left (dextrocardia is rare
  and a finding itself), and burned-in laterality markers ("L"/"R") would contradict the flipped
  anatomy. Turn it on (``horizontal_flip=True``) only for a task where laterality does not matter.
- **Mild intensity changes** (contrast, brightness, noise, blur) imitate different exposures,
  detectors and post-processing.
- **Random erasing** (heavy only) forces the model to use more than one region.
- **No RandAugment in the presets**: its operation set includes solarization, posterization and
  colour operations that invert or quantize intensities (bright = dense tissue on a radiograph)
  and rotations/shears up to its magnitude; :func:`randaugment` gives it to you to compare.

Every preset is a ``keras.layers.Pipeline`` that works (a) inside a model (put it after the
``Input``; it is active only in training and runs on the accelerator) and (b) in an input
pipeline: ``tf.data`` under TensorFlow or a ``keras.utils.PyDataset`` under any backend
(:func:`augmented_dataset`). Inputs are images in [0, 1]; outputs are clipped back to [0, 1]
(``keras.layers.ReLU(max_value=1.0)``). Rotation, translation and zoom are one
:class:`xraykit.affine.RandomAffine` (one resampling instead of three; ``fused=False`` gives the
three ``keras.layers.Random*`` layers); every other layer is built in. A model that contains a
preset loads in a fresh process with :func:`xraykit.inference.load_model`, or with
``keras.saving.load_model`` once ``xraykit.augmentation`` (or ``xraykit.models``) is imported;
models saved with the three-layer presets load with ``keras.saving.load_model`` alone.
"""

from __future__ import annotations

import importlib.util
import math
import time
import warnings

import keras
import numpy as np
from keras import ops

from xraykit.affine import RandomAffine
from xraykit.checks import check_count, check_finite_array, check_number, check_positive
from xraykit.pixels import check_unit_range

__all__ = [
    "KERAS_CV_MIGRATION", "PRESETS", "EpochTimer", "RandomAffine", "augment_numpy",
    "augmentation_cost", "augmentation_layers", "augmented_dataset", "cutmix", "describe_presets",
    "gridmask_layer", "mixup", "randaugment",
]

#: The presets' magnitudes at ``strength=1``. Rotation in degrees; translation, zoom as fractions
#: of the image side; contrast/brightness as ``keras.layers`` factors in [0, 1] range units;
#: noise as the std of additive Gaussian noise; blur as the probability of a Gaussian blur;
#: erasing as the probability of erasing one patch.
PRESETS: dict[str, dict[str, float]] = {
    "none": {},
    "light": {"rotation": 5.0, "translation": 0.05, "zoom": 0.05, "contrast": 0.1,
              "brightness": 0.05},
    "medium": {"rotation": 10.0, "translation": 0.08, "zoom": 0.10, "contrast": 0.2,
               "brightness": 0.1, "noise": 0.02},
    "heavy": {"rotation": 15.0, "translation": 0.10, "zoom": 0.15, "contrast": 0.3,
              "brightness": 0.15, "noise": 0.03, "blur": 0.3, "erasing": 0.5},
}

#: keras_cv.layers name → its keras.layers (Keras 3) replacement, for migrating old code.
KERAS_CV_MIGRATION: dict[str, str] = {
    "keras_cv.layers.RandomRotation": "keras.layers.RandomRotation",
    "keras_cv.layers.RandomTranslation": "keras.layers.RandomTranslation",
    "keras_cv.layers.RandomZoom": "keras.layers.RandomZoom",
    "keras_cv.layers.RandomFlip": "keras.layers.RandomFlip",
    "keras_cv.layers.RandomContrast": "keras.layers.RandomContrast",
    "keras_cv.layers.RandomBrightness": "keras.layers.RandomBrightness",
    "keras_cv.layers.RandomShear": "keras.layers.RandomShear",
    "keras_cv.layers.RandomGaussianBlur": "keras.layers.RandomGaussianBlur",
    "keras_cv.layers.RandomSharpness": "keras.layers.RandomSharpness",
    "keras_cv.layers.RandomColorDegeneration": "keras.layers.RandomColorDegeneration",
    "keras_cv.layers.RandomCutout": "keras.layers.RandomErasing",
    "keras_cv.layers.RandAugment": "keras.layers.RandAugment",
    "keras_cv.layers.AugMix": "keras.layers.AugMix",
    "keras_cv.layers.MixUp": "keras.layers.MixUp",
    "keras_cv.layers.CutMix": "keras.layers.CutMix",
    "keras_cv.layers.Equalization": "keras.layers.Equalization",
    "keras_cv.layers.AutoContrast": "keras.layers.AutoContrast",
    "keras_cv.layers.Solarization": "keras.layers.Solarization",
    "keras_cv.layers.Posterization": "keras.layers.RandomPosterization",
    "keras_cv.layers.Grayscale": "keras.layers.RandomGrayscale (factor=1.0)",
    "keras_cv.layers.RandomAugmentationPipeline": "keras.layers.Pipeline (fixed order)",
    "keras_cv.layers.GridMask": "no keras.layers equivalent (use RandomErasing)",
    "keras_cv.layers.preprocessing.Rescaling": "keras.layers.Rescaling",
    "keras_cv.visualization.plot_image_gallery": "keras.visualization.plot_image_gallery",
}


def _check_preset(preset: str) -> dict[str, float]:
    if preset not in PRESETS:
        raise ValueError(f"unknown augmentation preset {preset!r}: use one of {list(PRESETS)}.")
    return PRESETS[preset]


def augmentation_layers(preset: str = "light", seed: int = 0, strength: float = 1.0,
                        horizontal_flip: bool = False, fill_mode: str = "constant",
                        name: str | None = None, fused: bool = True) -> keras.layers.Pipeline:
    """Builds an X-ray-safe augmentation pipeline from a preset.

    Args:
        preset: ``"none"``, ``"light"``, ``"medium"`` or ``"heavy"`` (see :data:`PRESETS`).
        seed: Base seed; each random layer gets ``seed + i``, so a pipeline built twice with the
            same seed draws the same transformations.
        strength: Multiplies every magnitude of the preset (0 = identity, 1 = the preset,
            2 = twice as strong; rotation is capped at 45°, other factors at their valid range).
        horizontal_flip: Adds ``RandomFlip("horizontal")`` (off by default: heart position and
            laterality markers).
        fill_mode: How the geometric layers fill pixels moved in from outside: ``"constant"``
            (black, like the padding of a square resize), ``"nearest"`` or ``"reflect"``.
        name: Layer name (default ``"augmentation_<preset>"``).
        fused: Rotation, translation and zoom as one :class:`xraykit.affine.RandomAffine` (one
            resampling per image; the default). ``False`` builds them as the three
            ``keras.layers`` ``RandomRotation``, ``RandomTranslation`` and ``RandomZoom`` (three
            resamplings), as xraykit did before. For the presets, which use all three, both
            draw the same parameters with the same seed.

    Returns:
        A ``keras.layers.Pipeline`` taking and returning ``(N, H, W, C)`` images in [0, 1]. Called
        on its own it augments (``training=True``); inside a model it is active only in training.

    Raises:
        ValueError: On an unknown preset or a strength that is not a finite number >= 0.
    """
    params = _check_preset(preset)
    s = check_number(strength, "strength", 0.0, what="0 = identity, 1 = the preset")
    layers: list[keras.layers.Layer] = []
    seeds = iter(range(seed, seed + 100))
    geometry = {"fill_mode": fill_mode, "fill_value": 0.0}

    if horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=next(seeds)))
    rot = min(params.get("rotation", 0.0) * s, 45.0) / 360.0  # Keras: a fraction of a turn
    shift = min(params.get("translation", 0.0) * s, 0.5)
    zoom = min(params.get("zoom", 0.0) * s, 0.5)
    present = [factor for factor in (rot, shift, zoom) if factor > 0]
    if fused and present:
        # One resampling. It takes as many seeds as the three layers below would, so the layers
        # after it keep theirs; with all three present it draws what they draw.
        layers.append(RandomAffine(rot, shift, zoom, seed=next(seeds), **geometry))
        for _ in present[1:]:
            next(seeds)
    else:
        if rot > 0:
            layers.append(keras.layers.RandomRotation(rot, seed=next(seeds), **geometry))
        if shift > 0:
            layers.append(keras.layers.RandomTranslation(shift, shift, seed=next(seeds),
                                                         **geometry))
        if zoom > 0:
            layers.append(keras.layers.RandomZoom((-zoom, zoom), seed=next(seeds), **geometry))
    contrast = min(params.get("contrast", 0.0) * s, 0.9)
    if contrast > 0:
        layers.append(keras.layers.RandomContrast(contrast, value_range=(0, 1), seed=next(seeds)))
    brightness = min(params.get("brightness", 0.0) * s, 1.0)
    if brightness > 0:
        layers.append(keras.layers.RandomBrightness(brightness, value_range=(0, 1),
                                                    seed=next(seeds)))
    blur = min(params.get("blur", 0.0) * s, 1.0)
    if blur > 0:
        layers.append(keras.layers.RandomGaussianBlur(factor=blur, kernel_size=3, sigma=1.0,
                                                      value_range=(0, 1), seed=next(seeds)))
    noise = params.get("noise", 0.0) * s
    if noise > 0:
        layers.append(keras.layers.GaussianNoise(noise, seed=next(seeds)))
    erasing = min(params.get("erasing", 0.0) * s, 1.0)
    if erasing > 0:
        layers.append(keras.layers.RandomErasing(factor=erasing, scale=(0.02, 0.1),
                                                 fill_value=0.0, value_range=(0, 1),
                                                 seed=next(seeds)))
    if layers:
        # Back to [0, 1] after noise/intensity changes: a built-in layer, so saved models load
        # without xraykit.
        layers.append(keras.layers.ReLU(max_value=1.0))
    else:  # "none" or strength 0: Pipeline needs at least one layer
        layers.append(keras.layers.Identity())
    return keras.layers.Pipeline(layers, name=name or f"augmentation_{preset}")


def describe_presets() -> list[dict[str, object]]:
    """The presets as table rows (one dict per preset) for a lesson or a report.

    Returns:
        A list of dicts with the preset name and each magnitude (0 where unused).
    """
    keys = ["rotation", "translation", "zoom", "contrast", "brightness", "noise", "blur", "erasing"]
    return [{"preset": name, **{k: params.get(k, 0.0) for k in keys}}
            for name, params in PRESETS.items()]


def augment_numpy(images, preset: str | keras.layers.Layer = "light", seed: int = 0,
                  strength: float = 1.0) -> np.ndarray:
    """Augments a NumPy batch once (for looking at the result).

    Args:
        images: ``(N, H, W, 1)`` or ``(H, W)`` / ``(H, W, 1)`` images in [0, 1].
        preset: Preset name or an already built pipeline/layer.
        seed: Seed for a preset.
        strength: Strength for a preset.

    Returns:
        Float32 NumPy array of the input's shape.

    Raises:
        ValueError: If the images are empty, hold NaN/inf or lie outside [0, 1].
    """
    x = check_unit_range(images, "images")
    shape = x.shape
    if x.ndim == 2:
        x = x[None, ..., None]
    elif x.ndim == 3:
        x = x[None]
    pipe = (augmentation_layers(preset, seed=seed, strength=strength)
            if isinstance(preset, str) else preset)
    # Pad the batch to a multiple of 16: under JAX every new shape compiles every operation again.
    n = len(x)
    padded = np.concatenate([x, np.repeat(x[-1:], -n % 16, axis=0)]) if n % 16 else x
    out = ops.convert_to_numpy(pipe(padded, training=True)).astype(np.float32)[:n]
    return out.reshape(shape)


def randaugment(seed: int = 0, num_ops: int = 2, factor: float = 0.2) -> keras.layers.Layer:
    """``keras.layers.RandAugment`` set up for [0, 1] images (not in the presets; see module doc).

    Args:
        seed: Seed.
        num_ops: Operations applied per image.
        factor: Magnitude in [0, 1].

    Returns:
        The layer.

    Raises:
        ValueError: If ``num_ops`` is not a whole number >= 1 or ``factor`` not in [0, 1].
    """
    num_ops = check_count(num_ops, "num_ops")
    factor = check_number(factor, "factor", 0.0, 1.0, what="the magnitude of each operation")
    return keras.layers.RandAugment(value_range=(0, 1), num_ops=num_ops, factor=factor,
                                    seed=seed)


def _float_labels(labels) -> np.ndarray:
    y = np.asarray(labels, dtype=np.float32)
    return y[:, None] if y.ndim == 1 else y


def _mix(layer, images, labels) -> tuple[np.ndarray, np.ndarray]:
    """Runs a batch-mixing layer (MixUp, CutMix) on NumPy images and labels, checked first."""
    images = check_unit_range(images, "images")
    labels = check_finite_array(labels, "labels")
    if len(images) != len(labels):
        raise ValueError(f"images ({len(images)}) and labels ({len(labels)}) differ in length: "
                         f"pass one label (row) per image.")
    with warnings.catch_warnings():
        # keras.layers.MixUp asks for an int64 arange, which JAX (32-bit by default) truncates to
        # int32 with a warning; batch indices fit in int32, so the result is the same.
        warnings.filterwarnings("ignore", "Explicitly requested dtype int64", UserWarning)
        out = layer({"images": np.asarray(images, np.float32), "labels": _float_labels(labels)},
                    training=True)
    return (ops.convert_to_numpy(out["images"]).astype(np.float32),
            ops.convert_to_numpy(out["labels"]).astype(np.float32))


def mixup(images, labels, alpha: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MixUp (``keras.layers.MixUp``): blends pairs of images and labels, Beta(α, α) weights.

    Args:
        images: ``(N, H, W, C)`` batch in [0, 1].
        labels: ``(N,)`` or ``(N, L)`` labels (0/1 or one-hot); mixed labels are soft.
        alpha: Beta distribution parameter (small = mostly one image).
        seed: Seed.

    Returns:
        ``(mixed_images, mixed_labels)`` as float32 NumPy arrays.

    Raises:
        ValueError: If ``alpha`` is not a finite number > 0, the images are not in [0, 1],
            the labels are not finite (mixing an unknown label is undefined), or their
            numbers differ.
    """
    alpha = check_positive(alpha, "alpha", what="the Beta(alpha, alpha) parameter")
    # float32 whatever the global dtype policy: under a mixed policy MixUp would multiply bfloat16
    # images by float32 weights, which TensorFlow refuses.
    return _mix(keras.layers.MixUp(alpha=alpha, seed=seed, dtype="float32"), images, labels)


def cutmix(images, labels, factor: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """CutMix (``keras.layers.CutMix``): pastes a box from another image; labels mix by box area.

    Args:
        images: ``(N, H, W, C)`` batch in [0, 1].
        labels: ``(N,)`` or ``(N, L)`` labels.
        factor: Beta distribution parameter of the box area.
        seed: Seed.

    Returns:
        ``(mixed_images, mixed_labels)`` as float32 NumPy arrays.

    Raises:
        ValueError: As :func:`mixup` (``factor`` must be in [0, 1]).
    """
    factor = check_number(factor, "factor", 0.0, 1.0, what="the Beta parameter of the box area")
    return _mix(keras.layers.CutMix(factor=factor, seed=seed, dtype="float32"), images, labels)


def gridmask_layer(seed: int = 0, **kwargs) -> tuple[keras.layers.Layer | None, str]:
    """keras-cv's GridMask, when keras-cv is installed and the backend is TensorFlow.

    keras-cv is unmaintained and imports TensorFlow on every backend, so xraykit never needs it.

    Args:
        seed: Seed.
        **kwargs: Passed to ``keras_cv.layers.GridMask``.

    Returns:
        ``(layer, "")`` when available, else ``(None, reason)`` with a one-line reason.
    """
    if keras.backend.backend() != "tensorflow":
        return None, (f"GridMask skipped: keras-cv needs the TensorFlow backend "
                      f"(this is {keras.backend.backend()}).")
    if importlib.util.find_spec("keras_cv") is None:
        return None, "GridMask skipped: keras-cv is not installed (optional; pip install keras-cv)."
    try:
        import keras_cv

        return keras_cv.layers.GridMask(seed=seed, **kwargs), ""
    except Exception as err:  # pragma: no cover - depends on an optional package
        return None, f"GridMask skipped: keras-cv failed to load ({type(err).__name__}: {err})."


def _has_layers(layer) -> bool:
    inner = getattr(layer, "layers", [layer])
    return any(not isinstance(item, keras.layers.Identity) for item in inner)


def _pipeline(preset, seed, strength):
    if isinstance(preset, keras.layers.Layer):
        return preset
    return augmentation_layers(preset or "none", seed=seed, strength=strength)


class _AugmentedPyDataset(keras.utils.PyDataset):
    """Batches of NumPy images, augmented by a pipeline on the fly (any backend)."""

    def __init__(self, x, y, pipeline, batch_size, seed, shuffle, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y = x, y
        self.pipeline, self.batch_size, self.shuffle = pipeline, int(batch_size), shuffle
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(x))
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        images = self.x[idx]
        if _has_layers(self.pipeline):
            images = self.pipeline(images, training=True)
        return ops.convert_to_numpy(images), self.y[idx]

    def on_epoch_end(self):
        if self.shuffle:
            self._rng.shuffle(self._order)


def augmented_dataset(x, y, preset: str | keras.layers.Layer = "light", batch_size: int = 64,
                      seed: int = 0, strength: float = 1.0, shuffle: bool = True,
                      backend: str | None = None):
    """Training batches augmented in the input pipeline (on the CPU, in parallel with training).

    Under TensorFlow this is a ``tf.data.Dataset`` (shuffle → batch → map(pipeline) → prefetch);
    under other backends a ``keras.utils.PyDataset`` that augments each NumPy batch. Either can be
    passed to ``model.fit`` as ``x`` (no ``y``, no ``batch_size``).

    Args:
        x: Images ``(N, H, W, C)`` in [0, 1].
        y: Labels ``(N, ...)``.
        preset: Preset name or a built pipeline/layer.
        batch_size: Batch size.
        seed: Seed of the shuffle and the augmentation.
        strength: Strength of a preset.
        shuffle: Shuffles every epoch.
        backend: ``"tensorflow"`` (tf.data; needs the TensorFlow backend) or ``"pydataset"``;
            default from the Keras backend.

    Returns:
        A ``tf.data.Dataset`` or ``keras.utils.PyDataset`` yielding ``(images, labels)``.

    Raises:
        ValueError: If ``x`` and ``y`` differ in length, ``x`` is outside [0, 1],
            ``batch_size`` is not a whole number >= 1, or ``backend="tensorflow"`` is asked for
            under another Keras backend.
    """
    x = check_unit_range(x, "x")
    batch_size = check_count(batch_size, "batch_size")
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} vs {len(y)}).")
    pipeline = _pipeline(preset, seed, strength)
    use_tf = (backend or ("tensorflow" if keras.backend.backend() == "tensorflow" else "pydataset"))
    if use_tf not in ("tensorflow", "pydataset"):
        raise ValueError(f"backend must be 'tensorflow', 'pydataset' or None, not {backend!r}.")
    if use_tf == "tensorflow" and keras.backend.backend() != "tensorflow":
        raise ValueError("a tf.data pipeline with these layers needs KERAS_BACKEND=tensorflow "
                         f"(this is {keras.backend.backend()}): use backend='pydataset'.")
    if use_tf == "tensorflow":
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
        if _has_layers(pipeline):
            ds = ds.map(lambda a, b: (pipeline(a, training=True), b),
                        num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)
    return _AugmentedPyDataset(x, y, pipeline, batch_size, seed, shuffle)


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of each epoch (training plus validation) in ``self.seconds``.

    The one epoch timer of the package: :func:`augmentation_cost` times its variants with it
    and :func:`xraykit.training.fit` (which re-exports it) writes its ``epoch_seconds``. It
    lives here, below training, so that both reach it without an import running back up.
    """

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        """Keras callback hook: an epoch starts."""
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        """Keras callback hook: an epoch ended."""
        self.seconds.append(time.perf_counter() - self._start)


def augmentation_cost(build, x, y, preset: str = "medium", batch_size: int = 64, epochs: int = 2,
                      seed: int = 0, class_weight=None) -> list[dict[str, object]]:
    """Measures the seconds per training epoch with and without augmentation.

    Three runs: without augmentation, with it inside the model and with it in the input pipeline
    (:func:`augmented_dataset`).

    The last epoch is reported (the first one also traces/compiles the training step).

    Args:
        build: ``build(augmentation)`` returning a *compiled* model whose input takes ``x``;
            ``augmentation`` is ``None`` or a Keras layer to put after the input, e.g.
            ``lambda aug: compile_model(build_model("small_cnn", augmentation=aug))``.
        x: Training images in [0, 1].
        y: Training labels.
        preset: Augmentation preset.
        batch_size: Batch size.
        epochs: Epochs per variant (>= 2 to exclude compilation).
        seed: Seed of the augmentation, the shuffles and the model.
        class_weight: Passed to ``fit``.

    Returns:
        One dict per variant: ``where``, ``seconds_per_epoch``, ``images_per_second``,
        ``first_epoch_seconds``, ``data`` (the input type used).
    """
    rows = []
    for where in ("none", "model", "pipeline"):
        keras.utils.set_random_seed(seed)
        layer = augmentation_layers(preset, seed=seed) if where == "model" else None
        model = build(layer)
        timer = EpochTimer()
        if where == "pipeline":
            data = augmented_dataset(x, y, preset, batch_size=batch_size, seed=seed)
            model.fit(data, epochs=epochs, callbacks=[timer], verbose=0, class_weight=class_weight,
                      shuffle=False)
        else:
            data = x
            model.fit(x, y, batch_size=batch_size, epochs=epochs, callbacks=[timer], verbose=0,
                      class_weight=class_weight)
        label = {"none": "no augmentation", "model": f"{preset}: inside the model",
                 "pipeline": f"{preset}: in the input pipeline"}[where]
        rows.append({"where": label, "seconds_per_epoch": round(timer.seconds[-1], 3),
                     "images_per_second": round(len(x) / timer.seconds[-1], 1),
                     "first_epoch_seconds": round(timer.seconds[0], 3),
                     "data": type(data).__name__})
    return rows
