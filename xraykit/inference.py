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

Files go through :func:`xraykit.images.read_images` (PNG/JPEG/DICOM with the full DICOM
photometry, squared by :func:`xraykit.pixels.resize_square`), exactly as
:func:`xraykit.datasets.load_folder` prepares training folders; arrays are scaled and turned
grey by the same pixel policy (:mod:`xraykit.pixels`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import pathlib
import warnings
import weakref
import zipfile

import keras
import numpy as np

# Imported for their custom Keras objects, registered on import: every layer (preprocessing,
# affine), loss (losses) and metric (training) xraykit defines, so a saved model loads anywhere.
import xraykit.affine  # noqa: F401
import xraykit.losses  # noqa: F401
import xraykit.preprocessing  # noqa: F401
import xraykit.training  # noqa: F401
from xraykit import files
from xraykit.calibration import apply_temperature
from xraykit.folders import gather_images
from xraykit.images import read_images
from xraykit.pixels import resize_batch, to_unit_batch
from xraykit.tasks import TASKS, check_task, task_from_model

__all__ = ["InferenceConfig", "MissingConfigWarning", "Prediction", "load_model", "model_config",
           "predict", "save_model"]

_ARCHIVE_ENTRY = "xraykit.json"
_FORMAT = "xraykit-inference-1"
_RESIZE_MODES = ("pad", "crop")
_CONFIGS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class MissingConfigWarning(UserWarning):
    """A model file without xraykit's inference settings: they are inferred from the model."""


@dataclasses.dataclass
class InferenceConfig:
    """How images must be prepared for a model and how its outputs are read.

    Attributes:
        image_size: Side of the square input, in pixels.
        channels: Input channels (1 for xraykit models; grayscale is repeated otherwise).
        resize_mode: ``"pad"`` or ``"crop"`` (see :func:`xraykit.pixels.resize_square`).
        temperature: Temperature of :class:`xraykit.calibration.TemperatureScaler` (1 = none).
        threshold: Decision threshold on the calibrated probability: one for every output, or
            a list of one per output (multi-label models, thresholds chosen per finding).
        class_names: Names of the outputs (binary: ``[negative, positive]``).
        task: ``"binary"``, ``"multilabel"`` or ``"multiclass"``.
    """

    image_size: int = 28
    channels: int = 1
    resize_mode: str = "pad"
    temperature: float = 1.0
    threshold: float | list[float] = 0.5
    class_names: list[str] = dataclasses.field(default_factory=lambda: ["negative", "positive"])
    task: str = "binary"

    def to_dict(self) -> dict:
        """The config as a JSON-ready dict (with a format version)."""
        return {"format": _FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, values: dict, source: str = "InferenceConfig") -> InferenceConfig:
        """Builds a config from :meth:`to_dict` output (unknown keys are ignored).

        Args:
            values: The dict, e.g. the parsed ``xraykit.json`` of a saved model.
            source: What to name in error messages (a file name).

        Returns:
            The validated config; fields missing from ``values`` keep their defaults.

        Raises:
            ValueError: If ``values`` is not a dict, has another format, or a field has the
                wrong type or value (the message names ``source`` and the field).
        """
        config = cls(**_stored_fields(values, source))
        _check_config(config, source, type_error=ValueError)
        return config


def _stored_fields(values, source: str) -> dict:
    """The known fields of a stored config dict, after checking it is one of ours."""
    if not isinstance(values, dict):
        raise ValueError(f"{source}: expected a JSON object of inference settings, found a "
                         f"{type(values).__name__}; save the model again with "
                         "xraykit.inference.save_model.")
    found = values.get("format", _FORMAT)
    if found != _FORMAT:
        raise ValueError(f"{source}: field 'format' is {found!r}, this xraykit reads {_FORMAT!r}; "
                         "update xraykit or save the model again.")
    names = {f.name for f in dataclasses.fields(InferenceConfig)}
    return {k: v for k, v in values.items() if k in names}


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _config_problem(config: InferenceConfig, n_outputs: int | None = None,
                    input_shape=None) -> tuple[str, str, bool] | None:
    """``(field, what is wrong, is a type problem)`` for the first invalid field, else None."""
    size, channels = config.image_size, config.channels
    if not _is_int(size) or size < 1:
        return "image_size", f"must be a positive whole number of pixels, got {size!r}", \
            not _is_int(size)
    if not _is_int(channels) or channels not in (1, 3):
        return "channels", f"must be 1 or 3, got {channels!r}", not _is_int(channels)
    if config.resize_mode not in _RESIZE_MODES:
        return "resize_mode", f"must be 'pad' or 'crop', got {config.resize_mode!r}", False
    temperature = config.temperature
    if not _is_number(temperature) or not (math.isfinite(temperature) and temperature > 0):
        return ("temperature", "must be a finite number > 0 (TemperatureScaler.temperature; "
                f"1 = no scaling), got {temperature!r}", not _is_number(temperature))
    threshold = config.threshold
    several = isinstance(threshold, list) and bool(threshold)
    values = threshold if several else [threshold]
    if not all(_is_number(t) and 0.0 <= t <= 1.0 for t in values):
        wanted = "probabilities in [0, 1], one per output" if several else \
            "a probability in [0, 1]"
        return ("threshold", f"must be {wanted}, got {threshold!r}",
                not all(_is_number(t) for t in values))
    if several and n_outputs is not None and len(threshold) not in (1, n_outputs):
        return ("threshold", f"has {len(threshold)} values but the model has {n_outputs} "
                "output(s): give one threshold, or one per output", False)
    if config.task not in TASKS:
        try:
            check_task(config.task)
        except ValueError as err:
            return "task", str(err).removeprefix("task "), False
    names = config.class_names
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return ("class_names", "must be a list of strings, one per output (binary: "
                f"[negative, positive]), got {names!r}", True)
    if n_outputs is not None:
        if config.task == "binary" and n_outputs != 1:
            return "task", f"is 'binary' but the model has {n_outputs} outputs", False
        wanted = (1, 2) if n_outputs == 1 else (n_outputs,)
        if len(names) not in wanted:
            want = "2 ([negative, positive])" if n_outputs == 1 else str(n_outputs)
            return ("class_names", f"has {len(names)} name(s) but the model has {n_outputs} "
                    f"output(s): give {want}", False)
    if input_shape is not None:
        height, width, depth = (tuple(input_shape) + (None,) * 3)[:3]
        if height is not None and (height, width) != (size, size):
            return ("image_size", f"is {size} but the model takes {height}x{width} images; "
                    "store the training image size", False)
        if depth is not None and depth != channels:
            return "channels", f"is {channels} but the model takes {depth}-channel images", False
    return None


def _check_config(config: InferenceConfig, where: str, n_outputs: int | None = None,
                  input_shape=None, type_error: type[Exception] = TypeError) -> InferenceConfig:
    """Raises for the first invalid field, naming ``where`` (a file or a function) and it."""
    problem = _config_problem(config, n_outputs, input_shape)
    if problem is not None:
        field, message, is_type = problem
        kind = "argument" if where.startswith(("predict", "save_model")) else "field"
        raise (type_error if is_type else ValueError)(f"{where}: {kind} {field!r} {message}.")
    return config


def _threshold_value(threshold) -> float | list[float]:
    """A checked threshold as stored: a float, or a list of floats (one per output)."""
    if isinstance(threshold, list):
        return float(threshold[0]) if len(threshold) == 1 else [float(t) for t in threshold]
    return float(threshold)


def _model_shapes(model) -> tuple[tuple | None, int]:
    shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
    n_out = int(model.outputs[0].shape[-1] or 1) if getattr(model, "outputs", None) else 1
    return shape, n_out


def _infer_config(model, where: str = "arguments", **overrides) -> InferenceConfig:
    """A config from the model's input/output shapes, updated with explicit values.

    Raises:
        TypeError: If an override has the wrong type.
        ValueError: If an override has a wrong value or does not fit the model.
    """
    shape, n_out = _model_shapes(model)
    shape = shape or (None,) * 3
    task, _ = task_from_model(model)
    names = (["negative", "positive"] if task == "binary"
             else [f"class_{i}" for i in range(n_out)])
    config = InferenceConfig(image_size=int(shape[0] or 28), channels=int(shape[-1] or 1),
                             class_names=names, task=task)
    for key, value in overrides.items():
        if value is not None:
            setattr(config, key, value)
    if isinstance(config.class_names, (tuple, np.ndarray)):
        config.class_names = list(config.class_names)
    if isinstance(config.threshold, (tuple, np.ndarray)):
        config.threshold = np.asarray(config.threshold).tolist()
    _check_config(config, where, n_out, shape)
    config.class_names = [str(c) for c in config.class_names]  # NumPy strings → str
    config.temperature = float(config.temperature)
    config.threshold = _threshold_value(config.threshold)
    config.image_size = int(config.image_size)
    config.channels = int(config.channels)
    return config


_PROBABILITY_ACTIVATIONS = ("sigmoid", "softmax")
_END_WITH = ("end the model with a sigmoid (binary, multilabel) or softmax (multiclass), e.g. "
             "keras.Sequential([model, keras.layers.Activation('sigmoid')]), and save that")


def _probe(model, config: InferenceConfig) -> np.ndarray:
    """The model's outputs for a few images in [0, 1]: black, white, grey noise."""
    shape = (config.image_size, config.image_size, config.channels)
    noise = np.random.default_rng(0).uniform(0, 1, (2, *shape))
    batch = np.concatenate([np.zeros((1, *shape)), np.ones((1, *shape)), noise])
    return np.asarray(model.predict(batch.astype(np.float32), verbose=0), dtype=np.float64)


def check_probability_model(model, where: str, config: InferenceConfig | None = None) -> None:
    """Checks that a model maps one batch of images to probabilities, as :func:`predict` reads it.

    A last layer whose activation is neither sigmoid nor softmax (``"linear"``: logits) is
    refused; a last layer without an ``activation`` is probed with a few images in [0, 1] and
    refused when an output falls outside [0, 1].

    Args:
        model: A Keras model.
        where: The file or function named in the message.
        config: Its inference settings (for the probe's image size; default: inferred).

    Raises:
        ValueError: If the model has several inputs or outputs, ends in an activation that does
            not give probabilities, or gives outputs outside [0, 1]; the message names
            ``where`` and says what to do.
    """
    for kind in ("inputs", "outputs"):
        count = len(getattr(model, kind, None) or [])
        if count != 1:
            raise ValueError(f"{where}: the model has {count} {kind}; xraykit feeds one batch of "
                             "images and reads one array of probabilities: build a model with a "
                             f"single image input and a single output.")
    layer = model.layers[-1] if getattr(model, "layers", None) else None
    activation = getattr(getattr(layer, "activation", None), "__name__", None)
    if activation is not None and activation not in _PROBABILITY_ACTIVATIONS:
        raise ValueError(f"{where}: the model's last layer {layer.name!r} has activation "
                         f"{activation!r}, so its outputs are not probabilities (logits?): "
                         f"{_END_WITH}.")
    if activation is None:
        outputs = _probe(model, config or _infer_config(model))
        if not np.isfinite(outputs).all() or outputs.min() < 0 or outputs.max() > 1:
            raise ValueError(f"{where}: on test images in [0, 1] the model's outputs range "
                             f"{np.nanmin(outputs):.4g}..{np.nanmax(outputs):.4g}, outside [0, 1]:"
                             f" they are not probabilities; {_END_WITH}.")


def model_config(model) -> InferenceConfig:
    """The inference config of a model: stored, else inferred from its shapes.

    The stored config is the one :func:`load_model` or :func:`save_model` attached to the
    model; without one, it is inferred from the model's input and output shapes.

    Args:
        model: A Keras model.

    Returns:
        An :class:`InferenceConfig`.
    """
    config = _CONFIGS.get(model)
    return dataclasses.replace(config) if config is not None else _infer_config(model)


def save_model(model, path: str | os.PathLike, image_size: int | None = None,
               resize_mode: str = "pad", temperature: float = 1.0, threshold=0.5,
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
            with :func:`xraykit.evaluation.choose_threshold`), or a list of one per output
            (a multi-label model's findings).
        class_names: Output names (binary: ``["normal", "pneumonia"]``).
        task: ``"binary"``, ``"multilabel"`` or ``"multiclass"`` (default: from the output).

    Returns:
        The path of the ``.keras`` file.

    Raises:
        TypeError: If a setting has the wrong type (e.g. ``class_names`` not a list of str).
        ValueError: If a setting is out of range (a threshold outside [0, 1], a temperature
            that is not finite and > 0, an unknown resize mode or task, an image size or
            class names that do not fit the model), or the model's output is not a
            probability (see :func:`check_probability_model`); the message names ``path``.
    """
    path = pathlib.Path(path)
    if path.suffix != ".keras":
        path = path.with_name(path.name + ".keras")
    if class_names is not None and not isinstance(class_names, str):
        class_names = list(class_names)
    check_probability_model(model, f"save_model({path})")
    config = _infer_config(model, f"save_model({path})", image_size=image_size,
                           resize_mode=resize_mode, temperature=temperature, threshold=threshold,
                           class_names=class_names, task=task)
    text = json.dumps(config.to_dict(), indent=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write under temporary names in the same folder, check, then rename: a crash never
    # leaves a half-written model (or one without its settings) under the final name.
    # (model.save needs the .keras ending, hence the temporary names' suffix.)
    sidecar = path.with_name(path.name + ".json")
    with files.atomic_files(path, sidecar, suffix=".part.keras") as (tmp, tmp_sidecar):
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(_ARCHIVE_ENTRY, text)
        with zipfile.ZipFile(tmp) as archive:
            if json.loads(archive.read(_ARCHIVE_ENTRY)) != config.to_dict():
                raise OSError(f"{tmp}: the settings read back differ from those written.")
        tmp_sidecar.write_text(text + "\n", encoding="utf-8")
    _CONFIGS[model] = config
    return path


def _read_json(read, source: str):
    try:
        return json.loads(read())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{source}: not valid JSON ({err}); save the model again with "
                         "xraykit.inference.save_model, or fix or delete this file.") from None


def _read_stored(path: pathlib.Path) -> tuple[dict, str] | None:
    """The stored settings (archive entry first, else the sidecar) and where they came from."""
    try:
        with zipfile.ZipFile(path) as archive:
            if _ARCHIVE_ENTRY in archive.namelist():
                source = f"{path} (entry {_ARCHIVE_ENTRY})"
                values = _read_json(lambda: archive.read(_ARCHIVE_ENTRY), source)
                return _stored_fields(values, source), source
    except zipfile.BadZipFile:
        pass
    sidecar = path.with_name(path.name + ".json")
    if sidecar.is_file():
        source = str(sidecar)
        values = _read_json(lambda: sidecar.read_text(encoding="utf-8"), source)
        return _stored_fields(values, source), source
    return None


def load_model(path: str | os.PathLike, compile: bool = False):
    """Loads a model saved by :func:`save_model` (or any ``.keras`` file) with its config.

    Works in a fresh process: xraykit's custom layers, losses and metrics (defined in
    :mod:`xraykit.preprocessing`, :mod:`xraykit.losses` and :mod:`xraykit.training`, which this
    module imports) are registered before Keras reads the file. The stored
    settings are checked against the model: fields missing from the file are taken from the
    model (input size, outputs) and the defaults.

    Args:
        path: The ``.keras`` file.
        compile: Also restore the optimizer, loss and metrics (not needed for prediction).

    Returns:
        The Keras model; :func:`model_config` gives its :class:`InferenceConfig`.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If Keras cannot read the file, or its stored settings (the archive's
            ``xraykit.json`` or the ``.json`` sidecar) are corrupt, of the wrong type or do
            not fit the model; the message names the file and the field.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file (save one with "
                                "xraykit.inference.save_model).")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a .keras archive (a .keras file is a zip file): it is "
                         "damaged or incomplete (an interrupted copy or download?); save or "
                         "copy it again.")
    try:
        model = keras.saving.load_model(path, compile=compile)
    except Exception as err:  # Keras raises ValueError, TypeError, KeyError, OSError...
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise ValueError(
            f"{path}: Keras could not load this model ({type(err).__name__}: {reason}). It must "
            "be a .keras file written by model.save or xraykit.inference.save_model; a model "
            "with layers, losses or metrics of your own needs them registered "
            "(keras.saving.register_keras_serializable) before loading"
            + ("; or load with compile=False." if compile else ".")) from err
    stored = _read_stored(path)
    if stored is None:
        warnings.warn(f"{path.name}: no xraykit preprocessing config stored; using the model's "
                      "input size, 'pad' resizing, temperature 1 and threshold 0.5.",
                      MissingConfigWarning, stacklevel=2)
        config = _infer_config(model)
    else:
        values, source = stored
        config = dataclasses.replace(_infer_config(model), **values)
        shape, n_out = _model_shapes(model)
        _check_config(config, source, n_out, shape, type_error=ValueError)
        config.temperature = float(config.temperature)
        config.threshold = _threshold_value(config.threshold)
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
        threshold: Threshold used (a list: one per output).
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
    threshold: float | list[float]
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
            else:  # multi-label: one 0/1 decision per output, at its threshold
                for k in range(self.predicted.shape[1]):
                    name = names[k] if k < len(names) else f"class_{k}"
                    frame[f"decision_{name}"] = self.predicted[:, k]
        return frame

    def __len__(self) -> int:
        return len(self.probabilities)

    def __str__(self) -> str:
        """One line per image: its file name, the probabilities and the decision."""
        names, lines = self.class_names, []
        for i, source in enumerate(self.paths):
            label = pathlib.Path(source).name if source is not None else f"image {i}"
            p = self.probabilities[i]
            if len(p) == 1:
                decision = (names[int(self.predicted[i, 0])] if len(names) == 2
                            else ("positive" if self.predicted[i, 0] else "negative"))
                lines.append(f"{label}: p({names[-1]}) = {p[0]:.4f} -> {decision} "
                             f"(threshold {self.threshold:g})")
            else:
                scores = ", ".join(f"{names[k]} {v:.4f}" for k, v in enumerate(p))
                chosen = (names[int(self.predicted[i])] if self.predicted.ndim == 1 else
                          ", ".join(names[k] for k in np.flatnonzero(self.predicted[i])) or "none")
                lines.append(f"{label}: {scores} -> {chosen}")
        return "\n".join(lines)


