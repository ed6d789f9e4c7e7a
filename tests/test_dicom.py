"""DICOM photometry on the real shared radiographs."""

import numpy as np
import pydicom
import pytest

from xraykit.dicom import dicom_summary, read_dicom

MONO1 = "cr_mono1_10bit_chest_nometa.dcm"
MONO2 = "cr_mono2_8bit_jpeg_chest.dcm"


def _mediastinum_and_lungs(image):
    """Mean of the central column (spine, mediastinum) and of both lateral lung fields."""
    h, w = image.shape
    rows = slice(h // 3, 2 * h // 3)
    centre = image[rows, int(w * 0.46):int(w * 0.54)].mean()
    lungs = np.concatenate([image[rows, int(w * 0.2):int(w * 0.32)].ravel(),
                            image[rows, int(w * 0.68):int(w * 0.8)].ravel()]).mean()
    return centre, lungs


@pytest.mark.parametrize("name", [MONO1, MONO2])
def test_dense_tissue_bright_lungs_dark(dicom_dir, name):
    image = read_dicom(dicom_dir / name)
    assert image.dtype == np.float32 and image.ndim == 2
    assert 0.0 <= image.min() and image.max() <= 1.0
    centre, lungs = _mediastinum_and_lungs(image)
    assert centre > lungs + 0.15, (centre, lungs)


def test_monochrome1_is_inverted_like_monochrome2(dicom_dir, tmp_path):
    """The same pixels stored as MONOCHROME1 and MONOCHROME2 give images summing to 1."""
    ds = pydicom.dcmread(dicom_dir / MONO1, force=True)
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    flipped = tmp_path / "mono2.dcm"
    ds.save_as(flipped, enforce_file_format=True)
    for window in (None, "dicom", (500.0, 800.0)):
        total = read_dicom(dicom_dir / MONO1, window=window) + read_dicom(flipped, window=window)
        np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_scaling_uses_stored_bits_not_image_range(dicom_dir):
    ds = pydicom.dcmread(dicom_dir / MONO1, force=True)
    raw = ds.pixel_array if "TransferSyntaxUID" in getattr(ds, "file_meta", {}) else None
    image = read_dicom(dicom_dir / MONO1)
    # 10 stored bits: raw values divide by 1023 and invert (MONOCHROME1).
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    raw = ds.pixel_array.astype(np.float64)
    np.testing.assert_allclose(image, 1.0 - raw / 1023.0, atol=1e-6)
    assert image.min() > 0.0  # the darkest pixel is not stretched to 0


def test_windows(dicom_dir):
    path = dicom_dir / MONO1  # WindowCenter 550, WindowWidth 1024
    by_file = read_dicom(path, window="dicom")
    by_hand = read_dicom(path, window=(550, 1024))
    np.testing.assert_allclose(by_file, by_hand)
    narrow = read_dicom(path, window=(550, 200))
    assert (narrow == 0).mean() + (narrow == 1).mean() > (by_file == 0).mean() + (by_file == 1).mean()
    with pytest.raises(ValueError, match="no VOI LUT"):
        read_dicom(dicom_dir / MONO2, window="dicom")
    with pytest.raises(ValueError, match="width must be positive"):
        read_dicom(path, window=(500, 0))


def test_jpeg_baseline_decodes(dicom_dir):
    image = read_dicom(dicom_dir / MONO2)
    assert image.shape == (1024, 1024) and 0.3 < image.mean() < 0.8


def test_missing_decoder_names_the_package(dicom_dir, tmp_path):
    ds = pydicom.dcmread(dicom_dir / MONO2)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEGLSLossless  # no JPEG-LS decoder installed
    path = tmp_path / "jpegls.dcm"
    ds.save_as(path)
    with pytest.raises(RuntimeError, match="pip install"):
        read_dicom(path)


def test_not_dicom_is_a_clear_error(tmp_path):
    path = tmp_path / "note.dcm"
    path.write_text("not an image")
    with pytest.raises(ValueError, match="note.dcm"):
        read_dicom(path)


@pytest.mark.parametrize("name", [MONO1, MONO2])
def test_summary_has_no_identifiers(dicom_dir, name):
    summary = dicom_summary(dicom_dir / name)
    assert summary["Modality"] == "CR"
    assert summary["PhotometricInterpretation"] in ("MONOCHROME1", "MONOCHROME2")
    assert summary["Rows"] > 0 and summary["BitsStored"] in (8, 10)
    text = repr(summary).lower()
    ds = pydicom.dcmread(dicom_dir / name, force=True)
    for tag in ("PatientName", "PatientID", "PatientBirthDate", "StudyDate", "AcquisitionDate"):
        assert tag not in summary
        value = str(ds.get(tag, "") or "").strip().lower()
        if len(value) > 3:
            assert value not in text
