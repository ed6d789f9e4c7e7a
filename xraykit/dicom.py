"""DICOM reading with correct photometry, and a summary of a file's non-identifying tags.

Every image comes out as float32 ``(H, W)`` in [0, 1] with dense tissue bright (the
MONOCHROME2 look), whatever the file's photometric interpretation. The order of operations
follows the DICOM standard: modality LUT (RescaleSlope/Intercept) → VOI (optional) →
MONOCHROME1 inversion → scaling to [0, 1] by the real range (the stored bits, or the window).
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from typing import Any

import numpy as np

from xraykit.pixels import MultiFrameWarning, to_gray, to_unit_range

# Tags that may be shown: none of them identifies a patient.
SAFE_TAGS = (
    "Modality", "BodyPartExamined", "ViewPosition", "PhotometricInterpretation",
    "SamplesPerPixel", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "Rows", "Columns", "PixelSpacing", "ImagerPixelSpacing", "RescaleSlope",
    "RescaleIntercept", "WindowCenter", "WindowWidth", "NumberOfFrames",
)

Window = tuple[float, float] | str | None
DICOM_SUFFIXES = (".dcm", ".dicom")

_QUIET_LOCK = threading.Lock()
_quiet = {"depth": 0, "saved": None}


@contextlib.contextmanager
def _values_not_echoed():
    """Reads with pydicom's value validation off, so its warnings never quote a tag's value.

    pydicom warns (and logs) ``Invalid value for VR DS: '<value>'`` for a malformed tag, and a
    malformed identifying tag would put a patient identifier in that warning. xraykit checks
    the tags it needs itself (:func:`_number` names the tag, never its value). The setting is
    pydicom's global one: it is switched off while any xraykit read runs and restored after
    the last one, whatever the threads.
    """
    from pydicom import config

    with _QUIET_LOCK:
        if _quiet["depth"] == 0:
            _quiet["saved"] = config.settings.reading_validation_mode
            config.settings.reading_validation_mode = config.IGNORE
        _quiet["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet["depth"] -= 1
            if _quiet["depth"] == 0:
                config.settings.reading_validation_mode = _quiet["saved"]


def _pydicom():
    try:
        import pydicom
    except ImportError as err:  # pragma: no cover - pydicom is a core dependency
        raise ImportError("Reading DICOM needs pydicom: pip install pydicom") from err
    return pydicom


def _tag_name(keyword: str) -> str:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})" if tag is not None else keyword


def _number(ds, keyword: str, path, default: float | None = None, integer: bool = False) -> float:
    """The first value of a numeric tag, checked; errors name the tag, never its value."""
    if keyword not in ds:
        if default is not None:
            return default
        raise ValueError(f"{path}: the required tag {_tag_name(keyword)} is missing; the image "
                         "cannot be decoded without it. Fix the file's header or re-export it.")
    try:
        value = ds[keyword].value
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            value = value[0]
        number = float(value)
    except Exception:
        number = float("nan")
    if not np.isfinite(number) or (integer and not number.is_integer()):
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"{path}: the tag {_tag_name(keyword)} is not {kind}; correct or "
                         "remove it (e.g. with pydicom) before reading the image.")
    return number


# The first bytes of the image files most often found renamed ``.dcm``.
_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"II*\x00": "TIFF",
               b"MM\x00*": "TIFF", b"BM": "BMP", b"GIF8": "GIF", b"RIFF": "WEBP"}
_FLOAT_KEYWORDS = ("FloatPixelData", "DoubleFloatPixelData")
# Photometric interpretations read, and their samples per pixel (pydicom turns YBR into RGB).
PHOTOMETRIC_SAMPLES = {"MONOCHROME1": 1, "MONOCHROME2": 1, "PALETTE COLOR": 1, "RGB": 3,
                       "YBR_FULL": 3, "YBR_FULL_422": 3, "YBR_PARTIAL_420": 3, "YBR_ICT": 3,
                       "YBR_RCT": 3}


def image_format(path: str | os.PathLike) -> str | None:
    """The format of a PNG, JPEG, TIFF, BMP, GIF or WebP file, by its first bytes.

    Args:
        path: A file.

    Returns:
        ``"PNG"``, ``"JPEG"``... or ``None`` when the file starts like none of them (or cannot
        be read).
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError:
        return None
    if head.startswith(b"RIFF") and head[8:12] != b"WEBP":
        return None
    return next((name for magic, name in _SIGNATURES.items() if head.startswith(magic)), None)


