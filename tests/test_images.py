"""Reading PNG/JPEG/DICOM into float images, and square resizing."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from xraykit.images import UnreadableFileWarning, read_image, resize_square


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


# --- Bad and unusual inputs: each is read with the right pixel values or refused by name. ---

def _png_header_only(path, width, height):
    """A tiny PNG whose IHDR claims width x height (valid CRCs, almost no pixel data)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def gray(nih_png):
    """A real radiograph at 64 px, uint8."""
    with Image.open(nih_png) as image:
        return np.asarray(image.resize((64, 64)))


def test_decompression_bomb_is_refused_with_the_limit(tmp_path, gray, monkeypatch):
    limit = Image.MAX_IMAGE_PIXELS
    bomb = _png_header_only(tmp_path / "bomb.png", 100000, 100000)  # Pillow raises itself
    with pytest.raises(ValueError, match=rf"bomb\.png.*{limit}.*MAX_IMAGE_PIXELS"):
        read_image(bomb)
    # Between 1x and 2x the limit Pillow only warns; xraykit refuses from 1x on.
    between = _png_header_only(tmp_path / "between.png", 10000, 10000)
    with pytest.warns(Image.DecompressionBombWarning), \
            pytest.raises(ValueError, match=rf"between\.png.*10000x10000.*{limit}"):
        read_image(between)
    # The limit is Pillow's setting: a real image just over a lowered limit is refused,
    # one just under it is read.
    Image.fromarray(gray[:40, :40]).save(tmp_path / "over.png")
    Image.fromarray(gray[:30, :30]).save(tmp_path / "under.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.warns(Image.DecompressionBombWarning), \
            pytest.raises(ValueError, match=r"over\.png.*40x40.*limit of 1000"):
        read_image(tmp_path / "over.png")
    np.testing.assert_allclose(read_image(tmp_path / "under.png"), gray[:30, :30] / 255, atol=1e-6)


def test_a_bomb_in_a_folder_is_one_unreadable_file(tmp_path, gray):
    import keras

    from xraykit.datasets import load_folder
    from xraykit.inference import predict

    for name in ("NORMAL/a.png", "NORMAL/b.png", "PNEUMONIA/c.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.fromarray(gray).save(tmp_path / name)
    bomb = _png_header_only(tmp_path / "PNEUMONIA" / "bomb.png", 100000, 100000)
    with pytest.warns(UnreadableFileWarning, match=r"bomb\.png: .*MAX_IMAGE_PIXELS"):
        folder = load_folder(tmp_path, image_size=16)
    assert folder.images.shape == (3, 16, 16, 1)
    assert list(folder.failed) == [str(bomb)] and "MAX_IMAGE_PIXELS" in folder.failed[str(bomb)]
    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(1, activation="sigmoid")])
    with pytest.warns(UnreadableFileWarning, match=r"bomb\.png"):
        result = predict(model, tmp_path)
    assert len(result.paths) == 3 and list(result.failed) == [str(bomb)]
    np.testing.assert_allclose(result.images, folder.images, atol=1e-6)


def test_pixel_modes_are_scaled_right(tmp_path, gray):
    expected = gray / 255.0
    Image.fromarray((gray.astype(np.uint16) * 257).astype(">u2")).save(tmp_path / "i16b.tif")
    Image.fromarray(gray.astype(np.int32) * 257).save(tmp_path / "int32.tif")
    Image.fromarray(expected.astype(np.float32)).save(tmp_path / "float.tif")
    Image.fromarray(gray).convert("LA").save(tmp_path / "la.png")
    palette = Image.fromarray(255 - gray).convert("P")  # index i shows grey 255 - i
    palette.putpalette([255 - i for i in range(256) for _ in range(3)])
    palette.save(tmp_path / "palette.png")
    for name in ("i16b.tif", "int32.tif", "float.tif", "la.png", "palette.png"):
        with Image.open(tmp_path / name) as image:
            mode = image.mode
        image = read_image(tmp_path / name)
        assert image.dtype == np.float32, name
        np.testing.assert_allclose(image, expected, atol=1e-6, err_msg=f"{name} ({mode})")
    assert Image.open(tmp_path / "i16b.tif").mode == "I;16B"

    Image.fromarray(gray > 128).save(tmp_path / "one.png")
    np.testing.assert_array_equal(read_image(tmp_path / "one.png"), (gray > 128).astype(np.float32))

    # CMYK JPEG: not inverted (lungs stay dark), same grey levels up to JPEG loss.
    Image.fromarray(gray).convert("RGB").convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    cmyk = read_image(tmp_path / "cmyk.jpg")
    assert np.corrcoef(cmyk.ravel(), expected.ravel())[0, 1] > 0.99
    assert np.abs(cmyk - expected).mean() < 0.02


@pytest.mark.parametrize("name, make, message", [
    ("big.tif", lambda g: Image.fromarray(g.astype(np.int32) * 1000), r"0\.\.2\d+000.*16 bits"),
    ("float255.tif", lambda g: Image.fromarray(g.astype(np.float32)), r"outside \[0, 1\]"),
])
def test_pixels_of_unknown_scale_are_refused_not_clipped(tmp_path, gray, name, make, message):
    make(gray).save(tmp_path / name)
    with pytest.raises(ValueError, match=rf"{name}: .*{message}"):
        read_image(tmp_path / name)


