"""Reading radiograph files: PNG, JPEG, TIFF and DICOM, one at a time or many in threads.

PNG/JPEG/TIFF (1-, 8- and 16-bit grayscale, palette, RGB, RGBA, CMYK) and DICOM all come out
the same way: float32 ``(H, W)`` in [0, 1] (:func:`read_image`), or squared batches read in
parallel (:func:`read_images`). What pixels mean (scale, grey, square) is decided in
:mod:`xraykit.pixels`; ``to_gray``, ``to_unit_range`` and ``resize_square`` are re-exported
here for code that imported them from this module.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np

from xraykit.dicom import is_dicom, read_dicom
from xraykit.pixels import LUMA_WEIGHTS, _reduce, resize_square, to_gray, to_unit_range

__all__ = ["LUMA_WEIGHTS", "UnreadableFileWarning", "read_image", "read_images", "resize_square",
           "to_gray", "to_unit_range"]

# Pillow modes that are grey already, and modes that Pillow turns into RGB (palette looked up,
# CMYK JPEGs already un-inverted) before :func:`to_gray` takes their luma.
_GREY_MODES = ("1", "L", "LA")
_COLOUR_MODES = ("P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "HSV")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


class UnreadableFileWarning(UserWarning):
    """Files of a folder or list that could not be read and were left out."""


def _too_large(path, pixels: str, limit: int) -> ValueError:
    return ValueError(
        f"{path}: the image claims {pixels} pixels, over the limit of {limit} pixels "
        "(PIL.Image.MAX_IMAGE_PIXELS) that guards against decompression bombs. If you trust "
        "the file, raise PIL.Image.MAX_IMAGE_PIXELS; otherwise remove it."
    )


def _to_unit_float(image, path) -> np.ndarray:
    """Float32 grey pixels in [0, 1] from an open Pillow image, scaled by its pixel type."""
    mode = image.mode
    if mode in _GREY_MODES:
        return to_unit_range(np.asarray(image.convert("L")), path)
    if mode in _COLOUR_MODES:
        return to_gray(to_unit_range(np.asarray(image.convert("RGB")), path))
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        return to_unit_range(np.asarray(image), path)
    raise ValueError(f"{path}: pixel mode {mode!r} is not supported; save the image as 8- or "
                     "16-bit grayscale (or RGB) PNG.")


def read_image(path: str | os.PathLike, target_size: int | None = None) -> np.ndarray:
    """Reads a PNG, JPEG, TIFF or DICOM radiograph.

    Args:
        path: An image file. DICOM files go through :func:`xraykit.dicom.read_dicom`.
        target_size: The side the caller will resize the image to (e.g. with
            :func:`xraykit.pixels.resize_square`), or ``None`` for the full image. When given, a
            large image is returned shrunk by an integer factor, keeping both sides at least
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


def read_images(paths: Sequence[str | os.PathLike], size: int, resize_mode: str = "pad",
                workers: int = 4, strict: bool = False
                ) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """Reads image files in parallel threads, each squared to ``size x size``.

    Each file goes through :func:`read_image` (with ``target_size=size``) and
    :func:`resize_square`. A file that cannot be read is left out and reported, in one
    :class:`UnreadableFileWarning` naming every such file and why, never silently dropped.

    Args:
        paths: The image files (PNG, JPEG, TIFF, DICOM...).
        size: Side of the square output, in pixels.
        resize_mode: ``"pad"`` or ``"crop"`` (see :func:`resize_square`).
        workers: Threads reading files.
        strict: Raise the first file's error instead of leaving the file out.

    Returns:
        ``(images, kept, failed)``: float32 ``(N, size, size)`` in [0, 1] for the files that
        were read, their paths (as ``str``, in input order), and ``{path: reason}`` for the
        others.

    Raises:
        OSError, ValueError, RuntimeError: With ``strict=True``, the first unreadable file's
            error (it names the file).

    Example:
        >>> images, kept, failed = read_images(["a.png", "b.dcm"], 28)  # doctest: +SKIP
    """
    from concurrent.futures import ThreadPoolExecutor

    def read(path):
        return resize_square(read_image(path, target_size=size), size, mode=resize_mode)

    images, kept, failed = [], [], {}
    with ThreadPoolExecutor(max(1, workers)) as pool:
        futures = [(path, pool.submit(read, path)) for path in paths]
        for path, future in futures:
            try:
                images.append(future.result())
            except (OSError, ValueError, RuntimeError):
                if strict:
                    for _, other in futures:
                        other.cancel()
                    raise
                failed[str(path)] = _reason(future.exception())
                continue
            kept.append(str(path))
    if failed:
        lines = "".join(f"\n  {reason if reason.startswith(path) else f'{path}: {reason}'}"
                        for path, reason in failed.items())
        warnings.warn(f"{len(failed)} of {len(futures)} file(s) could not be read and were left "
                      f"out:{lines}", UnreadableFileWarning, stacklevel=2)
    stack = np.stack(images) if images else np.zeros((0, size, size), np.float32)
    return stack.astype(np.float32, copy=False), kept, failed


def _reason(err: BaseException | None) -> str:
    return str(err) or type(err).__name__