def _pixel_keyword(ds) -> str | None:
    """Which pixel data element the dataset holds (integer, float or double float), if any."""
    return next((k for k in ("PixelData", *_FLOAT_KEYWORDS) if k in ds), None)


def _read_dataset(path: str | os.PathLike):
    """Reads a DICOM file, with or without a Part-10 header."""
    pydicom = _pydicom()
    from pydicom.uid import ImplicitVRLittleEndian

    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise ValueError(f"{path}: the file is empty (0 bytes); copy it again or remove it.")
    other = image_format(path)
    if other is not None:
        raise ValueError(f"{path}: a {other} file, not DICOM (its name says otherwise); read it "
                         "with xraykit.read_image, which reads it by its content, or rename it.")
    try:
        ds = pydicom.dcmread(os.fspath(path), force=True)
    except MemoryError:
        raise
    except Exception as err:
        raise ValueError(f"{path}: not a readable DICOM file ({type(err).__name__}: {err}).") \
            from err
    if _pixel_keyword(ds) is None:
        raise ValueError(f"{path}: the DICOM file holds no image (no PixelData, FloatPixelData "
                         "or DoubleFloatPixelData element): it "
                         "is not an image, or it is truncated before or inside its pixel data; "
                         "copy or export it again.")
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        # Files without the Part-10 header carry no transfer syntax: raw DICOM is implicit VR
        # little endian unless said otherwise.
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return ds


def _check_image_tags(ds, path) -> None:
    """Checks the Image Pixel tags that decoding and scaling rely on, before decoding."""
    from PIL import Image

    rows = _number(ds, "Rows", path, integer=True)
    columns = _number(ds, "Columns", path, integer=True)
    frames = _number(ds, "NumberOfFrames", path, default=1, integer=True)
    allocated = _number(ds, "BitsAllocated", path, integer=True)
    floats = _pixel_keyword(ds) in _FLOAT_KEYWORDS
    if floats:  # float pixel data have no BitsStored nor PixelRepresentation
        stored, representation = allocated, 0
    else:
        stored = _number(ds, "BitsStored", path, integer=True)
        representation = _number(ds, "PixelRepresentation", path, integer=True)
    _check_photometric(ds, path)
    if (min(rows, columns, frames) < 1 or not 1 <= stored <= allocated
            or representation not in (0, 1)):
        raise ValueError(
            f"{path}: inconsistent image tags (Rows, Columns, NumberOfFrames must be >= 1, "
            "BitsStored between 1 and BitsAllocated, PixelRepresentation 0 or 1); fix the "
            "file's header or re-export it."
        )
    limit = Image.MAX_IMAGE_PIXELS
    if limit and rows * columns * frames > limit:
        raise ValueError(
            f"{path}: the header claims {int(rows)}x{int(columns)} pixels x {int(frames)} "
            f"frame(s), more than the limit of {limit} pixels (PIL.Image.MAX_IMAGE_PIXELS) that "
            "guards against decompression bombs; raise that limit only for a trusted file."
        )


def _check_photometric(ds, path) -> None:
    """Names an unsupported photometric interpretation or a sample count that does not fit it."""
    if "PhotometricInterpretation" not in ds:
        raise ValueError(f"{path}: the required tag {_tag_name('PhotometricInterpretation')} is "
                         "missing, so it is unknown whether high values are bright or dark; fix "
                         "the file's header.")
    photometric = str(ds.PhotometricInterpretation).strip().upper()
    if photometric not in PHOTOMETRIC_SAMPLES:
        raise ValueError(
            f"{path}: {_tag_name('PhotometricInterpretation')} {photometric[:20]!r} is not "
            f"supported; xraykit reads {', '.join(PHOTOMETRIC_SAMPLES)}. Convert the file "
            "(e.g. to MONOCHROME2) and read it again.")
    samples = int(_number(ds, "SamplesPerPixel", path, default=1, integer=True))
    if samples != PHOTOMETRIC_SAMPLES[photometric]:
        raise ValueError(
            f"{path}: {_tag_name('SamplesPerPixel')} is {samples}, but a {photometric} image "
            f"has {PHOTOMETRIC_SAMPLES[photometric]} sample(s) per pixel; fix the header.")
    if samples > 1 and not ds.file_meta.TransferSyntaxUID.is_compressed:
        _number(ds, "PlanarConfiguration", path, integer=True)  # needed to lay out colours