def test_broken_files_are_named(tmp_path, gray):
    Image.fromarray(gray).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[:len(data) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("a text file renamed .png\n")
    for name in ("truncated.png", "empty.png", "notes.png"):
        with pytest.raises(ValueError, match=rf"{name}: not a readable image"):
            read_image(tmp_path / name)
    (tmp_path / "scans.png").mkdir()
    with pytest.raises(IsADirectoryError, match=r"scans\.png: is a folder"):
        read_image(tmp_path / "scans.png")


def test_target_size_reads_reduced_with_the_same_result(nih_png, tmp_path):
    full = read_image(nih_png)  # 1024 x 1024
    small = read_image(nih_png, target_size=28)
    assert small.shape == (57, 57)  # box-averaged by 1024 // 56 = 18
    for mode in ("pad", "crop"):
        np.testing.assert_allclose(resize_square(small, 28, mode), resize_square(full, 28, mode),
                                   atol=1e-6)
    Image.open(nih_png).save(tmp_path / "chest.jpg", quality=95)
    jpeg = read_image(tmp_path / "chest.jpg", target_size=28)
    assert jpeg.shape == (64, 64)  # decoded at 1/8 scale (Image.draft), then halved
    reference = resize_square(read_image(tmp_path / "chest.jpg"), 28)
    difference = np.abs(resize_square(jpeg, 28) - reference)
    assert difference.mean() < 0.01 and difference.max() < 0.05
    for bad in (0, -3, 2.5, "28", True):
        with pytest.raises(ValueError, match="target_size"):
            read_image(nih_png, target_size=bad)


# --- One function per idea: every reader turns colour into grey and scales pixels alike. ---

def test_colour_becomes_the_same_grey_in_every_reader(tmp_path):
    import keras

    from xraykit.datasets import load_folder, load_npz
    from xraykit.images import to_gray, to_unit_range
    from xraykit.inference import predict

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    for i, name in enumerate(("NORMAL/a.png", "PNEUMONIA/b.png")):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.fromarray(rgb[i]).save(tmp_path / name)
    expected = to_gray(to_unit_range(rgb))
    # Pillow's own luma conversion: the second implementation the weights must agree with.
    pillow = np.stack([np.asarray(Image.fromarray(x).convert("F")) / 255 for x in rgb])
    np.testing.assert_allclose(expected, pillow, atol=1e-6)

    files = [read_image(tmp_path / n) for n in ("NORMAL/a.png", "PNEUMONIA/b.png")]
    np.testing.assert_array_equal(np.stack(files), expected)
    folder = load_folder(tmp_path, image_size=16, workers=2)
    np.testing.assert_array_equal(folder.images[..., 0], expected)
    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(1, activation="sigmoid")])
    np.testing.assert_array_equal(predict(model, tmp_path).images[..., 0], expected)
    np.testing.assert_array_equal(predict(model, rgb).images[..., 0], expected)
    labels = np.array([[0], [1]])
    np.savez(tmp_path / "colour.npz", **{f"{s}_{k}": v for s in ("train", "val", "test")
                                         for k, v in (("images", rgb), ("labels", labels))})
    np.testing.assert_array_equal(load_npz(tmp_path / "colour.npz").x_train[..., 0], expected)


@pytest.mark.parametrize("pixels, expected", [
    (np.array([0, 51, 255], np.uint8), [0.0, 0.2, 1.0]),
    (np.array([0, 13107, 65535], np.uint16), [0.0, 0.2, 1.0]),
    (np.array([0, 13107, 65535], np.int32), [0.0, 0.2, 1.0]),
    (np.array([False, True]), [0.0, 1.0]),
    (np.array([0.0, 0.5], np.float64), [0.0, 0.5]),
])
def test_to_unit_range_scales_by_pixel_type(pixels, expected):
    from xraykit.images import to_unit_range

    out = to_unit_range(pixels)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-7)


def test_to_unit_range_refuses_unknown_scales_naming_the_source():
    from xraykit.images import to_gray, to_unit_range

    with pytest.raises(ValueError, match=r"scan\.tif: 32-bit integer pixels range 0\.\.70000"):
        to_unit_range(np.array([0, 70000], np.int32), "scan.tif")
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        to_unit_range(np.array([0.0, 2.0]))
    with pytest.raises(ValueError, match=r"RGB or RGBA.*\(4, 5\)"):
        to_gray(np.zeros((4, 5)))


def test_dicom_and_files_share_the_scaling_and_grey(dicom_dir, tmp_path):
    """A colour DICOM becomes the same grey as the same pixels saved as a PNG."""
    import pydicom

    from xraykit.dicom import read_dicom

    ds = pydicom.dcmread(dicom_dir / "cr_mono1_10bit_chest_nometa.dcm", force=True)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (ds.Rows, ds.Columns, 3), dtype=np.uint8)
    ds.PhotometricInterpretation, ds.SamplesPerPixel, ds.PlanarConfiguration = "RGB", 3, 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = rgb.tobytes()
    for keyword in ("WindowCenter", "WindowWidth", "RescaleSlope", "RescaleIntercept"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.save_as(tmp_path / "rgb.dcm", enforce_file_format=True)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_allclose(read_dicom(tmp_path / "rgb.dcm"), read_image(tmp_path / "rgb.png"),
                               atol=1e-6)


def test_resize_square_is_pillows_pad_and_fit():
    from PIL import ImageOps

    image = np.random.default_rng(0).random((30, 17)).astype(np.float32)
    picture = Image.fromarray(image, mode="F")
    bilinear = Image.Resampling.BILINEAR
    np.testing.assert_array_equal(resize_square(image, 12, "pad"),
                                  np.asarray(ImageOps.pad(picture, (12, 12), bilinear, color=0)))
    np.testing.assert_array_equal(resize_square(image, 12, "crop"),
                                  np.asarray(ImageOps.fit(picture, (12, 12), bilinear)))
