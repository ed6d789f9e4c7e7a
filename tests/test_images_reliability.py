"""Odd image files: orientation, 16-bit colour, formats, frames, shapes, non-regular files."""

import os
import socket
import struct
import threading
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from xraykit import folders, pixels
from xraykit.images import (
    IMAGE_SUFFIXES,
    MultiFrameWarning,
    UnreadableFileWarning,
    read_image,
    read_images,
)


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _filtered(row: bytes, prior: bytes, kind: int, bpp: int) -> bytes:
    """One PNG scanline filtered with filter ``kind`` (0 none, 1 sub, 2 up, 3 average, 4 Paeth)."""
    out = bytearray()
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prior[i]
        c = prior[i - bpp] if i >= bpp else 0
        predictor = [0, a, b, (a + b) // 2, _paeth(a, b, c)][kind]
        out.append((x - predictor) % 256)
    return bytes([kind]) + bytes(out)


def _png16(path, samples: np.ndarray, color_type: int):
    """Writes a 16-bit PNG, cycling the five filter types row by row (as encoders mix them)."""
    height, width, channels = samples.shape
    rows = [samples[y].astype(">u2").tobytes() for y in range(height)]
    prior = bytes(len(rows[0]))
    data = b""
    for y, row in enumerate(rows):
        data += _filtered(row, prior, y % 5, 2 * channels)
        prior = row

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b""))
    return path


@pytest.fixture()
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("color_type, channels", [(2, 3), (6, 4)])
def test_16bit_colour_png_keeps_16_bits(tmp_path, rng, color_type, channels):
    samples = rng.integers(0, 65536, size=(11, 9, channels), dtype=np.uint16)
    image = read_image(_png16(tmp_path / "c16.png", samples, color_type))
    expected = pixels.to_gray(samples[..., :3] / 65535.0)
    np.testing.assert_allclose(image, expected, atol=1e-6)
    truncated = pixels.to_gray((samples[..., :3] >> 8) / 255.0)  # what Pillow alone gives
    assert np.abs(truncated - expected).max() > 1e-3


def test_16bit_grey_alpha_png_keeps_16_bits(tmp_path, rng):
    grey = rng.integers(0, 65536, size=(10, 12), dtype=np.uint16)
    alpha = np.full_like(grey, 65535)
    image = read_image(_png16(tmp_path / "la16.png", np.stack([grey, alpha], -1), 4))
    np.testing.assert_allclose(image, grey / 65535.0, atol=1e-7)
    assert len(np.unique(image)) == len(np.unique(grey))  # neighbouring levels stay apart


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
@pytest.mark.parametrize("orientation, upright", [
    (1, lambda a: a), (3, lambda a: a[::-1, ::-1]), (6, lambda a: np.rot90(a, -1)),
    (8, lambda a: np.rot90(a, 1)), (2, lambda a: a[:, ::-1])])
def test_exif_orientation_is_applied(tmp_path, suffix, orientation, upright):
    stored = np.zeros((40, 60), np.uint8)
    stored[:20, :30] = 255  # a bright top-left quarter
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{suffix}"
    Image.fromarray(stored).save(path, exif=exif, **({"quality": 100} if suffix == ".jpg" else {}))
    image = read_image(path)
    expected = upright(stored / 255.0)
    assert image.shape == expected.shape
    assert np.abs(image - expected).mean() < 0.02


def test_every_listed_ending_is_read_and_nothing_else_is_listed(tmp_path):
    picture = Image.fromarray(np.tile(np.arange(0, 250, 10, dtype=np.uint8), (20, 1)))
    for suffix in IMAGE_SUFFIXES:
        if suffix in (".dcm", ".dicom"):
            continue  # DICOM is read by tests/test_dicom.py
        picture.save(tmp_path / f"x{suffix}")
        assert read_image(tmp_path / f"x{suffix}").shape == (20, 25), suffix
    picture.save(tmp_path / "y.gif")
    picture.save(tmp_path / "y.webp")
    listed = {p.name for p in folders.list_images(tmp_path)}
    assert listed == {f"x{s}" for s in IMAGE_SUFFIXES if s not in (".dcm", ".dicom")}
    for other in ("y.gif", "y.webp"):
        with pytest.raises(ValueError, match="xraykit reads PNG, JPEG, TIFF, BMP and DICOM"):
            read_image(tmp_path / other)