def _check_lut(item, keyword: str, path, where: str, data_keyword: str = "LUTData") -> None:
    """Checks one LUT: a descriptor of three integers (entries, first value, bits) and its data.

    Raises:
        ValueError: Naming ``where`` (the sequence or tag) and what is malformed.
    """
    descriptor = item.get(keyword)
    value = getattr(descriptor, "value", descriptor)
    try:
        entries, _, bits = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {where}: {_tag_name(keyword)} is missing or malformed (it "
                         "needs three integers: entries, first mapped value, bits per entry); "
                         "fix or remove it.") from None
    entries = entries or 65536  # 0 means 2**16 entries
    data = item.get(data_keyword)
    data = getattr(data, "value", data)
    if isinstance(data, (bytes, bytearray)):
        available = len(data) // 2 if bits > 8 else len(data)
    else:
        available = len(data) if isinstance(data, (list, tuple)) or hasattr(data, "__len__") else 0
    if not 1 <= bits <= 16 or available < entries:
        raise ValueError(f"{path}: {where}: {_tag_name(keyword)} promises {entries} entries of "
                         f"{bits} bits but {_tag_name(data_keyword)} holds {available}; fix or "
                         "remove the LUT.")


def _check_lut_sequence(ds, keyword: str, path) -> None:
    """Checks a Modality or VOI LUT Sequence before pydicom applies its first item."""
    if keyword not in ds:
        return
    sequence = ds[keyword].value
    if not sequence:
        raise ValueError(f"{path}: {_tag_name(keyword)} is empty; remove it or add its LUT.")
    _check_lut(sequence[0], "LUTDescriptor", path, f"{_tag_name(keyword)} item 1")


def _check_palette(ds, path) -> None:
    """Checks the three Palette Color Lookup Tables (descriptor and data) of a PALETTE image."""
    for colour in ("Red", "Green", "Blue"):
        _check_lut(ds, f"{colour}PaletteColorLookupTableDescriptor", path,
                   f"the {colour.lower()} palette", f"{colour}PaletteColorLookupTableData")


def _check_modality_tags(ds, path) -> None:
    """Refuses rescale values or a Modality LUT that would silently flatten or corrupt the image."""
    _check_lut_sequence(ds, "ModalityLUTSequence", path)
    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        slope = _number(ds, "RescaleSlope", path, default=1.0)
        _number(ds, "RescaleIntercept", path, default=0.0)
        if slope == 0:
            raise ValueError(f"{path}: the tag {_tag_name('RescaleSlope')} is 0, which maps every "
                             "pixel to the same value; correct it (1 when there is no rescale).")


def _decode_pixels(ds, path) -> np.ndarray:
    from pydicom.pixels import get_decoder

    _check_image_tags(ds, path)
    syntax = ds.file_meta.TransferSyntaxUID
    name = getattr(syntax, "name", str(syntax))
    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:
        raise RuntimeError(f"{path}: pydicom cannot decode pixel data stored as {name!r}; "
                           "convert the file to an uncompressed transfer syntax.") from None
    if not available:
        hint = "pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg"
        if "2000" in name:
            hint = "pip install pylibjpeg pylibjpeg-openjpeg (or Pillow with OpenJPEG)"
        elif "RLE" in name:
            hint = "pip install pylibjpeg pylibjpeg-rle"
        raise RuntimeError(f"{path}: cannot decode pixel data compressed as {name!r}: no "
                           f"installed package decodes it. Install a decoder: {hint}")
    try:
        return ds.pixel_array
    except MemoryError:
        raise
    except Exception as err:
        if not syntax.is_compressed:
            bits = int(ds.BitsAllocated)
            expected = (int(ds.Rows) * int(ds.Columns) * int(ds.get("NumberOfFrames", 1) or 1)
                        * int(ds.get("SamplesPerPixel", 1)) * bits + 7) // 8
            length = len(ds[_pixel_keyword(ds)].value)
            if length < expected:
                raise ValueError(
                    f"{path}: the file is truncated: its pixel data has {length} "
                    f"bytes where Rows x Columns x BitsAllocated need {expected}. Copy or "
                    "export the file again."
                ) from None
        raise ValueError(
            f"{path}: the pixel data ({name}) cannot be decoded; the file is probably truncated "
            f"or corrupt ({type(err).__name__}). Copy or export the file again."
        ) from err


