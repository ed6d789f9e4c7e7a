"""Inference: from a radiograph file (or a folder, or an array) to calibrated probabilities.

A model is only as good as the preprocessing it sees at inference, so :func:`save_model`
stores the preprocessing next to the weights: image size, resize mode, channels, the
temperature fitted on validation, class names and decision threshold. They go into the
``.keras`` archive itself (an extra ``xraykit.json`` entry that Keras ignores) and into a
``.json`` sidecar for people who want to read them. :func:`predict` then needs nothing but the
file::

    xraykit.inference.save_model(model, "pneumonia.keras", temperature=scaler.temperature,
                                 threshold=t, class_names=["normal", "pneumonia"])
    result = xraykit.predict("pneumonia.keras", "patient_0001.dcm")
    result.probabilities, result.predicted, result.to_frame()

Inputs go through :func:`xraykit.images.read_image` (PNG/JPEG/DICOM with the full DICOM
photometry) and :func:`xraykit.images.resize_square`, exactly as
:func:`xraykit.datasets.load_folder` prepares training folders.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import weakref
import zipfile

import keras
import numpy as np

from xraykit.calibration import apply_temperature
from xraykit.datasets import list_images
from xraykit.images import read_image, resize_square

__all__ = ["InferenceConfig", "Prediction", "load_model", "model_config", "predict", "save_model"]

_ARCHIVE_ENTRY = "xraykit.json"
_CONFIGS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclasses.dataclass
class InferenceConfig:
    """How images must be prepared for a model and how its outputs are read.

    Attributes:
        image_size: Side of the square input, in pixels.
        channels: Input channels (1 for xraykit models; grayscale is repeated otherwise).
        resize_mode: ``"pad"`` or ``"crop"`` (see :func:`xraykit.images.resize_square`).
        temperature: Temperature of :class:`xraykit.calibration.TemperatureScaler` (1 = none).
        threshold: Decision threshold on the calibrated probability.
        class_names: Names of the outputs (binary: ``[negative, positive]``).
        task: ``"binary"``, ``"multilabel"`` or ``"multiclass"``.
    """

    image_size: int = 28
    channels: int = 1
    resize_mode: str = "pad"
    temperature: float = 1.0
    threshold: float = 0.5
    class_names: list[str] = dataclasses.field(default_factory=lambda: ["negative", "positive"])
    task: str = "binary"

    def to_dict(self) -> dict:
        """The config as a JSON-ready dict (with a format version)."""
        return {"format": "xraykit-inference-1", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, values: dict) -> InferenceConfig:
        """Builds a config from :meth:`to_dict` output (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def _infer_config(model, **overrides) -> InferenceConfig:
    """A config from the model's input/output shapes, updated with explicit values."""
    shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else (None,) * 3
    n_out = int(model.outputs[0].shape[-1] or 1) if getattr(model, "outputs", None) else 1
    activation = getattr(model.layers[-1], "activation", None) if model.layers else None
    softmax = getattr(activation, "__name__", "") == "softmax"
    task = "multiclass" if softmax else ("binary" if n_out == 1 else "multilabel")
    names = (["negative", "positive"] if task == "binary"
             else [f"class_{i}" for i in range(n_out)])
    config = InferenceConfig(image_size=int(shape[0] or 28), channels=int(shape[-1] or 1),
                             class_names=names, task=task)
    for key, value in overrides.items():
        if value is not None:
            setattr(config, key, value)
    config.class_names = [str(c) for c in config.class_names]
    config.temperature = float(config.temperature)
    config.threshold = float(config.threshold)
    config.image_size = int(config.image_size)
    if config.resize_mode not in ("pad", "crop"):
        raise ValueError(f"resize_mode must be 'pad' or 'crop', not {config.resize_mode!r}.")
    if not config.temperature > 0:
        raise ValueError(f"temperature must be positive, got {config.temperature}.")
    return config


def model_config(model) -> InferenceConfig:
    """The inference config attached to a model by :func:`load_model` or :func:`save_model`,
    else one inferred from its input and output shapes.

    Args:
        model: A Keras model.

    Returns:
        An :class:`InferenceConfig`.
    """
    config = _CONFIGS.get(model)
    return dataclasses.replace(config) if config is not None else _infer_config(model)


def save_model(model, path: str | os.PathLike, image_size: int | None = None,
               resize_mode: str = "pad", temperature: float = 1.0, threshold: float = 0.5,
               class_names=None, task: str | None = None) -> pathlib.Path:
    """Saves a model with the preprocessing and calibration needed to use it.

    Args:
        model: The trained Keras model.
        path: Destination; ``.keras`` is appended if missing. A ``<path>.json`` sidecar with
            the same settings is written next to it.
        image_size: Training image side (default: the model's input size).
        resize_mode: How training images were squared (``"pad"`` is the xraykit default).
        temperature: Fitted temperature (``TemperatureScaler.temperature``), 1 = none.
        threshold: Decision threshold on the calibrated probability (choose it on validation
            with :func:`xraykit.evaluation.choose_threshold`).
        class_names: Output names (binary: ``["normal", "pneumonia"]``).
        task: ``"binary"``, ``"multilabel"`` or ``"multiclass"`` (default: from the output).

    Returns:
        The path of the ``.keras`` file.

    Raises:
        ValueError: For a bad resize mode or temperature.
    """
    path = pathlib.Path(path)
    if path.suffix != ".keras":
        path = path.with_name(path.name + ".keras")
    path.parent.mkdir(parents=True, exist_ok=True)
    config = _infer_config(model, image_size=image_size, resize_mode=resize_mode,
                           temperature=temperature, threshold=threshold,
                           class_names=list(class_names) if class_names is not None else None,
                           task=task)
    text = json.dumps(config.to_dict(), indent=2)
    model.save(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(_ARCHIVE_ENTRY, text)
    path.with_name(path.name + ".json").write_text(text + "\n", encoding="utf-8")
    _CONFIGS[model] = config
    return path


def _read_config(path: pathlib.Path) -> InferenceConfig | None:
    try:
        with zipfile.ZipFile(path) as archive:
            if _ARCHIVE_ENTRY in archive.namelist():
                return InferenceConfig.from_dict(json.loads(archive.read(_ARCHIVE_ENTRY)))
    except zipfile.BadZipFile:
        pass
    sidecar = path.with_name(path.name + ".json")
    if sidecar.is_file():
        return InferenceConfig.from_dict(json.loads(sidecar.read_text(encoding="utf-8")))
    return None


def load_model(path: str | os.PathLike, compile: bool = False):
    """Loads a model saved by :func:`save_model` (or any ``.keras`` file) with its config.

    Args:
        path: The ``.keras`` file.
        compile: Also restore the optimizer and metrics (not needed for prediction).

    Returns:
        The Keras model; :func:`model_config` gives its :class:`InferenceConfig`.

    Raises:
        FileNotFoundError: If the file does not exist.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file (save one with "
                                "xraykit.inference.save_model).")
    import xraykit.training  # noqa: F401  (registers the custom metrics of compiled models)

    model = keras.models.load_model(path, compile=compile)
    config = _read_config(path)
    if config is None:
        print(f"{path.name}: no xraykit preprocessing config stored; using the model's input "
              "size, 'pad' resizing, temperature 1 and threshold 0.5.")
        config = _infer_config(model)
    _CONFIGS[model] = config
    return model


@dataclasses.dataclass
class Prediction:
    """What :func:`predict` returns.

    Attributes:
        probabilities: Calibrated probabilities ``(N, K)`` (K = 1 for a binary model).
        predicted: Binary/multilabel: 0/1 ``(N, K)`` at the threshold; multiclass: ``(N,)``
            class indices.
        raw: Uncalibrated model outputs ``(N, K)``.
        images: The preprocessed inputs ``(N, S, S, C)``, as the model saw them.
        paths: Source file of each image (``None`` for arrays).
        class_names: Output names.
        threshold: Threshold used.
        temperature: Temperature used.
        heatmaps: Grad-CAM maps ``(N, S, S)`` when asked for, else ``None``.
        failed: ``{path: reason}`` for files that could not be read.
    """

    probabilities: np.ndarray
    predicted: np.ndarray
    raw: np.ndarray
    images: np.ndarray
    paths: list
    class_names: list
    threshold: float
    temperature: float
    heatmaps: np.ndarray | None = None
    failed: dict = dataclasses.field(default_factory=dict)

    def to_frame(self):
        """A pandas DataFrame: one row per image, its path and one column per output."""
        import pandas as pd

        frame = pd.DataFrame({"path": self.paths})
        names = self.class_names
        if self.probabilities.shape[1] == 1:
            frame[f"p_{names[-1]}"] = self.probabilities[:, 0]
            frame["predicted"] = [names[int(v)] if len(names) == 2 else int(v)
                                  for v in self.predicted[:, 0]]
        else:
            for k in range(self.probabilities.shape[1]):
                name = names[k] if k < len(names) else f"class_{k}"
                frame[f"p_{name}"] = self.probabilities[:, k]
            if self.predicted.ndim == 1:
                frame["predicted"] = [names[int(v)] for v in self.predicted]
        return frame

    def __len__(self) -> int:
        return len(self.probabilities)


def _prepare_array(array, config: InferenceConfig) -> np.ndarray:
    x = np.asarray(array)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    elif x.dtype == np.uint16:
        x = x.astype(np.float32) / 65535.0
    x = x.astype(np.float32)
    if x.ndim == 2:
        x = x[None, ..., None]
    elif x.ndim == 3:  # one (H, W, C) image, or a (N, H, W) batch
        x = x[None] if x.shape[-1] in (1, 3) else x[..., None]
    if x.ndim != 4:
        raise ValueError(f"Expected an image (H, W), a batch (N, H, W) or (N, H, W, C); got "
                         f"shape {np.asarray(array).shape}.")
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError("Image arrays must be in [0, 1] (or uint8/uint16): rescale them, e.g. "
                         "with xraykit.preprocessing.minmax.")
    if x.shape[-1] == 3:  # RGB to luminance, as read_image does
        x = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    size = config.image_size
    if x.shape[1:3] != (size, size):
        x = np.stack([resize_square(img[..., 0], size, config.resize_mode) for img in x])[..., None]
    return x


def _read_files(paths, config: InferenceConfig, workers: int = 4):
    from concurrent.futures import ThreadPoolExecutor

    def read(path):
        return resize_square(read_image(path, target_size=config.image_size), config.image_size,
                             config.resize_mode)

    images, kept, failed = [], [], {}
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for path, future in [(p, pool.submit(read, p)) for p in paths]:
            try:
                images.append(future.result())
                kept.append(str(path))
            except (OSError, ValueError, RuntimeError) as err:
                failed[str(path)] = str(err)
    for path, reason in failed.items():
        print(f"{path}: unreadable, skipped ({reason})")
    if not images:
        raise ValueError(f"None of the {len(paths)} file(s) could be read.")
    return np.stack(images)[..., None].astype(np.float32), kept, failed


def predict(model, path_or_array, image_size: int | None = None, resize_mode: str | None = None,
            temperature: float | None = None, threshold: float | None = None,
            class_names=None, grad_cam: bool = False, class_index: int = 0,
            batch_size: int = 64, workers: int = 4) -> Prediction:
    """Calibrated probabilities for radiographs, in one call.

    Args:
        model: A Keras model, or the path of a ``.keras`` file from :func:`save_model`.
        path_or_array: A PNG/JPEG/DICOM file, a folder of them (searched recursively), a list
            of files, or an array: one image ``(H, W)``, a batch ``(N, H, W)`` or
            ``(N, H, W, C)``, floats in [0, 1] or uint8/uint16.
        image_size, resize_mode, temperature, threshold, class_names: Override the model's
            stored :class:`InferenceConfig` (needed only for models saved without one).
        grad_cam: Also compute Grad-CAM heatmaps (see :func:`xraykit.explain.grad_cam`); show
            them with ``xraykit.plotting.grad_cam_overlay(result.images, result.heatmaps)``.
        class_index: Output explained by Grad-CAM.
        batch_size: Prediction batch size.
        workers: Threads reading files.

    Returns:
        A :class:`Prediction`.

    Raises:
        FileNotFoundError: If a path does not exist.
        ValueError: If nothing readable is found, or an array has the wrong shape or range.
    """
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    config = model_config(model)
    config = _infer_config(model, **{**dataclasses.asdict(config), **{
        k: v for k, v in dict(image_size=image_size, resize_mode=resize_mode,
                              temperature=temperature, threshold=threshold,
                              class_names=class_names).items() if v is not None}})

    failed: dict = {}
    if isinstance(path_or_array, (str, os.PathLike)):
        source = pathlib.Path(path_or_array)
        if source.is_dir():
            files = list_images(source)
            if not files:
                raise ValueError(f"{source}: no PNG/JPEG/DICOM files found in this folder.")
        elif source.is_file():
            files = [source]
        else:
            raise FileNotFoundError(f"{source}: no such file or folder.")
        images, paths, failed = _read_files(files, config, workers)
    elif isinstance(path_or_array, (list, tuple)) and path_or_array and \
            isinstance(path_or_array[0], (str, os.PathLike)):
        for p in path_or_array:
            if not pathlib.Path(p).is_file():
                raise FileNotFoundError(f"{p}: no such file.")
        images, paths, failed = _read_files(list(path_or_array), config, workers)
    else:
        images = _prepare_array(path_or_array, config)
        paths = [None] * len(images)

    x = images if config.channels == 1 else np.repeat(images, config.channels, axis=-1)
    raw = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)
    raw = raw.reshape(len(x), -1)
    mode = "softmax" if config.task == "multiclass" else "sigmoid"
    probabilities = apply_temperature(raw, config.temperature, mode=mode)
    if config.task == "multiclass":
        predicted = probabilities.argmax(axis=1)
    else:
        predicted = (probabilities >= config.threshold).astype(np.int32)
    heatmaps = None
    if grad_cam:
        from xraykit.explain import grad_cam as _grad_cam

        heatmaps = _grad_cam(model, x, class_index=class_index)
    return Prediction(probabilities=probabilities, predicted=predicted, raw=raw, images=images,
                      paths=paths, class_names=list(config.class_names),
                      threshold=config.threshold, temperature=config.temperature,
                      heatmaps=heatmaps, failed=failed)
