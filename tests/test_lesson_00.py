"""Lesson 0: the DICOM path written with pydicom in the notebook gives read_dicom's pixels."""

import numpy as np
import pytest
from lesson_code import lesson_definitions

from xraykit import dicom, read_dicom


@pytest.fixture(scope="module")
def lesson():
    return lesson_definitions("00")


REAL_FILES = ["cr_mono1_10bit_chest_nometa.dcm", "cr_mono2_8bit_jpeg_chest.dcm"]


@pytest.mark.parametrize("window", [None, "dicom", (500, 800), (700.5, 300.25)],
                         ids=["none", "dicom", "window-500-800", "window-fractional"])
@pytest.mark.parametrize("name", REAL_FILES)
def test_notebook_reads_the_real_dicoms_as_read_dicom(lesson, dicom_dir, name, window):
    path = dicom_dir / name
    if window == "dicom" and "WindowCenter" not in dicom.dicom_summary(path):
        for reader in (lesson.dicom_to_unit, read_dicom):  # no window in the file: both refuse
            with pytest.raises(ValueError, match="window"):
                reader(path, window=window)
        return
    ours, expected = lesson.dicom_to_unit(path, window=window), read_dicom(path, window=window)
    assert ours.dtype == np.float32 and ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)


def _write_dicom(path, pixels, photometric, bits_stored, signed=False, slope=None,
                 intercept=None, window=None):
    """A small uncompressed grey DICOM file with a Part-10 header, written with pydicom."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = int(signed)
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = slope, intercept, "US"
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    dtype = np.int16 if signed else np.uint16
    ds.PixelData = pixels.astype(dtype).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


CASES = {
    # MONOCHROME1, 12 of 16 bits, with a rescale: every step of the path does something
    "mono1-12bit-rescale": dict(photometric="MONOCHROME1", bits_stored=12, slope=2.0,
                                intercept=-1024.0, window=(1500, 3000)),
    "mono2-16bit": dict(photometric="MONOCHROME2", bits_stored=16, window=(30000, 20000)),
    "mono2-12bit-signed": dict(photometric="MONOCHROME2", bits_stored=12, signed=True,
                               slope=1.0, intercept=0.0, window=(0, 2000)),
}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def written(request, tmp_path):
    """A DICOM file the test writes, its stored pixels and the tags that made it."""
    case = CASES[request.param]
    rng = np.random.default_rng(0)
    bits = case["bits_stored"]
    if case.get("signed"):
        pixels = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=(24, 20))
        pixels[0, :2] = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        pixels = rng.integers(0, 2**bits, size=(24, 20))
        pixels[0, :2] = 0, 2**bits - 1  # both ends of the stored range are present
    return _write_dicom(tmp_path / "written.dcm", pixels, **case), pixels, case


@pytest.mark.parametrize("window", [None, "dicom", (900, 400)],
                         ids=["none", "dicom", "window-900-400"])
def test_notebook_reads_a_written_dicom_as_read_dicom(lesson, written, window):
    path, _, _ = written
    ours = lesson.dicom_to_unit(path, window=window)
    np.testing.assert_allclose(ours, read_dicom(path, window=window), rtol=0, atol=1e-6)


def test_notebook_output_is_the_textbook_formula_without_a_window(lesson, written):
    """An oracle independent of both readers: rescale, scale by the stored range, invert."""
    path, pixels, case = written
    bits, signed = case["bits_stored"], case.get("signed", False)
    slope, intercept = case.get("slope") or 1.0, case.get("intercept") or 0.0
    lowest = -(2 ** (bits - 1)) if signed else 0
    low, high = (lowest * slope + intercept, (lowest + 2**bits - 1) * slope + intercept)
    expected = (pixels * slope + intercept - low) / (high - low)
    if case["photometric"] == "MONOCHROME1":
        expected = 1 - expected
    ours = lesson.dicom_to_unit(path)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
    assert ours.min() == 0.0 and ours.max() == 1.0  # the two ends of the stored range


def test_notebook_window_saturates_outside_and_inverts_monochrome1(lesson, written):
    path, pixels, case = written
    slope, intercept = case.get("slope") or 1.0, case.get("intercept") or 0.0
    values = pixels * slope + intercept
    center, width = 900, 400
    image = lesson.dicom_to_unit(path, window=(center, width))
    dark, bright = (1.0, 0.0) if case["photometric"] == "MONOCHROME1" else (0.0, 1.0)
    below, above = values <= center - width / 2, values > center + width / 2
    assert below.any() and above.any()
    assert np.all(image[below] == dark) and np.all(image[above] == bright)
