"""Reading radiographs from image files and resizing them to a square.

PNG/JPEG (8- and 16-bit grayscale, RGB, RGBA) and DICOM all come out the same way: float32
``(H, W)`` in [0, 1].
"""

from __future__ import annotations

import os

import numpy as np

from xraykit.dicom import is_dicom, read_dicom

# ITU-R BT.601 luma weights, as Pillow's "L" conversion uses.
_LUMA = np.array([0.299, 0.587, 0.114])


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads a PNG, JPEG or DICOM radiograph.

    Args:
        path: An image file. DICOM files go through :func:`xraykit.dicom.read_dicom`.

    Returns:
        Float32 array ``(H, W)`` in [0, 1]. 8-bit images are divided by 255, 16-bit by 65535,
        colour images become luminance and any alpha channel is dropped.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file cannot be read as an image.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file.")
    if is_dicom(path):
        return read_dicom(path)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode == "P":
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            pixels = np.asarray(image)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: not a readable image ({err}).") from err

    if pixels.ndim == 3:  # RGB, RGBA, LA: drop alpha, take luminance
        scale = 255.0 if pixels.dtype == np.uint8 else 65535.0
        channels = pixels.shape[-1]
        if channels in (2, 4):
            pixels = pixels[..., :-1]
        if pixels.shape[-1] == 3:
            pixels = pixels.astype(np.float64) @ _LUMA
        else:
            pixels = pixels[..., 0]
        pixels = pixels.astype(np.float64)
    elif pixels.dtype == np.bool_:
        pixels, scale = pixels.astype(np.float64), 1.0
    elif pixels.dtype == np.uint8:
        scale = 255.0
    elif pixels.dtype in (np.uint16, np.int32, np.uint32, np.int16):
        scale = 65535.0
    elif pixels.dtype.kind == "f":
        if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 1:
            raise ValueError(f"{path}: floating-point image outside [0, 1]; rescale it first.")
        scale = 1.0
    else:
        raise ValueError(f"{path}: unsupported pixel type {pixels.dtype}.")
    return np.clip(pixels / scale, 0.0, 1.0).astype(np.float32)


def resize_square(image: np.ndarray, size: int, mode: str = "pad") -> np.ndarray:
    """Resizes a 2-D image to ``size x size`` keeping its aspect ratio.

    Args:
        image: Array ``(H, W)`` (float, any range).
        size: Side of the output square, in pixels.
        mode: ``"pad"`` fits the whole image and pads the short side with zeros (black),
            centred; ``"crop"`` fills the square and cuts the long side, centred.

    Returns:
        Float32 array ``(size, size)``.

    Raises:
        ValueError: If ``mode`` is unknown or the image is not 2-D.
    """
    from PIL import Image

    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"resize_square expects a 2-D image (H, W), got shape {image.shape}.")
    if mode not in ("pad", "crop"):
        raise ValueError(f"mode must be 'pad' or 'crop', not {mode!r}.")
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
