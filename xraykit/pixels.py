"""The pixel policy: which arrays are images, on what scale, and how they become grey squares.

Every way into xraykit (image files, DICOMs, ``.npz`` arrays, arrays given to ``predict``, the
NumPy preprocessing functions) asks this module the same questions, so they all get the same
answers:

- **scale**: by the pixel type, never by an image's own range (:func:`to_unit_range`);
- **float images**: finite and in [0, 1], with a hint for the usual mistakes
  (:func:`check_unit_range`);
- **an array of images**: one image or a batch, integer or float, grey or RGB, becomes a float32
  batch ``(N, H, W, 1)`` in [0, 1] or a message saying what is wrong (:func:`to_unit_batch`);
- **colour**: ITU-R BT.601 luma (:func:`to_gray`);
- **size**: a square, by padding or centre-cropping (:func:`resize_square`, :func:`resize_batch`);
  an image with no pixels or a side over :data:`MAX_ASPECT_RATIO` times the other is refused
  (:func:`check_image_shape`);
- **frames**: a file with several (multi-frame DICOM, multi-page TIFF, animated PNG) gives its
  first, with a :class:`MultiFrameWarning`.
"""

from __future__ import annotations

import numpy as np

# ITU-R BT.601 luma weights: the ones Pillow's "L" and "F" conversions use, so a colour PNG, a
# colour DICOM and an RGB array all become the same grey levels.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

# A chest radiograph is close to square (1:1 to about 1:1.5); an image ten times wider than tall
# is a strip, a scout line or a wrong reshape, and would be padded to a square of black.
MAX_ASPECT_RATIO = 10


class MultiFrameWarning(UserWarning):
    """A file holds several frames (multi-frame DICOM, multi-page TIFF, animated PNG)."""


def check_image_shape(image, where=None) -> None:
    """Refuses a 2-D image with no pixels or an extreme aspect ratio.

    Args:
        image: Array ``(H, W)``.
        where: The file (or argument) named in the message.

    Raises:
        ValueError: If a side is 0, or one side is more than :data:`MAX_ASPECT_RATIO` times
            the other.
    """
    shape = np.shape(image)
    prefix = f"{where}: " if where is not None else ""
    if len(shape) < 2 or min(shape[:2]) == 0:
        raise ValueError(f"{prefix}the image has no pixels (shape {shape}); remove it or pass a "
                         "non-empty image.")
    height, width = shape[:2]
    if max(height, width) > MAX_ASPECT_RATIO * min(height, width):
        raise ValueError(f"{prefix}the image is {height}x{width} px, more than "
                         f"{MAX_ASPECT_RATIO}:1; a radiograph is close to square. Check that it "
                         "is the right file (or the right reshape), or crop it first.")


_ARRAY_HELP = ("pass images as a NumPy array: one image (H, W), a batch (N, H, W) or "
               "(N, H, W, C) with C = 1 or 3, floats in [0, 1] or uint8/uint16")
_NOT_PIXELS = {"b": "booleans (a mask?)", "c": "complex numbers", "O": "Python objects",
               "U": "strings", "S": "bytes"}


def to_gray(rgb) -> np.ndarray:
    """Turns colour pixels into grey levels with the ITU-R BT.601 luma weights.

    The weights (0.299, 0.587, 0.114) are those of Pillow's ``convert("L")``; any alpha
    channel is dropped. The values keep their scale (uint8 in, grey levels 0..255 out), so
    scale them with :func:`to_unit_range` before or after.

    Args:
        rgb: Array ``(..., 3)`` or ``(..., 4)`` (RGB or RGBA).

    Returns:
        Array ``(...)``: float64 for float64 input, else float32.

    Raises:
        ValueError: If the last axis does not hold 3 or 4 channels.

    Example:
        >>> to_gray(np.array([[255, 255, 255], [0, 0, 255]], np.uint8))
        array([255.  ,  29.07], dtype=float32)
    """
    rgb = np.asarray(rgb)
    if rgb.ndim == 0 or rgb.shape[-1] not in (3, 4):
        raise ValueError(f"to_gray expects RGB or RGBA pixels (..., 3|4), got shape {rgb.shape}.")
    gray = rgb[..., :3].astype(np.float64) @ np.array(LUMA_WEIGHTS)
    return gray if rgb.dtype == np.float64 else gray.astype(np.float32)