def _prepare_array(array, config: InferenceConfig) -> np.ndarray:
    """Checks an image array by the pixel policy (:func:`xraykit.pixels.to_unit_batch`), resizes.

    Raises:
        TypeError: For a dtype that is not an image (object, complex, bool, strings...).
        ValueError: For an empty array, a wrong shape, NaN/inf or values outside [0, 1].
    """
    try:
        x = np.asarray(array)
    except ValueError:  # a ragged list of arrays
        raise ValueError("predict: path_or_array is a list of images of different shapes; "
                         "pass file paths, or resize them to one size first "
                         "(xraykit.pixels.resize_batch).") from None
    x = to_unit_batch(x, "predict: path_or_array")
    return resize_batch(x, config.image_size, config.resize_mode)


def _read_files(paths, config: InferenceConfig, workers: int = 4):
    images, kept, failed = read_images(paths, config.image_size, config.resize_mode, workers)
    if not kept:
        path, reason = next(iter(failed.items()))
        raise ValueError(f"None of the {len(paths)} file(s) could be read (first: {path}: "
                         f"{reason}).")
    return images[..., None], kept, failed


def _predict_inputs(path_or_array, config, workers):
    """:func:`predict`'s images: ``(images, paths, failed)`` from files, a folder or an array."""
    failed: dict = {}
    is_path = lambda item: isinstance(item, (str, os.PathLike))  # noqa: E731
    if isinstance(path_or_array, (list, tuple)) and not path_or_array:
        raise ValueError("predict: path_or_array is an empty list: pass at least one file "
                         "path, a folder or an image array.")
    if is_path(path_or_array) or (isinstance(path_or_array, (list, tuple))
                                  and any(map(is_path, path_or_array))):
        files = gather_images([path_or_array] if is_path(path_or_array) else path_or_array)
        images, paths, failed = _read_files(files, config, workers)
    else:
        images = _prepare_array(path_or_array, config)
        paths = [None] * len(images)
    return images, paths, failed


