"""Reading PNG/JPEG/DICOM into float images, and square resizing."""

import numpy as np
import pytest
from PIL import Image

from xraykit.images import read_image, resize_square


@pytest.fixture(scope="module")
def nih_png(nih_dir):
    return sorted((nih_dir / "images").glob("*.png"))[0]


def test_8bit_png(nih_png):
    image = read_image(nih_png)
    raw = np.asarray(Image.open(nih_png))
    assert image.shape == raw.shape and image.dtype == np.float32
    np.testing.assert_allclose(image, raw / 255.0, atol=1e-6)


def test_16bit_rgb_rgba_jpeg_agree(nih_png, tmp_path):
    raw = np.asarray(Image.open(nih_png)).astype(np.uint16)
    Image.fromarray(raw * 257).save(tmp_path / "a16.png")
    rgb = np.stack([raw.astype(np.uint8)] * 3, axis=-1)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    rgba = np.concatenate([rgb, np.full(raw.shape + (1,), 128, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.jpg", quality=95)
    reference = read_image(nih_png)
    for name, tolerance in [("a16.png", 1e-6), ("rgb.png", 1e-2), ("rgba.png", 1e-2),
                            ("rgb.jpg", 0.05)]:
        image = read_image(tmp_path / name)
        assert image.shape == reference.shape, name
        assert np.abs(image - reference).mean() < tolerance, name


def test_dicom_through_read_image(dicom_dir):
    image = read_image(dicom_dir / "cr_mono1_10bit_chest_nometa.dcm")
    assert image.shape == (440, 440) and image.max() <= 1


def test_unreadable_file_is_named(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="broken.png"):
        read_image(path)
    with pytest.raises(FileNotFoundError, match="absent.png"):
        read_image(tmp_path / "absent.png")


def test_resize_square_pads_and_crops():
    image = np.ones((100, 50), np.float32)
    padded = resize_square(image, 20, mode="pad")
    assert padded.shape == (20, 20)
    assert padded[:, :5].max() == 0 and padded[:, 5:15].min() > 0.99  # centred, padded black
    cropped = resize_square(image, 20, mode="crop")
    assert cropped.shape == (20, 20) and cropped.min() > 0.99
    with pytest.raises(ValueError, match="mode"):
        resize_square(image, 20, mode="stretch")
    with pytest.raises(ValueError, match="2-D"):
        resize_square(np.ones((4, 4, 3)), 2)