def _stored_range(ds) -> tuple[float, float]:
    """The range the stored bits allow, mapped through the modality LUT."""
    from pydicom.pixels import apply_modality_lut

    bits = int(ds.BitsStored)  # checked by _check_image_tags
    if int(ds.PixelRepresentation) == 1:
        stored = np.array([-(2 ** (bits - 1)), 2 ** (bits - 1) - 1])
    else:
        stored = np.array([0, 2**bits - 1])
    mapped = np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
    return float(mapped.min()), float(mapped.max())


def _first_frame(pixels: np.ndarray, ds, path) -> np.ndarray:
    """The first frame, with a warning, when the decoded pixels hold several.

    Counted from the decoded array, not NumberOfFrames: pydicom decodes pixel data that hold
    more than the frames the header announces as that many frames.
    """
    single = 2 if int(ds.get("SamplesPerPixel", 1) or 1) == 1 else 3
    if pixels.ndim > single:
        declared = int(ds.get("NumberOfFrames", 1) or 1)
        note = "" if declared == pixels.shape[0] else f" (NumberOfFrames says {declared})"
        warnings.warn(f"{path}: {pixels.shape[0]} frames{note}; using the first.",
                      MultiFrameWarning, stacklevel=3)
        pixels = pixels[0]
    return pixels


def _to_gray(pixels: np.ndarray, ds, path) -> np.ndarray:
    pixels = _first_frame(pixels, ds, path)
    if int(ds.get("SamplesPerPixel", 1)) == 3:
        pixels = to_gray(pixels.astype(np.float64))
    return pixels


def _palette_to_gray(pixels: np.ndarray, ds, path) -> np.ndarray:
    """PALETTE COLOR: looks each stored index up in the file's colour tables, as pydicom does."""
    from pydicom.pixels import apply_color_lut

    _check_palette(ds, path)
    try:
        rgb = apply_color_lut(_first_frame(pixels, ds, path), ds)
    except MemoryError:
        raise
    except Exception as err:
        raise ValueError(
            f"{path}: PALETTE COLOR image whose Red/Green/Blue Palette Color Lookup Table tags "
            f"cannot be applied ({type(err).__name__}); fix or re-export the file."
        ) from None
    return to_gray(to_unit_range(rgb, path))


def _check_window(window) -> None:
    """Accepts None, "dicom" or a (center, width) pair of finite numbers with width > 0."""
    if window is None:
        return
    if isinstance(window, str):
        if window != "dicom":
            hint = " (did you mean 'dicom'?)" if window.strip().lower() == "dicom" else ""
            raise ValueError(f"window must be None, 'dicom' or (center, width), not "
                             f"{window!r}{hint}.")
        return
    try:
        values = list(window)
        ok = len(values) == 2 and all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            for v in values)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"window must be None, 'dicom' or a (center, width) pair of numbers, "
                         f"e.g. window=(550, 1024); got {window!r}.")
    center, width = (float(v) for v in values)
    if not (np.isfinite(center) and np.isfinite(width)):
        raise ValueError(f"window center and width must be finite numbers, got {window!r}.")
    if width < 1:  # DICOM's LINEAR window needs a width of at least 1
        raise ValueError(f"Window width must be positive (at least 1), got {width}.")