def predict(model, path_or_array, image_size: int | None = None, resize_mode: str | None = None,
            temperature: float | None = None, threshold: float | None = None,
            class_names=None, grad_cam: bool = False, class_index: int = 0,
            batch_size: int = 64, workers: int = 4) -> Prediction:
    """Calibrated probabilities for radiographs, in one call.

    Args:
        model: A Keras model, or the path of a ``.keras`` file from :func:`save_model`.
        path_or_array: An image file (:data:`xraykit.images.SUPPORTED`), a folder of them
            (searched recursively for :data:`xraykit.images.IMAGE_SUFFIXES`), a list
            of files, or an array: one image ``(H, W)``, a batch ``(N, H, W)`` or
            ``(N, H, W, C)``, floats in [0, 1] or uint8/uint16.
        image_size: Overrides the stored :class:`InferenceConfig` (needed only for models
            saved without one), as do the next four arguments.
        resize_mode: ``"pad"`` or ``"crop"``.
        temperature: Temperature of the calibration (1 = none).
        threshold: Decision threshold on the calibrated probability (or one per output).
        class_names: Output names.
        grad_cam: Also compute Grad-CAM heatmaps (see :func:`xraykit.explain.grad_cam`); show
            them with ``xraykit.plotting.plot_grad_cam(result.images, result.heatmaps)``.
        class_index: Output explained by Grad-CAM.
        batch_size: Prediction batch size.
        workers: Threads reading files.

    Returns:
        A :class:`Prediction`.

    Raises:
        FileNotFoundError: If a path (model, file or folder) does not exist.
        TypeError: If ``model`` is neither a Keras model nor a path, an array has a dtype that
            is not pixels (object, complex, bool, strings), a list mixes paths and other
            items, or an override has the wrong type.
        ValueError: If the input is empty (array, list, folder), nothing readable is found,
            an array has the wrong shape, NaN/inf or values outside [0, 1], an override is
            out of range, or the model file or its stored settings are unusable.
    """
    where = "predict"
    if isinstance(model, (str, os.PathLike)):
        where = str(model)
        model = load_model(model)
    elif not isinstance(model, keras.Model):
        raise TypeError(f"predict: model must be a keras.Model or the path of a .keras file "
                        f"(from xraykit.inference.save_model), not {type(model).__name__}.")
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"predict: batch_size must be a positive integer, got {batch_size!r}.")
    if class_names is not None and not isinstance(class_names, str):
        class_names = list(class_names)
    config = model_config(model)
    check_probability_model(model, where, config)
    config = _infer_config(model, "predict", **{**dataclasses.asdict(config), **{
        k: v for k, v in dict(image_size=image_size, resize_mode=resize_mode,
                              temperature=temperature, threshold=threshold,
                              class_names=class_names).items() if v is not None}})

    images, paths, failed = _predict_inputs(path_or_array, config, workers)

    x = images if config.channels == 1 else np.repeat(images, config.channels, axis=-1)
    raw = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)
    raw = raw.reshape(len(x), -1)
    if not np.isfinite(raw).all() or raw.min() < 0 or raw.max() > 1:
        raise ValueError(f"{where}: the model's outputs range {np.nanmin(raw):.4g}.."
                         f"{np.nanmax(raw):.4g} on these images, not probabilities in [0, 1]; "
                         f"{_END_WITH}.")
    mode = "softmax" if config.task == "multiclass" else "sigmoid"
    probabilities = apply_temperature(raw, config.temperature, mode=mode)
    if config.task == "multiclass":
        predicted = probabilities.argmax(axis=1)
    else:
        predicted = (probabilities >= np.asarray(config.threshold)).astype(np.int32)
    heatmaps = None
    if grad_cam:
        from xraykit.explain import grad_cam as _grad_cam

        heatmaps = _grad_cam(model, x, class_index=class_index)
    return Prediction(probabilities=probabilities, predicted=predicted, raw=raw, images=images,
                      paths=paths, class_names=list(config.class_names),
                      threshold=config.threshold, temperature=config.temperature,
                      heatmaps=heatmaps, failed=failed)
