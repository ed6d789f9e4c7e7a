"""Serving a trained model: export to a portable format, run it without Keras, quantize, measure.

Keras 3 exports a model with ``model.export(path, format=...)``: ``"tf_saved_model"`` (a
folder that TensorFlow serves alone), ``"onnx"`` (one file for ONNX Runtime; it needs the
``onnx`` packages at export time) or ``"litert"`` (TensorFlow Lite). :func:`export_model`
writes the export under a temporary name and renames it when complete, so a crash never leaves
half an export under the final name. :func:`serve_exported` runs the exported file in a
**fresh process that imports only its runtime** (TensorFlow or ONNX Runtime, never Keras or
xraykit), as a server would, and returns its outputs and its speed, so that they can be
compared with the Keras model's on the same images::

    path = xraykit.export.export_model(model, "model_export")
    served = xraykit.export.serve_exported(path, images)
    np.abs(served.outputs - model.predict(images)).max()

:func:`quantized_copy` is ``model.quantize("int8")`` on a copy of the model, so the float
model stays available for the paired comparison; :func:`size_on_disk` and
:func:`images_per_second` measure what the change buys.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

from xraykit import files

__all__ = ["EXPORT_FORMATS", "ServedRun", "export_model", "images_per_second",
           "quantized_copy", "quantized_layers", "serve_exported", "size_on_disk"]

#: Export formats of ``keras.Model.export`` that :func:`serve_exported` can run, and the module
#: that runs each one (the only library the serving process imports besides NumPy).
EXPORT_FORMATS = {"tf_saved_model": "tensorflow", "onnx": "onnxruntime"}

# The whole serving program: NumPy and the format's runtime, nothing else. Keras and xraykit are
# blocked (importing them raises ImportError; TensorFlow tries Keras on import and goes on
# without it), so the run proves the export needs neither. It reads the images from an .npy
# file, warms up on one batch, then times one pass over all images.
_BLOCKED = ("keras", "xraykit")
_SERVE_PROGRAM = """
import json, sys, time
for blocked in %r:
    sys.modules[blocked] = None
import numpy as np
fmt, model_path, images_path, outputs_path, batch = sys.argv[1:6]
batch, x = int(batch), np.load(images_path)
if fmt == "tf_saved_model":
    import tensorflow as tf
    served = tf.saved_model.load(model_path)
    run = lambda b: served.serve(tf.constant(b)).numpy()
else:
    import onnxruntime as ort
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    run = lambda b: session.run(None, {name: b})[0]
run(x[:batch])
start = time.perf_counter()
out = np.concatenate([run(x[i:i + batch]) for i in range(0, len(x), batch)])
seconds = time.perf_counter() - start
np.save(outputs_path, out.astype(np.float32))
print("XRAYKIT_SERVED " + json.dumps({"seconds": seconds}))
""" % (_BLOCKED,)


def _check_format(format: str) -> str:
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format {format!r} is not one xraykit serves: use one of "
                         f"{', '.join(EXPORT_FORMATS)} (keras.Model.export's names).")
    return format


def _format_of(path: pathlib.Path) -> str:
    return "tf_saved_model" if path.is_dir() else "onnx"


def export_model(model, path: str | os.PathLike, format: str = "tf_saved_model") -> pathlib.Path:
    """Exports a Keras model for serving with ``model.export``, atomically.

    Args:
        model: A built Keras model (float32 outputs).
        path: Destination: a folder for ``"tf_saved_model"``, a ``.onnx`` file for ``"onnx"``.
            An existing export there is replaced only once the new one is complete.
        format: ``"tf_saved_model"`` (needs TensorFlow installed, under every backend) or
            ``"onnx"`` (needs the ``onnx`` export packages).

    Returns:
        The path of the export.

    Raises:
        ValueError: On an unknown format.
        RuntimeError: If Keras cannot export the model (a missing export package is named).
    """
    format, path = _check_format(format), pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "onnx":
        with files.atomic_files(path, suffix=".part.onnx") as (tmp,):
            _keras_export(model, tmp, format)
        return path
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        _keras_export(model, tmp, format)
        if path.exists():  # the old export goes only once the new one is complete
            old = path.with_name(f".{path.name}.{secrets.token_hex(4)}.old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _keras_export(model, target: pathlib.Path, format: str) -> None:
    # TensorFlow logs "Assets written to ..." at INFO level whatever `verbose` says.
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        with warnings.catch_warnings():
            # Under torch the ONNX export traces the model, and PyTorch's tracer warns about Keras'
            # own shape arithmetic (Python ints and booleans read from tensors): nothing to act on.
            warnings.filterwarnings("ignore", message="Converting a tensor to a Python")
            model.export(str(target), format=format, verbose=False)
    except ImportError as err:
        raise RuntimeError(f"exporting to {format!r} needs a package that is not installed "
                           f"({err}); install it, or use format='tf_saved_model'.") from err
    finally:
        logger.setLevel(level)


@dataclasses.dataclass
class ServedRun:
    """What a fresh serving process returned.

    Attributes:
        outputs: The model's outputs ``(N, K)``, float32.
        seconds: Time of one pass over the images (after a warm-up batch).
        images_per_second: ``N / seconds``.
        runtime: The module that served the model (``"tensorflow"`` or ``"onnxruntime"``).
        blocked: Modules the serving process could not import (``keras``, ``xraykit``): the
            export ran without them.
    """

    outputs: np.ndarray
    seconds: float
    images_per_second: float
    runtime: str
    blocked: tuple[str, ...] = _BLOCKED


def serve_exported(path: str | os.PathLike, images, batch_size: int = 32,
                   timeout: float = 600) -> ServedRun:
    """Runs an exported model in a fresh Python process that imports only its runtime.

    Args:
        path: A ``tf_saved_model`` folder or an ``.onnx`` file from :func:`export_model`.
        images: The model's inputs ``(N, H, W, C)``, float32 in [0, 1].
        batch_size: Images per call.
        timeout: Seconds allowed to the serving process.

    Returns:
        A :class:`ServedRun`.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        RuntimeError: If the serving process fails or times out (its last error line is
            quoted).
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such export; write one with "
                                "xraykit.export.export_model.")
    format = _format_of(path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory() as work:
        inputs, outputs = pathlib.Path(work, "images.npy"), pathlib.Path(work, "outputs.npy")
        np.save(inputs, np.asarray(images, dtype=np.float32))
        command = [sys.executable, "-c", _SERVE_PROGRAM, format, str(path.resolve()), str(inputs),
                   str(outputs), str(int(batch_size))]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  env=env, cwd=work)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{path}: the serving process took more than {timeout:g} s; "
                               "pass a larger timeout or fewer images.") from None
        report = [line for line in done.stdout.splitlines() if line.startswith("XRAYKIT_SERVED")]
        if done.returncode != 0 or not report:
            lines = done.stderr.strip().splitlines() or ["no error output"]
            raise RuntimeError(f"{path}: serving with {EXPORT_FORMATS[format]} failed (exit "
                               f"{done.returncode}): {lines[-1][:300]}")
        values = json.loads(report[-1].split(" ", 1)[1])
        result = np.load(outputs)
    seconds = max(values["seconds"], 1e-9)
    return ServedRun(result.reshape(len(result), -1), values["seconds"], len(result) / seconds,
                     EXPORT_FORMATS[format])