def to_unit_range(pixels, path=None) -> np.ndarray:
    """Scales pixels to float32 in [0, 1] by their pixel type, never by their own range.

    Stretching each image to its own minimum and maximum would change its contrast; dividing
    by the largest value the type can hold keeps the grey levels comparable across files.

    Args:
        pixels: Array of bool (0/1), uint8 (divided by 255), uint16 (by 65535), other
            integers that fit in 16 bits (by 65535; 32-bit TIFFs), or floats already in
            [0, 1].
        path: The file the pixels came from, named in errors.

    Returns:
        Float32 array of the same shape, in [0, 1].

    Raises:
        ValueError: If integers fall outside 0..65535 or floats outside [0, 1] (or are NaN):
            their scale is unknown, so they are refused rather than clipped.

    Example:
        >>> to_unit_range(np.array([0, 51, 255], np.uint8))
        array([0. , 0.2, 1. ], dtype=float32)
    """
    pixels = np.asarray(pixels)
    where = f"{path}: " if path is not None else ""
    kind = pixels.dtype.kind
    if kind == "b":
        return pixels.astype(np.float32)
    if kind == "u" and pixels.dtype.itemsize == 1:
        return pixels.astype(np.float32) / np.float32(255)
    if kind == "u" and pixels.dtype.itemsize == 2:
        return pixels.astype(np.float32) / np.float32(65535)
    if kind in "iu":  # 32-bit integers: read as 16-bit when they fit, never clipped
        low, high = (int(pixels.min()), int(pixels.max())) if pixels.size else (0, 0)
        if low < 0 or high > 65535:
            raise ValueError(
                f"{where}{8 * pixels.dtype.itemsize}-bit integer pixels range {low}..{high}, "
                "outside 16 bits, so their scale is unknown; save the image as 8- or 16-bit "
                "grayscale PNG, or as a floating-point TIFF in [0, 1]."
            )
        return pixels.astype(np.float32) / np.float32(65535)
    if kind == "f":
        pixels = pixels.astype(np.float32)
        if pixels.size and (not np.isfinite(pixels).all() or pixels.min() < 0
                            or pixels.max() > 1):
            raise ValueError(f"{where}floating-point image with values outside [0, 1] (or NaN); "
                             "rescale it to [0, 1] first.")
        return pixels
    raise ValueError(f"{where}pixels of dtype {pixels.dtype} are not an image; save the image "
                     "as 8- or 16-bit grayscale (or RGB) PNG.")


def _range_hint(low: float, high: float) -> str:
    """What an out-of-[0, 1] range most likely is, and what to do about it."""
    if 1 < high <= 255 and low >= 0:
        return "it looks like 8-bit pixels: divide by 255 (or use xraykit.read_image)"
    if high > 255 and low >= 0:
        return ("it looks like 12/16-bit pixels: divide by the maximum stored value, "
                "or read the file with xraykit.read_image / read_dicom")
    return ("it looks already normalized (negative values): pass the [0, 1] images, "
            "or rescale with xraykit.preprocessing.minmax")


