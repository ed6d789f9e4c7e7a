"""Reading radiographs from image files and resizing them to a square.

PNG/JPEG/TIFF (1-, 8- and 16-bit grayscale, palette, RGB, RGBA, CMYK) and DICOM all come out
the same way: float32 ``(H, W)`` in [0, 1].
"""

from __future__ import annotations

import os

import numpy as np

from xraykit.dicom import is_dicom, read_dicom

# Pillow modes whose channels are 8-bit; Pillow's "F" conversion turns each into unrounded
# ITU-R BT.601 luminance (alpha dropped, palette looked up, CMYK JPEGs already un-inverted).
_EIGHT_BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "HSV")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def _too_large(path, pixels: str, limit: int) -> ValueError:
    return ValueError(
        f"{path}: the image claims {pixels} pixels, over the limit of {limit} pixels "
        "(PIL.Image.MAX_IMAGE_PIXELS) that guards against decompression bombs. If you trust "
        "the file, raise PIL.Image.MAX_IMAGE_PIXELS; otherwise remove it."
    )


def _to_unit_float(image, path) -> np.ndarray:
    """Float32 pixels in [0, 1] from an open Pillow image, scaled by its pixel type."""
    mode = image.mode
    if mode in _EIGHT_BIT_MODES:
        return np.asarray(image.convert("F")) / np.float32(255)
    if mode in _SIXTEEN_BIT_MODES:
        return np.asarray(image.convert("F")) / np.float32(65535)
    if mode == "I":  # 32-bit integers: read as 16-bit when they fit, never clipped
        pixels = np.asarray(image)
        low, high = int(pixels.min()), int(pixels.max())
        if low < 0 or high > 65535:
            raise ValueError(
                f"{path}: 32-bit integer pixels range {low}..{high}, outside 16 bits, so their "
                "scale is unknown; save the image as 8- or 16-bit grayscale PNG, or as a "
                "floating-point TIFF in [0, 1]."
            )
        return pixels.astype(np.float32) / np.float32(65535)
    if mode == "F":
        pixels = np.asarray(image, dtype=np.float32)
        if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 1:
            raise ValueError(f"{path}: floating-point image with values outside [0, 1] (or NaN); "
                             "rescale it to [0, 1] first.")
        return pixels
    raise ValueError(f"{path}: pixel mode {mode!r} is not supported; save the image as 8- or "
                     "16-bit grayscale (or RGB) PNG.")


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


def read_image(path: str | os.PathLike, target_size: int | None = None) -> np.ndarray:
    """Reads a PNG, JPEG, TIFF or DICOM radiograph.

    Args:
        path: An image file. DICOM files go through :func:`xraykit.dicom.read_dicom`.
        target_size: The side the caller will resize the image to (e.g. with
            :func:`resize_square`), or ``None`` for the full image. When given, a large
            image is returned shrunk by an integer factor, keeping both sides at least
            ``2 * target_size``: JPEGs are decoded at reduced scale (``Image.draft``), so a
            big JPEG never occupies full-size memory; other formats are box-averaged after
            decoding. Resizing the result gives the same pixels as resizing the full image,
            except for JPEGs, whose reduced-scale decoding differs slightly.

    Returns:
        Float32 array ``(H, W)`` in [0, 1]. 1- and 8-bit images are divided by 255 (1-bit
        gives 0 and 1), 16-bit by 65535, 32-bit integers by 65535 when they fit in 16 bits;
        palette, colour and CMYK images become luminance and any alpha channel is dropped.
        Floating-point images must already lie in [0, 1].

    Raises:
        FileNotFoundError: If the file does not exist.
        IsADirectoryError: If the path is a folder (use :func:`xraykit.load_folder`).
        ValueError: If the file cannot be read as an image (empty, truncated, not an
            image), has more pixels than ``PIL.Image.MAX_IMAGE_PIXELS`` (a possible
            decompression bomb: refused from 1x the limit on, where Pillow only warns), or
            has pixel values whose scale is unknown (32-bit integers beyond 16 bits,
            floats outside [0, 1]).
        RuntimeError: If a DICOM file's compression has no installed decoder.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file.")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a folder, not an image file; read a folder with "
                                "xraykit.load_folder or list its files with list_images.")
    if target_size is not None and (isinstance(target_size, bool) or
                                    not isinstance(target_size, (int, np.integer)) or
                                    target_size < 1):
        raise ValueError(f"target_size must be a positive integer or None, not {target_size!r}.")
    if is_dicom(path):
        pixels = read_dicom(path)
    else:
        pixels = _read_pillow(path, target_size)
    return _reduce(pixels, target_size) if target_size else pixels


def _read_pillow(path, target_size: int | None) -> np.ndarray:
    """Decodes a non-DICOM file with Pillow; every decoding failure names the file."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    unreadable = (f"{path}: not a readable image; it may be empty, truncated or not an image "
                  "at all: re-export it or remove it")
    try:
        image = Image.open(path)
    except Image.DecompressionBombError:  # Image.open refuses beyond twice the limit itself
        raise _too_large(path, f"more than {2 * limit}", limit) from None
    except MemoryError:
        raise
    except Exception as err:  # UnidentifiedImageError, OSError, ...
        raise ValueError(f"{unreadable} ({type(err).__name__}: {err}).") from err
    with image:
        if limit and image.width * image.height > limit:  # Pillow only warns up to 2x
            raise _too_large(path, f"{image.width}x{image.height}", limit)
        if target_size:
            image.draft(None, (2 * target_size, 2 * target_size))  # JPEG only; else no-op
        try:
            image.load()
        except MemoryError:
            raise
        except Exception as err:  # Pillow reports bad data as OSError, SyntaxError, EOFError...
            raise ValueError(f"{unreadable} ({type(err).__name__}: {err}).") from err
        return _to_unit_float(image, path)


def resize_square(image: np.ndarray, size: int, mode: str = "pad") -> np.ndarray:
    """Resizes a 2-D image to ``size x size`` keeping its aspect ratio.

    Args:
        image: Array ``(H, W)`` (float, any range).
        size: Side of the output square, in pixels.
        mode: ``"pad"`` fits the whole image and pads the short side with zeros (black),
            centred; ``"crop"`` fills the square and cuts the long side, centred.

    Returns:
        Float32 array ``(size, size)``. An image at least 4x larger than ``size`` is first
        box-averaged by an integer factor (as Pillow's ``reducing_gap`` does), then resampled
        bilinearly.

    Raises:
        ValueError: If ``mode`` is unknown or the image is not 2-D.
    """
    from PIL import Image

    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"resize_square expects a 2-D image (H, W), got shape {image.shape}.")
    if mode not in ("pad", "crop"):
        raise ValueError(f"mode must be 'pad' or 'crop', not {mode!r}.")
    image = _reduce(image, size)
    height, width = image.shape
    fit = min if mode == "pad" else max
    scale = fit(size / height, size / width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    resized = np.asarray(
        Image.fromarray(image, mode="F").resize((new_w, new_h), Image.Resampling.BILINEAR)
    )
    out = np.zeros((size, size), dtype=np.float32)
    if mode == "pad":
        top, left = (size - new_h) // 2, (size - new_w) // 2
        out[top:top + new_h, left:left + new_w] = resized
    else:
        top, left = (new_h - size) // 2, (new_w - size) // 2
        out[:] = resized[top:top + size, left:left + size]
    return out