def read_dicom(path: str | os.PathLike, window: Window = None) -> np.ndarray:
    """Reads a DICOM radiograph as a float32 image in [0, 1] with dense tissue bright.

    Args:
        path: A DICOM file, with or without the Part-10 header.
        window: ``None`` applies the modality LUT and scales by the range the stored bits
            allow (no VOI, so nothing is clipped); ``"dicom"`` applies the file's VOI with
            ``pydicom.pixels.apply_voi_lut``: its VOI LUT sequence, else its
            WindowCenter/WindowWidth with its VOILUTFunction (LINEAR, LINEAR_EXACT or
            SIGMOID); ``(center, width)`` applies that LINEAR window, in modality units (e.g.
            Hounsfield units for CT): two finite numbers, width >= 1. PALETTE COLOR images
            take only ``None``: their colour tables give the grey levels.

    Returns:
        Array ``(H, W)`` of float32 in [0, 1]; MONOCHROME1 files are inverted so that they
        look like MONOCHROME2; PALETTE COLOR and RGB files become luminance
        (:func:`xraykit.pixels.to_gray`).

    Raises:
        ValueError: If ``window`` is malformed; if the file is not DICOM, is empty, has no
            image, has truncated or corrupt pixel data, has a missing or malformed tag that
            reading needs (named in the message, its value never shown), a RescaleSlope of 0
            or a window width < 1; if ``window="dicom"`` is asked of a file with no window, or
            any window of a colour image; or if the header claims more pixels than
            ``PIL.Image.MAX_IMAGE_PIXELS``.
        RuntimeError: If the pixel data is compressed in a format no installed package decodes.

    Example:
        >>> image = read_dicom("chest.dcm", window="dicom")  # doctest: +SKIP
    """
    _check_window(window)
    with _values_not_echoed():
        return _read_dicom(path, window)