def test_multi_page_tiff_and_animated_png_warn(tmp_path):
    frames = [Image.fromarray(np.full((16, 16), v, np.uint8)) for v in (10, 200, 90)]
    for name, kind in [("pages.tif", "multi-page TIFF"), ("anim.png", "animated PNG")]:
        frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:])
        with pytest.warns(MultiFrameWarning, match=f"{kind} with 3 frames; using the first"):
            image = read_image(tmp_path / name)
        np.testing.assert_allclose(image, 10 / 255.0, atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 50), (300, 20)])
def test_extreme_aspect_ratio_is_refused(tmp_path, shape):
    path = tmp_path / "strip.png"
    Image.fromarray(np.zeros(shape, np.uint8)).save(path)
    with pytest.raises(ValueError, match=r"strip.png: the image is .* more than 10:1"):
        read_image(path)
    with pytest.raises(ValueError, match="more than 10:1"):
        pixels.resize_square(np.zeros(shape, np.float32), 28)


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0)])
def test_empty_array_is_refused(shape):
    with pytest.raises(ValueError, match="no pixels"):
        pixels.resize_square(np.zeros(shape, np.float32), 28)


def _with_deadline(function, seconds=10):
    """Runs ``function`` in a thread; fails the test if it has not returned (a hang)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = function()
        except Exception as err:  # noqa: BLE001 - handed back to the test
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "hung: the entry was opened"
    return outcome


@pytest.fixture()
def odd_folder(tmp_path):
    folder = tmp_path / "NORMAL"
    folder.mkdir()
    (tmp_path / "PNEUMONIA").mkdir()
    for side in ("NORMAL", "PNEUMONIA"):
        Image.fromarray(np.full((30, 30), 100, np.uint8)).save(tmp_path / side / "ok.png")
    os.mkfifo(folder / "pipe.png")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "sock.png"))
    (folder / "device.png").symlink_to("/dev/zero")
    (folder / "nowhere.png").symlink_to(tmp_path / "missing.png")
    yield tmp_path
    server.close()


@pytest.mark.parametrize("name, kind", [
    ("pipe.png", "a FIFO (named pipe)"), ("sock.png", "a socket"), ("device.png", "a device")])
def test_non_regular_files_are_refused_unopened(odd_folder, name, kind):
    outcome = _with_deadline(lambda: read_image(odd_folder / "NORMAL" / name))
    assert isinstance(outcome.get("error"), ValueError)
    assert f"{name}: {kind}, not a regular file" in str(outcome["error"])


def test_folder_with_fifo_socket_and_device_is_read_and_they_are_reported(odd_folder):
    with pytest.warns(UnreadableFileWarning) as caught:
        outcome = _with_deadline(lambda: folders.load_folder(odd_folder, image_size=8))
    data = outcome["value"]
    assert sorted(os.path.basename(p) for p in data.paths) == ["ok.png", "ok.png"]
    message = " ".join(str(w.message) for w in caught)
    for name in ("pipe.png", "sock.png", "device.png", "nowhere.png"):
        assert name in message


def test_read_images_reports_a_fifo_in_a_list(odd_folder):
    paths = [odd_folder / "NORMAL" / "ok.png", odd_folder / "NORMAL" / "pipe.png"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreadableFileWarning)
        outcome = _with_deadline(lambda: read_images(paths, 8))
    _, kept, failed = outcome["value"]
    assert kept == [str(paths[0])] and "FIFO" in failed[str(paths[1])]
