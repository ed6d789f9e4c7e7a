"""Predictions for image files, as ``python -m xraykit predict`` writes them: rows, CSV/JSON, maps.

:func:`gather_images` turns the command's paths (files and folders, DICOM or PNG/JPEG) into one
list of image files; :func:`predict_files` runs :func:`xraykit.inference.predict` on them with
the thresholds saved beside the model and returns one row per image (the file, the probability
of every finding, the decision at its threshold); :func:`write_rows` saves the rows as CSV or
JSON atomically; :func:`write_grad_cams` draws a Grad-CAM overlay PNG per image and finding.
Rows name images by the path they were given as; nothing read from inside a file (a DICOM's
PatientID, names, dates) ever reaches a row, a message or a file name.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import warnings

import numpy as np

from xraykit import files
from xraykit.folders import gather_images

__all__ = ["FilePredictions", "gather_images", "predict_files", "write_grad_cams", "write_rows"]


@dataclasses.dataclass
class FilePredictions:
    """Predictions for image files.

    Attributes:
        rows: One dict per image read: ``image`` (its path), ``p_<finding>`` and
            ``<finding>`` (0/1 at the finding's threshold) for every output.
        failed: ``{path: reason}`` for the files that could not be read.
        thresholds: ``{finding: threshold}`` used for the decisions.
        prediction: The :class:`xraykit.inference.Prediction` behind the rows.
    """

    rows: list[dict]
    failed: dict[str, str]
    thresholds: dict[str, float]
    prediction: object


def _finding_names(prediction) -> list[str]:
    names = list(prediction.class_names)
    width = prediction.probabilities.shape[1]
    return names[-1:] if width == 1 and len(names) == 2 else names[:width]


def predict_files(model, image_files, grad_cam: bool = False) -> FilePredictions:
    """Probabilities and decisions for image files, at the thresholds saved with the model.

    Args:
        model: A model from :func:`xraykit.inference.load_model` (or its path).
        image_files: Image files (:func:`gather_images`).
        grad_cam: Also compute Grad-CAM maps for every output (see :func:`write_grad_cams`).

    Returns:
        A :class:`FilePredictions`.

    Raises:
        ValueError: If none of the files can be read as an image.
    """
    from xraykit.images import UnreadableFileWarning
    from xraykit.inference import predict

    with warnings.catch_warnings():  # unreadable files are returned in `failed`, said once
        warnings.simplefilter("ignore", UnreadableFileWarning)
        result = predict(model, [str(p) for p in image_files])
    names = _finding_names(result)
    threshold = np.broadcast_to(np.asarray(result.threshold, dtype=float), (len(names),))
    rows = []
    for i, path in enumerate(result.paths):
        row = {"image": str(path)}
        row.update({f"p_{name}": round(float(result.probabilities[i, k]), 6)
                    for k, name in enumerate(names)})
        row.update({name: int(result.predicted[i, k]) for k, name in enumerate(names)})
        rows.append(row)
    if grad_cam:
        from xraykit.explain import grad_cam as explain

        x = result.images if result.images.shape[-1] == model.inputs[0].shape[-1] else \
            np.repeat(result.images, model.inputs[0].shape[-1], axis=-1)
        result.heatmaps = np.stack([explain(model, x, class_index=k)
                                    for k in range(len(names))], axis=1)
    return FilePredictions(rows, dict(result.failed), dict(zip(names, threshold.tolist())),
                           result)


def write_rows(rows: list[dict], path: str | os.PathLike) -> pathlib.Path:
    """Writes prediction rows as CSV or JSON (by the suffix), atomically.

    Args:
        rows: From :class:`FilePredictions`.
        path: A ``.csv`` or ``.json`` file.

    Returns:
        The path written.

    Raises:
        ValueError: If the suffix is neither ``.csv`` nor ``.json``.
    """
    import pandas as pd

    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ValueError(f"{path}: --out must end in .csv or .json.")
    path.parent.mkdir(parents=True, exist_ok=True)
    with files.atomic_write(path, "w", encoding="utf-8", newline="") as handle:
        if suffix == ".csv":
            pd.DataFrame(rows).to_csv(handle, index=False)
        else:
            json.dump(rows, handle, indent=1)
            handle.write("\n")
    return path


def _overlay(image: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """An RGB uint8 picture: the radiograph in grey, the map in colour where it is high."""
    from matplotlib import colormaps

    grey = np.repeat(np.clip(image, 0, 1)[..., None], 3, axis=-1)
    colour = colormaps["jet"](np.clip(heatmap, 0, 1))[..., :3]
    alpha = 0.45 * np.clip(heatmap, 0, 1)[..., None]
    return np.round(255 * ((1 - alpha) * grey + alpha * colour)).astype(np.uint8)


def write_grad_cams(predictions: FilePredictions, folder: str | os.PathLike) -> list[pathlib.Path]:
    """Saves one Grad-CAM overlay PNG per image and finding: ``<image stem>_<finding>.png``.

    Args:
        predictions: From :func:`predict_files` with ``grad_cam=True``.
        folder: Where the PNGs go (created if needed).

    Returns:
        The files written.

    Raises:
        ValueError: If the predictions hold no maps.
    """
    from PIL import Image

    result = predictions.prediction
    if result.heatmaps is None:
        raise ValueError("no Grad-CAM maps: call predict_files(..., grad_cam=True).")
    folder = files.check_writable(folder, "--gradcam folder", "pass a folder you can write to")
    names = _finding_names(result)
    written, used = [], set()
    for i, source in enumerate(result.paths):
        stem = pathlib.Path(source).stem
        while stem in used:  # two folders may hold files of one name
            stem += "_"
        used.add(stem)
        for k, name in enumerate(names):
            target = folder / f"{stem}_{name}.png"
            picture = _overlay(result.images[i, ..., 0], result.heatmaps[i, k])
            with files.atomic_write(target) as handle:
                Image.fromarray(picture).save(handle, format="PNG")
            written.append(target)
    return written