def _read_dicom(path, window: Window) -> np.ndarray:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds = _read_dataset(path)
    pixels = _decode_pixels(ds, path)
    photometric = str(ds.PhotometricInterpretation).strip().upper()
    if photometric == "PALETTE COLOR":
        if window is not None:
            raise ValueError(f"{path}: windowing does not apply to a PALETTE COLOR image; use "
                             "window=None.")
        return _palette_to_gray(pixels, ds, path).astype(np.float32)
    pixels = _to_gray(pixels, ds, path)
    floats = _pixel_keyword(ds) in _FLOAT_KEYWORDS
    if floats:  # float pixel data are real values already: no modality LUT, no stored range
        values = pixels.astype(np.float64)
    else:
        _check_modality_tags(ds, path)
        values = np.asarray(apply_modality_lut(pixels, ds), dtype=np.float64)
    if window is not None and photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"{path}: a {photometric} image has no window (DICOM windows grey "
                         "MONOCHROME1/2 images); use window=None.")

    if window is None:
        low, high = _float_range(values, ds, path) if floats else _stored_range(ds)
    elif isinstance(window, str):  # "dicom", checked by _check_window
        if "VOILUTSequence" in ds:
            if floats:
                raise ValueError(f"{path}: a VOI LUT on {_pixel_keyword(ds)} is not supported "
                                 "(its entries index integers); use window=(center, width).")
            _check_lut_sequence(ds, "VOILUTSequence", path)
            values = np.asarray(apply_voi_lut(values, ds), dtype=np.float64)
            low, high = 0.0, float(2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
        elif "WindowCenter" in ds and "WindowWidth" in ds:
            _number(ds, "WindowCenter", path)
            if _number(ds, "WindowWidth", path) < 1:
                raise ValueError(
                    f"{path}: the tag {_tag_name('WindowWidth')} is not positive (at least 1), "
                    "so it defines no window; use window=None or window=(center, width)."
                )
            values, low, high = _windowed(values, ds)
        else:
            raise ValueError(
                f"{path}: the file has no VOI LUT and no WindowCenter/WindowWidth; "
                "use window=None or window=(center, width)."
            )
    else:
        from pydicom.valuerep import DSfloat

        center, width = (float(v) for v in window)
        ds.WindowCenter = DSfloat(center, auto_format=True)
        ds.WindowWidth = DSfloat(width, auto_format=True)
        ds.VOILUTFunction = "LINEAR"
        values, low, high = _windowed(values, ds)

    span = high - low if high != low else 1.0
    image = np.clip((values - low) / span, 0.0, 1.0)
    if photometric == "MONOCHROME1":
        image = 1.0 - image
    return image.astype(np.float32)


def _float_range(values: np.ndarray, ds, path) -> tuple[float, float]:
    """The range of float pixel data without a window: [0, 1], which they must lie in.

    Raises:
        ValueError: If values are NaN/inf or outside [0, 1] (their scale is unknown).
    """
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        finite = values[np.isfinite(values)]
        span = f"{finite.min():.4g}..{finite.max():.4g}" if finite.size else "no finite value"
        raise ValueError(
            f"{path}: {_pixel_keyword(ds)} (floating-point pixels) range {span}"
            f"{' with NaN/inf' if finite.size < values.size else ''}, outside [0, 1]; floats have "
            "no stored bit depth to scale by. Pass window=(center, width) (or window='dicom' "
            "when the file has one), or rescale the pixels to [0, 1].")
    return 0.0, 1.0


def _windowed(values: np.ndarray, ds) -> tuple[np.ndarray, float, float]:
    """The file's window applied by pydicom, and the values its two ends map to.

    ``apply_windowing`` maps values below the window to the bottom of the output range and
    values above it to the top (for SIGMOID, in the limit), so windowing the two extreme
    float64 values gives that range whatever the VOILUTFunction.
    """
    from pydicom.pixels import apply_windowing

    windowed = np.asarray(apply_windowing(values, ds), dtype=np.float64)
    extremes = np.array([-np.finfo(np.float64).max, np.finfo(np.float64).max])
    with np.errstate(over="ignore"):
        low, high = np.asarray(apply_windowing(extremes, ds), dtype=np.float64)
    return windowed, float(low), float(high)


def stored_pixels(path: str | os.PathLike) -> np.ndarray:
    """Returns the pixel values as stored in the file, before any LUT or inversion.

    Useful to show what a viewer would display without photometric handling (e.g. a
    MONOCHROME1 file looks like a negative).

    Args:
        path: A DICOM file, with or without the Part-10 header.

    Returns:
        The raw pixel array (first frame for multi-frame files).
    """
    with _values_not_echoed():
        ds = _read_dataset(path)
        return _to_gray(_decode_pixels(ds, path), ds, path)


def dicom_summary(path: str | os.PathLike) -> dict[str, Any]:
    """Summarises a DICOM file with non-identifying tags only.

    Patient name, patient ID, dates and every other identifying element are never read
    into the summary, and pydicom's warnings about malformed values (which quote the value)
    are not passed on.

    Args:
        path: A DICOM file.

    Returns:
        A dict with the modality, view, photometric interpretation, bit depth, pixel spacing,
        size, window and rescale values (those present), plus the transfer syntax name.
    """
    with _values_not_echoed():
        return _summary(path)


def _summary(path) -> dict[str, Any]:
    ds = _read_dataset(path)
    summary: dict[str, Any] = {}
    for tag in SAFE_TAGS:
        if tag in ds:
            value = ds.get(tag)
            try:
                if hasattr(value, "__iter__") and not isinstance(value, str):
                    value = [float(v) for v in value]
                elif isinstance(value, (int, float)) or type(value).__name__ in ("DSfloat", "IS"):
                    value = float(value) if "." in str(value) else int(value)
                else:
                    value = str(value)
            except (TypeError, ValueError):  # a malformed number: shown as stored
                value = str(value)
            summary[tag] = value
    syntax = ds.file_meta.TransferSyntaxUID
    summary["TransferSyntax"] = getattr(syntax, "name", str(syntax))
    return summary


def is_dicom(path: str | os.PathLike) -> bool:
    """Tells whether a file is DICOM, by its content first, then by its name.

    The ``DICM`` magic makes it DICOM; a file that starts like a PNG, JPEG, TIFF, BMP, GIF or
    WebP is not, whatever its name (a PNG renamed ``.dcm``); otherwise a ``.dcm``/``.dicom``
    name makes it DICOM (files without the Part-10 header have no magic).

    Args:
        path: A file path.

    Returns:
        ``True`` for a DICOM file.
    """
    from pydicom.misc import is_dicom as has_dicm_preamble

    try:
        if has_dicm_preamble(path):
            return True
    except OSError:  # absent, a folder, unreadable
        return False
    return image_format(path) is None and str(path).lower().endswith(DICOM_SUFFIXES)
