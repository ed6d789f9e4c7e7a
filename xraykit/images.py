"""Reading radiograph files: PNG, JPEG, TIFF, BMP and DICOM, one at a time or many in threads.

PNG/JPEG/TIFF/BMP (1-, 8- and 16-bit grayscale, palette, RGB, RGBA, CMYK, 16-bit colour and
grey+alpha) and DICOM all come out the same way: float32 ``(H, W)`` in [0, 1], upright by their
EXIF orientation (:func:`read_image`), or squared batches read in parallel
(:func:`read_images`). :data:`IMAGE_SUFFIXES` is the one list of file endings read here, and the
one that folders (:func:`xraykit.folders.list_images`) and ``predict`` look for. What pixels mean
(scale, grey, square, shape) is decided in :mod:`xraykit.pixels`; ``to_gray``,
``to_unit_range`` and ``resize_square`` are re-exported here for code that imported them from
this module.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Sequence

import numpy as np

from xraykit.dicom import DICOM_SUFFIXES, is_dicom, read_dicom
from xraykit.pixels import (
    LUMA_WEIGHTS,
    MultiFrameWarning,
    _reduce,
    check_image_shape,
    resize_square,
    to_gray,
    to_unit_range,
)

__all__ = ["IMAGE_SUFFIXES", "LUMA_WEIGHTS", "MultiFrameWarning", "UnreadableFileWarning",
           "read_image", "read_images", "resize_square", "to_gray", "to_unit_range"]

# The Pillow formats read (MPO: a JPEG with extra pictures, as some cameras write), and their
# file endings; with DICOM's, the endings of the files xraykit reads.
_PILLOW_FORMATS = {"PNG": (".png",), "JPEG": (".jpg", ".jpeg"), "MPO": (),
                   "TIFF": (".tif", ".tiff"), "BMP": (".bmp",)}
IMAGE_SUFFIXES = tuple(s for endings in _PILLOW_FORMATS.values() for s in endings) + DICOM_SUFFIXES
SUPPORTED = "PNG, JPEG, TIFF, BMP and DICOM"

# Pillow modes that are grey already, and modes that Pillow turns into RGB (palette looked up,
# CMYK JPEGs already un-inverted) before :func:`to_gray` takes their luma.
_GREY_MODES = ("1", "L", "LA")
_COLOUR_MODES = ("P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "HSV")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


class UnreadableFileWarning(UserWarning):
    """Files of a folder or list that could not be read and were left out."""


def check_regular_file(path) -> None:
    """Checks that a path is a regular file (links followed) before it is opened.

    Opening a FIFO blocks until something writes to it, and a device or socket is no image:
    such entries are refused without being opened.

    Raises:
        FileNotFoundError: If nothing is there (or a link leads nowhere).
        IsADirectoryError: If it is a folder.
        ValueError: If it is a FIFO, socket or device; the message says which.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file (or a link to nothing).") from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{path}: is a folder, not an image file; read a folder with "
                                "xraykit.load_folder or list its files with list_images.")
    if not stat.S_ISREG(mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file")
        raise ValueError(f"{path}: {kind}, not a regular file; it was not opened. Keep only "
                         "image files in the folder.")


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
        Floating-point images must already lie in [0, 1]. 16-bit colour and grey+alpha PNGs
        keep their 16 bits. The EXIF orientation is applied. Multi-page TIFFs and animated
        PNGs give their first frame, with a :class:`MultiFrameWarning`.

    Raises:
        FileNotFoundError: If the file does not exist.
        IsADirectoryError: If the path is a folder (use :func:`xraykit.load_folder`).
        ValueError: If the path is a FIFO, socket or device (never opened); if the file cannot
            be read as an image (empty, truncated, not an image, a format other than
            :data:`SUPPORTED`), has no pixels or a side over
            :data:`xraykit.pixels.MAX_ASPECT_RATIO` times the other, has more pixels than
            ``PIL.Image.MAX_IMAGE_PIXELS`` (a possible decompression bomb: refused from 1x the
            limit on, where Pillow only warns), or has pixel values whose scale is unknown
            (32-bit integers beyond 16 bits, floats outside [0, 1]).
        RuntimeError: If a DICOM file's compression has no installed decoder.
    """
    check_regular_file(path)
    if target_size is not None and (isinstance(target_size, bool) or
                                    not isinstance(target_size, (int, np.integer)) or
                                    target_size < 1):
        raise ValueError(f"target_size must be a positive integer or None, not {target_size!r}.")
    if is_dicom(path):
        pixels = read_dicom(path)
    else:
        pixels = _read_pillow(path, target_size)
    check_image_shape(pixels, path)
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
        if image.format not in _PILLOW_FORMATS:
            raise ValueError(f"{path}: a {image.format} image; xraykit reads {SUPPORTED} "
                             "files: convert it to PNG.")
        if limit and image.width * image.height > limit:  # Pillow only warns up to 2x
            raise _too_large(path, f"{image.width}x{image.height}", limit)
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            kind = "an animated PNG" if image.format == "PNG" else f"a multi-page {image.format}"
            warnings.warn(f"{path}: {kind} with {frames} frames; using the first.",
                          MultiFrameWarning, stacklevel=3)
        if target_size:
            image.draft(None, (2 * target_size, 2 * target_size))  # JPEG only; else no-op
        try:
            pixels = _sixteen_bit_colour(path, image)  # before anything loads the image
            if pixels is None:
                image.load()
                pixels = _to_unit_float(image, path)
            orientation = image.getexif().get(_ORIENTATION_TAG, 1)
        except MemoryError:
            raise
        except ValueError as err:
            if str(err).startswith(str(path)):
                raise
            raise ValueError(f"{unreadable} ({type(err).__name__}: {err}).") from err
        except Exception as err:  # Pillow reports bad data as OSError, SyntaxError, EOFError...
            raise ValueError(f"{unreadable} ({type(err).__name__}: {err}).") from err
        return _upright(pixels, orientation)


_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transposition that makes the image upright (as PIL.ImageOps.
# exif_transpose does), applied to the float pixels so that 16-bit colour PNGs get it too.
_UPRIGHT = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
            6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}


def _upright(pixels: np.ndarray, orientation) -> np.ndarray:
    """The float image turned upright by its EXIF orientation (1 or unknown: as stored)."""
    from PIL import Image

    method = _UPRIGHT.get(orientation)
    if method is None:
        return pixels
    picture = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.float32), mode="F")
    return np.asarray(picture.transpose(getattr(Image.Transpose, method)), dtype=np.float32)


# Pillow decodes 16-bit colour and grey+alpha PNGs to 8 bits, keeping each sample's high byte.
# Decoding the same data again with a raw mode that keeps the low bytes instead (same bytes per
# pixel, so the same PNG filtering) recovers all 16 bits: raw mode -> (the low bytes' raw mode,
# index of the high and low byte of each grey or colour sample in that second decoding).
_SIXTEEN_BIT_RAWMODES = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L", "LA;16B": "RGBA"}


def _decode_as(path, rawmode: str) -> np.ndarray:
    """Decodes a PNG's pixel data with another Pillow raw mode (same mode, same filtering)."""
    from PIL import Image

    with Image.open(path) as image:
        tile = image.tile[0]
        args = tile.args if isinstance(tile.args, tuple) else (tile.args,)
        image.tile = [tile._replace(args=(rawmode, *args[1:]) if len(args) > 1 else rawmode)]
        image.load()
        return np.asarray(image)


def _sixteen_bit_colour(path, image) -> np.ndarray | None:
    """Float grey pixels of a 16-bit colour or grey+alpha PNG; ``None`` for any other image."""
    if image.format != "PNG" or len(image.tile) != 1:
        return None
    args = image.tile[0].args
    rawmode = args[0] if isinstance(args, tuple) else args
    if rawmode not in _SIXTEEN_BIT_RAWMODES:
        return None
    second = _decode_as(path, _SIXTEEN_BIT_RAWMODES[rawmode]).astype(np.uint16)
    if rawmode == "LA;16B":  # grey and alpha, 2 bytes each, read as the 4 bytes of RGBA
        return to_unit_range(second[..., 0] * np.uint16(256) + second[..., 1], path)
    high = _decode_as(path, rawmode).astype(np.uint16)
    return to_gray(to_unit_range(high * np.uint16(256) + second, path))


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
