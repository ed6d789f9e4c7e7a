"""Odd DICOM files, built with pydicom: float pixels, extra frames, photometry, LUTs, impostors."""

import warnings

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from xraykit.dicom import is_dicom, read_dicom
from xraykit.images import read_image
from xraykit.pixels import MultiFrameWarning

ROWS, COLUMNS = 6, 8


def _dataset(**tags) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.Rows, ds.Columns, ds.SamplesPerPixel = ROWS, COLUMNS, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    return ds


def _save(ds, path):
    ds.save_as(path, enforce_file_format=True)
    return path


def _ramp(dtype, frames=1):
    return np.linspace(0, 1, frames * ROWS * COLUMNS).astype(dtype)


@pytest.mark.parametrize("keyword, dtype, bits", [("FloatPixelData", np.float32, 32),
                                                  ("DoubleFloatPixelData", np.float64, 64)])
def test_float_pixel_data_in_unit_range_is_read(tmp_path, keyword, dtype, bits):
    ds = _dataset(BitsAllocated=bits)
    for tag in ("BitsStored", "HighBit", "PixelRepresentation"):
        delattr(ds, tag)
    setattr(ds, keyword, _ramp(dtype).tobytes())
    image = read_dicom(_save(ds, tmp_path / "f.dcm"))
    np.testing.assert_allclose(image, _ramp(np.float64).reshape(ROWS, COLUMNS), atol=1e-6)


def test_float_pixel_data_outside_unit_range_needs_a_window(tmp_path):
    ds = _dataset(BitsAllocated=32)
    ds.FloatPixelData = (_ramp(np.float32) * 2000 - 1000).tobytes()  # Hounsfield-like
    path = _save(ds, tmp_path / "hu.dcm")
    with pytest.raises(ValueError, match=r"FloatPixelData \(floating-point pixels\) range -1000"):
        read_dicom(path)
    windowed = read_dicom(path, window=(0, 2000))
    np.testing.assert_allclose(windowed, _ramp(np.float64).reshape(ROWS, COLUMNS), atol=0.01)


def test_pixel_data_longer_than_one_frame_is_treated_as_frames(tmp_path):
    stack = (np.arange(3 * ROWS * COLUMNS) % 4096).astype(np.uint16)
    ds = _dataset(PixelData=stack.tobytes())  # no NumberOfFrames: the header says one frame
    with pytest.warns(MultiFrameWarning, match="3 frames \\(NumberOfFrames says 1\\)"):
        image = read_dicom(_save(ds, tmp_path / "extra.dcm"))
    np.testing.assert_allclose(image, stack[:ROWS * COLUMNS].reshape(ROWS, COLUMNS) / 4095,
                               atol=1e-6)


@pytest.mark.parametrize("tags, named", [
    ({"PhotometricInterpretation": "HSV"}, "PhotometricInterpretation (0028,0004) 'HSV' is not "
                                           "supported"),
    ({"PhotometricInterpretation": "ARGB", "SamplesPerPixel": 4}, "'ARGB' is not supported"),
    ({"SamplesPerPixel": 3}, "SamplesPerPixel (0028,0002) is 3, but a MONOCHROME2 image has 1"),
    ({"PhotometricInterpretation": "RGB"}, "is 1, but a RGB image has 3"),
])
def test_unsupported_photometry_is_named_not_called_truncated(tmp_path, tags, named):
    ds = _dataset(PixelData=np.zeros(ROWS * COLUMNS * 4, np.uint16).tobytes(), **tags)
    with pytest.raises(ValueError) as err:
        read_dicom(_save(ds, tmp_path / "odd.dcm"))
    assert named in str(err.value) and "truncated" not in str(err.value)


def _lut(descriptor, data):
    item = Dataset()  # explicit VRs: both tags' VRs are ambiguous (US/SS, US/OW)
    if descriptor is not None:
        item.add_new(0x00283002, "US", descriptor)  # LUTDescriptor
    if data is not None:
        item.add_new(0x00283006, "US", data)  # LUTData
    return item


@pytest.mark.parametrize("sequence, window, lut, named", [
    ("ModalityLUTSequence", None, _lut([4096], list(range(4))), "LUTDescriptor (0028,3002) is "
                                                                 "missing or malformed"),
    ("ModalityLUTSequence", None, _lut(None, [1, 2]), "LUTDescriptor (0028,3002) is missing"),
    ("VOILUTSequence", "dicom", _lut([4, 0, 12], [1, 2]), "promises 4 entries of 12 bits but "
                                                          "LUTData (0028,3006) holds 2"),
    ("VOILUTSequence", "dicom", _lut([4, 0, 40], [1, 2, 3, 4]), "promises 4 entries of 40 bits"),
])
def test_malformed_lut_is_named(tmp_path, sequence, window, lut, named):
    ds = _dataset(PixelData=np.zeros(ROWS * COLUMNS, np.uint16).tobytes())
    setattr(ds, sequence, [lut])
    with pytest.raises(ValueError) as err:
        read_dicom(_save(ds, tmp_path / "lut.dcm"), window=window)
    assert f"{sequence} (0028," in str(err.value) and named in str(err.value)


def test_empty_lut_sequence_is_named(tmp_path):
    ds = _dataset(PixelData=np.zeros(ROWS * COLUMNS, np.uint16).tobytes(),
                  ModalityLUTSequence=[])
    with pytest.raises(ValueError, match=r"ModalityLUTSequence \(0028,3000\) is empty"):
        read_dicom(_save(ds, tmp_path / "empty_lut.dcm"))


def test_malformed_palette_descriptor_is_named(tmp_path):
    ds = _dataset(PixelData=np.zeros(ROWS * COLUMNS, np.uint16).tobytes(),
                  PhotometricInterpretation="PALETTE COLOR", BitsStored=16, HighBit=15)
    for offset, colour in enumerate(("Red", "Green", "Blue")):  # (0028,1101..3), (0028,1201..3)
        descriptor = [256, 0] if colour == "Green" else [256, 0, 16]
        ds.add_new(0x00281101 + offset, "US", descriptor)
        ds.add_new(0x00281201 + offset, "OW", np.arange(256, dtype="<u2").tobytes())
    with pytest.raises(ValueError, match="the green palette: GreenPaletteColorLookupTable"):
        read_dicom(_save(ds, tmp_path / "palette.dcm"))


@pytest.mark.parametrize("kind, options", [("PNG", {}), ("JPEG", {"quality": 100})])
def test_an_image_renamed_dcm_is_read_by_content_or_named(tmp_path, kind, options):
    pixels = np.tile(np.arange(0, 240, 8, dtype=np.uint8), (24, 1))
    real = tmp_path / f"real.{kind.lower()}"
    Image.fromarray(pixels).save(real, format=kind, **options)
    renamed = tmp_path / "impostor.dcm"
    renamed.write_bytes(real.read_bytes())
    assert not is_dicom(renamed)
    np.testing.assert_array_equal(read_image(renamed), read_image(real))
    with pytest.raises(ValueError, match=f"impostor.dcm: a {kind} file, not DICOM"):
        read_dicom(renamed)


def test_dicom_without_preamble_is_still_dicom_by_name(dicom_dir):
    path = dicom_dir / "cr_mono1_10bit_chest_nometa.dcm"
    assert is_dicom(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(path).ndim == 2