def check_finite(x: np.ndarray, name: str = "images") -> None:
    """Raises a ValueError naming how many NaN/inf values an array holds, and where the first is."""
    finite = np.isfinite(x)
    if not finite.all():
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(
            f"{name} contains {int((~finite).sum())} NaN/inf value(s) (first at index {first} of "
            f"shape {x.shape}): find where they come from (a failed read, a division by a zero "
            "std) or replace them, e.g. np.nan_to_num(x)."
        )


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
        ValueError: If the array is empty, holds NaN/inf, or values outside [0, 1] (e.g. raw
            0-255 pixels or already-normalized data).
    """
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}).")
    check_finite(x, name)
    low, high = float(x.min()), float(x.max())
    if low < -atol or high > 1 + atol:
        raise ValueError(f"{name} must be in [0, 1] but spans [{low:.4g}, {high:.4g}]; "
                         f"{_range_hint(low, high)}.")
    return np.clip(x, 0.0, 1.0)


def _as_batch(x: np.ndarray, name: str, batch: bool | None) -> np.ndarray:
    """``(N, H, W, C)`` from one image or a batch; a 3-D array is a batch unless C is 1 or 3."""
    shape = x.shape
    if x.ndim == 2 and not batch:
        x = x[None, ..., None]
    elif x.ndim == 3:
        single = x.shape[-1] in (1, 3) if batch is None else not batch
        x = x[None] if single else x[..., None]
    if x.ndim != 4:
        raise ValueError(f"{name} has shape {shape} ({len(shape)} dimension(s)); {_ARRAY_HELP}.")
    if x.shape[-1] not in (1, 3):
        raise ValueError(f"{name} has {x.shape[-1]} channels (shape {shape}); pass grayscale "
                         "(C = 1) or RGB (C = 3), e.g. x[..., :3] to drop alpha.")
    return x


def to_unit_batch(images, name: str = "images", batch: bool | None = None,
                  float_white: float = 1.0) -> np.ndarray:
    """Any array of images → a float32 grey batch ``(N, H, W, 1)`` in [0, 1], or a clear error.

    Integers are scaled by their type (:func:`to_unit_range`); floats must be finite and lie in
    ``[0, float_white]``; RGB becomes BT.601 luma (:func:`to_gray`).

    Args:
        images: One image ``(H, W)`` / ``(H, W, C)`` or a batch ``(N, H, W)`` / ``(N, H, W, C)``,
            C = 1 or 3; integer (uint8, uint16) or float.
        name: What to call the array in errors (e.g. ``"file.npz: train_images"``).
        batch: ``True`` if the array is certainly a batch (a 3-D array is ``(N, H, W)``),
            ``False`` if certainly one image, ``None`` to tell by the last axis (1 or 3 =
            channels).
        float_white: The float value that means white (1, or 255 for 0..255 floats).

    Returns:
        Float32 ``(N, H, W, 1)`` in [0, 1].

    Raises:
        TypeError: If the array does not hold numbers (booleans, strings, objects, complex).
        ValueError: If it is empty, has a wrong shape or channel count, holds NaN/inf, or float
            values outside ``[0, float_white]``.
    """
    x = np.asarray(images)
    kind = x.dtype.kind
    if kind not in "fui":
        what = _NOT_PIXELS.get(kind, f"dtype {x.dtype}")
        hint = "; for files pass a path or a list of paths" if kind in "USO" else ""
        raise TypeError(f"{name} holds {what}, not pixel values: {_ARRAY_HELP}{hint}.")
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}): pass at least one image.")
    x = _as_batch(x, name, batch)
    if kind == "f":
        x = x.astype(np.float32)
        check_finite(x, name)
        low, high = float(x.min()), float(x.max())
        if low < 0 or high > float_white:
            white = "" if float_white == 1 else f" (white = {float_white:g})"
            raise ValueError(f"{name} must be in [0, {float_white:g}]{white} or uint8/uint16 but "
                             f"spans [{low:g}, {high:g}]; {_range_hint(low, high)}.")
        x = x / np.float32(float_white)
    else:
        x = to_unit_range(x, name)
    if x.shape[-1] == 3:
        x = to_gray(x)[..., None]
    return x.astype(np.float32, copy=False)


def _reduce(image: np.ndarray, size: int) -> np.ndarray:
    """Shrinks a float image by the largest integer factor that keeps both sides >= 2 * size.

    Box-averaging by an integer factor before the final resampling is what Pillow's own
    ``resize(reducing_gap=2)`` does; doing it here, in one place, makes a file read with
    ``target_size`` and an array resized by :func:`resize_square` give identical pixels.
    """
    from PIL import Image

    factor = min(image.shape) // (2 * size)
    if factor < 2:
        return image
    return np.asarray(Image.fromarray(image, mode="F").reduce(factor))


def resize_square(image: np.ndarray, size: int, mode: str = "pad") -> np.ndarray:
    """Resizes a 2-D image to ``size x size`` keeping its aspect ratio.

    Args:
        image: Array ``(H, W)`` (float, any range).
        size: Side of the output square, in pixels.
        mode: ``"pad"`` fits the whole image and pads the short side with zeros (black),
            centred (``PIL.ImageOps.pad``); ``"crop"`` fills the square and cuts the long
            side, centred (``PIL.ImageOps.fit``).

    Returns:
        Float32 array ``(size, size)``. An image at least 4x larger than ``size`` is first
        box-averaged by an integer factor (as Pillow's ``reducing_gap`` does), then resampled
        bilinearly.

    Raises:
        ValueError: If ``mode`` is unknown, the image is not 2-D, is empty or more than
            :data:`MAX_ASPECT_RATIO` times longer than wide (see :func:`check_image_shape`).

    Example:
        >>> resize_square(np.ones((100, 50), np.float32), 20).shape
        (20, 20)
    """
    from PIL import Image, ImageOps

    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"resize_square expects a 2-D image (H, W), got shape {image.shape}.")
    check_image_shape(image, "resize_square")
    if mode not in ("pad", "crop"):
        raise ValueError(f"mode must be 'pad' or 'crop', not {mode!r}.")
    picture = Image.fromarray(_reduce(image, size), mode="F")
    bilinear = Image.Resampling.BILINEAR
    if mode == "pad":
        square = ImageOps.pad(picture, (size, size), method=bilinear, color=0)
    else:
        square = ImageOps.fit(picture, (size, size), method=bilinear)
    return np.asarray(square, dtype=np.float32)


def resize_batch(images, size: int, mode: str = "pad") -> np.ndarray:
    """Resizes a batch of images to ``size x size`` keeping aspect (pad) or center-cropping.

    Uses :func:`resize_square` image by image; a batch already at that size is returned as is.

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
    if mode not in ("pad", "crop"):
        raise ValueError(f"mode must be 'pad' or 'crop', not {mode!r}.")
    if images.shape[1:] == (size, size):
        return images[..., None]
    resized = [resize_square(image, size, mode) for image in images]
    return np.stack(resized)[..., None] if resized else np.zeros((0, size, size, 1), np.float32)