def quantized_layers(model) -> list[str]:
    """Names of the layers of a model (nested ones included) holding quantized weights.

    Args:
        model: A Keras model.

    Returns:
        The layer names, e.g. ``["logits"]``: Keras 3 quantizes ``Dense``, ``EinsumDense`` and
        ``Embedding`` layers; convolutions keep their float weights.
    """
    found = []
    stack = list(model.layers)
    while stack:
        layer = stack.pop(0)
        stack.extend(getattr(layer, "layers", ()))
        if getattr(layer, "quantization_mode", None):
            found.append(layer.name)
    return found


def quantized_copy(model, mode: str = "int8"):
    """``model.quantize(mode)`` applied to a copy, so the float model stays as it was.

    The copy computes in float32 whatever the model's policy: Keras refuses to quantize layers
    that compute in float16 (``mixed_float16``, a T4's policy), and the int8 copy is for serving.

    Args:
        model: A built Keras model.
        mode: A ``keras.Model.quantize`` mode (``"int8"``, ``"float8"``, ``"int4"``).

    Returns:
        ``(quantized_model, names of the quantized layers)``.

    Raises:
        ValueError: If no layer of the model could be quantized (Keras quantizes Dense,
            EinsumDense and Embedding layers only).
    """
    import keras

    def float32_layer(layer):
        config = layer.get_config()
        if "dtype" in config:  # layers have a policy; a functional graph's plain ops do not
            config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")  # the policy of the copy itself
    try:
        copy = keras.models.clone_model(model, clone_function=float32_layer, recursive=True)
    finally:
        keras.config.set_dtype_policy(policy)
    copy.set_weights(model.get_weights())
    with warnings.catch_warnings():  # one warning per layer type that keeps float weights
        warnings.filterwarnings("ignore", message=".*does not have a `quantize` method")
        copy.quantize(mode)
    names = quantized_layers(copy)
    if not names:
        raise ValueError(f"model {model.name!r} has no layer that keras quantizes to {mode!r} "
                         "(Dense, EinsumDense or Embedding).")
    return copy, names


def size_on_disk(path: str | os.PathLike) -> int:
    """Bytes a saved model takes: a file's size, or the sum over a folder's files.

    Args:
        path: A ``.keras`` or ``.onnx`` file, or a SavedModel folder.

    Returns:
        The size in bytes.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
    """
    path = pathlib.Path(path)
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder.")
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def images_per_second(model, images, batch_size: int = 32, repeats: int = 1) -> float:
    """Prediction speed of a Keras model on these images (after a warm-up batch).

    Args:
        model: A Keras model.
        images: Its inputs.
        batch_size: Images per batch.
        repeats: Passes timed (the best is kept: the least disturbed by other work).

    Returns:
        Images per second.
    """
    images = np.asarray(images, dtype=np.float32)
    model.predict(images[:batch_size], batch_size=batch_size, verbose=0)
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        model.predict(images, batch_size=batch_size, verbose=0)
        best = min(best, time.perf_counter() - start)
    return len(images) / max(best, 1e-9)
