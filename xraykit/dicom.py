"""DICOM reading with correct photometry, and a summary of a file's non-identifying tags.

Every image comes out as float32 ``(H, W)`` in [0, 1] with dense tissue bright (the
MONOCHROME2 look), whatever the file's photometric interpretation. The order of operations
follows the DICOM standard: modality LUT (RescaleSlope/Intercept) → VOI (optional) →
MONOCHROME1 inversion → scaling to [0, 1] by the real range (the stored bits, or the window).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

# Tags that may be shown: none of them identifies a patient.
SAFE_TAGS = (
    "Modality", "BodyPartExamined", "ViewPosition", "PhotometricInterpretation",
    "SamplesPerPixel", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "Rows", "Columns", "PixelSpacing", "ImagerPixelSpacing", "RescaleSlope",
    "RescaleIntercept", "WindowCenter", "WindowWidth", "NumberOfFrames",
)

Window = tuple[float, float] | str | None


def _pydicom():
    try:
        import pydicom
    except ImportError as err:  # pragma: no cover - pydicom is a core dependency
        raise ImportError("Reading DICOM needs pydicom: pip install pydicom") from err
    return pydicom


def _read_dataset(path: str | os.PathLike):
    """Reads a DICOM file, with or without a Part-10 header."""
    pydicom = _pydicom()
    from pydicom.uid import ImplicitVRLittleEndian

    try:
        ds = pydicom.dcmread(os.fspath(path), force=True)
    except Exception as err:
        raise ValueError(f"{path}: not a readable DICOM file ({err}).") from err
    if "PixelData" not in ds:
        raise ValueError(f"{path}: the DICOM file holds no image (no PixelData element).")
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        # Files without the Part-10 header carry no transfer syntax: raw DICOM is implicit VR
        # little endian unless said otherwise.
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return ds


def _decode_pixels(ds, path) -> np.ndarray:
    try:
        return ds.pixel_array
    except Exception as err:
        syntax = ds.file_meta.TransferSyntaxUID
        name = getattr(syntax, "name", str(syntax))
        hint = "pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg"
        if "2000" in name:
            hint = "pip install pylibjpeg pylibjpeg-openjpeg (or Pillow with OpenJPEG)"
        elif "RLE" in name:
            hint = "pip install pylibjpeg pylibjpeg-rle"
        raise RuntimeError(
            f"{path}: cannot decode pixel data compressed as {name!r} ({err}). "
            f"Install a decoder: {hint}"
        ) from err


def _first(value) -> float:
    """First number of a possibly multi-valued DICOM element."""
    if isinstance(value, (list, tuple)) or hasattr(value, "__getitem__") and not isinstance(value, str):
        try:
            return float(value[0])
        except TypeError:
            pass
    return float(value)


def _stored_range(ds) -> tuple[float, float]:
    """The range the stored bits allow, mapped through the modality LUT."""
    from pydicom.pixels import apply_modality_lut

    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)))
    if int(ds.get("PixelRepresentation", 0)) == 1:
        stored = np.array([-(2 ** (bits - 1)), 2 ** (bits - 1) - 1])
    else:
        stored = np.array([0, 2**bits - 1])
    mapped = np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
    return float(mapped.min()), float(mapped.max())


def _to_gray(pixels: np.ndarray, ds, path) -> np.ndarray:
    samples = int(ds.get("SamplesPerPixel", 1))
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        warnings.warn(f"{path}: {frames} frames; using the first.", stacklevel=3)
        pixels = pixels[0]
    if samples == 3:
        pixels = pixels.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return pixels


def read_dicom(path: str | os.PathLike, window: Window = None) -> np.ndarray:
    """Reads a DICOM radiograph as a float32 image in [0, 1] with dense tissue bright.

    Args:
        path: A DICOM file, with or without the Part-10 header.
        window: ``None`` applies the modality LUT and scales by the range the stored bits
            allow (no VOI, so nothing is clipped); ``"dicom"`` applies the file's VOI LUT
            sequence, else its WindowCenter/WindowWidth; ``(center, width)`` applies that
            window, in modality units (e.g. Hounsfield units for CT).

    Returns:
        Array ``(H, W)`` of float32 in [0, 1]; MONOCHROME1 files are inverted so that they
        look like MONOCHROME2.

    Raises:
        ValueError: If the file is not DICOM, has no image, or ``window="dicom"`` is asked of
            a file with no window.
        RuntimeError: If the pixel data is compressed in a format no installed package decodes.
    """
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds = _read_dataset(path)
    pixels = _to_gray(_decode_pixels(ds, path), ds, path)
    values = np.asarray(apply_modality_lut(pixels, ds), dtype=np.float64)

    if window is None:
        low, high = _stored_range(ds)
    elif isinstance(window, str):
        if window != "dicom":
            raise ValueError(f"window must be None, 'dicom' or (center, width), not {window!r}.")
        if "VOILUTSequence" in ds:
            values = np.asarray(apply_voi_lut(values, ds), dtype=np.float64)
            low, high = 0.0, float(2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
        elif "WindowCenter" in ds and "WindowWidth" in ds:
            center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
            low, high = center - width / 2, center + width / 2
        else:
            raise ValueError(
                f"{path}: the file has no VOI LUT and no WindowCenter/WindowWidth; "
                "use window=None or window=(center, width)."
            )
    else:
        center, width = (float(v) for v in window)
        if width <= 0:
            raise ValueError(f"Window width must be positive, got {width}.")
        low, high = center - width / 2, center + width / 2

    span = high - low if high > low else 1.0
    image = np.clip((values - low) / span, 0.0, 1.0)
    if str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper() == "MONOCHROME1":
        image = 1.0 - image
    return image.astype(np.float32)


def stored_pixels(path: str | os.PathLike) -> np.ndarray:
    """Returns the pixel values as stored in the file, before any LUT or inversion.

    Useful to show what a viewer would display without photometric handling (e.g. a
    MONOCHROME1 file looks like a negative).

    Args:
        path: A DICOM file, with or without the Part-10 header.

    Returns:
        The raw pixel array (first frame for multi-frame files).
    """
    ds = _read_dataset(path)
    return _to_gray(_decode_pixels(ds, path), ds, path)


def dicom_summary(path: str | os.PathLike) -> dict[str, Any]:
    """Summarises a DICOM file with non-identifying tags only.

    Patient name, patient ID, dates and every other identifying element are never read
    into the summary.

    Args:
        path: A DICOM file.

    Returns:
        A dict with the modality, view, photometric interpretation, bit depth, pixel spacing,
        size, window and rescale values (those present), plus the transfer syntax name.
    """
    ds = _read_dataset(path)
    summary: dict[str, Any] = {}
    for tag in SAFE_TAGS:
        if tag in ds:
            value = ds.get(tag)
            if hasattr(value, "__iter__") and not isinstance(value, str):
                value = [float(v) for v in value]
            elif isinstance(value, (int, float)) or type(value).__name__ in ("DSfloat", "IS"):
                value = float(value) if "." in str(value) else int(value)
            else:
                value = str(value)
            summary[tag] = value
    syntax = ds.file_meta.TransferSyntaxUID
    summary["TransferSyntax"] = getattr(syntax, "name", str(syntax))
    return summary


def is_dicom(path: str | os.PathLike) -> bool:
    """Tells whether a file is DICOM: a ``.dcm``/``.dicom`` name or the ``DICM`` magic.

    Args:
        path: A file path.

    Returns:
        ``True`` for a DICOM file.
    """
    if str(path).lower().endswith((".dcm", ".dicom")):
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False
