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
    saturated = (narrow == 0).mean() + (narrow == 1).mean()
    assert saturated > (by_file == 0).mean() + (by_file == 1).mean()
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


# --- Faulty files, built from the real radiographs; no message may echo an identifier. ---

IDENTIFIERS = {"PatientName": "Zyxwvuta^Quorbel", "PatientID": "PID-9081726354",
               "PatientBirthDate": "19431107", "StudyDate": "20190314",
               "InstitutionName": "Saint Qwertyuiop Hospital"}


def _tagged(dicom_dir, name=MONO1):
    """A real radiograph with a Part-10 header and recognisable identifiers."""
    ds = pydicom.dcmread(dicom_dir / name, force=True)
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    for keyword, value in IDENTIFIERS.items():
        setattr(ds, keyword, value)
    return ds


def _save(ds, path):
    ds.save_as(path, enforce_file_format=True)
    return path


def _refused(path, match, recwarn, **kwargs):
    """read_dicom refuses the file naming it, and nothing it says carries an identifier."""
    with pytest.raises(ValueError, match=match) as caught:
        read_dicom(path, **kwargs)
    said = [str(caught.value)] + [str(w.message) for w in recwarn]
    cause = caught.value.__cause__
    while cause is not None:
        said.append(str(cause))
        cause = cause.__cause__
    assert path.name in said[0]
    for value in IDENTIFIERS.values():
        assert not any(value.lower() in text.lower() for text in said), value
        assert not any(value.split("^")[0].lower() in text.lower() for text in said), value
    return str(caught.value)


def test_truncated_pixel_data_says_truncated(dicom_dir, tmp_path, recwarn):
    whole = _save(_tagged(dicom_dir), tmp_path / "whole.dcm")
    data = whole.read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:-1000])  # the file ends early
    ds = _tagged(dicom_dir)
    ds.PixelData = ds.PixelData[:len(ds.PixelData) // 2]  # the element itself is short
    short = _save(ds, tmp_path / "short.dcm")
    for path in (tmp_path / "cut.dcm", short):
        message = _refused(path, "truncated", recwarn)
        assert "pip install" not in message
    jpeg = (dicom_dir / MONO2).read_bytes()  # compressed pixel data cut in the middle
    (tmp_path / "cut_jpeg.dcm").write_bytes(jpeg[:len(jpeg) - 5000])
    assert "pip install" not in _refused(tmp_path / "cut_jpeg.dcm", "truncated", recwarn)


@pytest.mark.parametrize("window", [(float("nan"), 100), (100, float("inf")), (1, 2, 3), 5,
                                    ("a", 1), (True, 10), "DICOM", (100, -1), (550, 0)])
def test_bad_window_arguments_are_refused(dicom_dir, window):
    with pytest.raises(ValueError, match="(?i)window"):
        read_dicom(dicom_dir / MONO1, window=window)


def test_window_as_numpy_pair(dicom_dir):
    np.testing.assert_array_equal(read_dicom(dicom_dir / MONO1, window=np.array([550, 1024])),
                                  read_dicom(dicom_dir / MONO1, window=(550, 1024)))


def _set_window_center_to_text(path):
    """WindowCenter "abc": pydicom will not store it, so it is written into the bytes."""
    path.write_bytes(path.read_bytes().replace(b"9876.5", b"abc   "))


@pytest.mark.parametrize("change, window, match", [
    (lambda ds: setattr(ds, "WindowWidth", 0), "dicom", r"WindowWidth \(0028,1051\).*positive"),
    (lambda ds: setattr(ds, "RescaleSlope", 0), None, r"RescaleSlope \(0028,1053\) is 0"),
    (lambda ds: setattr(ds, "WindowCenter", "9876.5"), "dicom",
     r"WindowCenter \(0028,1050\) is not a finite number"),
    (lambda ds: delattr(ds, "BitsStored"), None, r"BitsStored \(0028,0101\) is missing"),
    (lambda ds: delattr(ds, "PhotometricInterpretation"), None,
     r"PhotometricInterpretation \(0028,0004\) is missing"),
])
def test_bad_tags_are_named_without_identifiers(dicom_dir, tmp_path, recwarn, change, window,
                                                match):
    ds = _tagged(dicom_dir)
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    change(ds)
    path = _save(ds, tmp_path / "faulty.dcm")
    if "WindowCenter" in match:
        _set_window_center_to_text(path)
    _refused(path, match, recwarn, window=window)


def test_palette_color_is_looked_up_not_read_as_grey(dicom_dir, tmp_path):
    """PALETTE COLOR whose table inverts the 10-bit values: lungs must come out dark."""
    ds = _tagged(dicom_dir)
    ds.PhotometricInterpretation = "PALETTE COLOR"
    table = ((1023 - np.arange(1024)) * 64).astype("<u2").tobytes()
    for colour in ("Red", "Green", "Blue"):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [1024, 0, 16])
        setattr(ds, f"{colour}PaletteColorLookupTableData", table)
    path = _save(ds, tmp_path / "palette.dcm")
    image = read_dicom(path)
    np.testing.assert_allclose(image, read_dicom(dicom_dir / MONO1), atol=2e-3)
    centre, lungs = _mediastinum_and_lungs(image)
    assert centre > lungs + 0.15
    with pytest.raises(ValueError, match=r"palette\.dcm.*PALETTE COLOR"):
        read_dicom(path, window="dicom")


def test_is_dicom_by_preamble(dicom_dir, tmp_path):
    from xraykit.dicom import is_dicom
    from xraykit.images import read_image

    path = _save(_tagged(dicom_dir), tmp_path / "scan.bin")  # Part-10 file, no .dcm suffix
    assert is_dicom(path) and not is_dicom(tmp_path) and not is_dicom(tmp_path / "absent")
    np.testing.assert_array_equal(read_image(path), read_dicom(dicom_dir / MONO1))


def test_pydicom_warnings_never_echo_a_malformed_tag_value(dicom_dir, tmp_path):
    """No warning from a read quotes a malformed date; pydicom's own setting is restored.

    pydicom's validation warning quotes the malformed value; xraykit's reads switch that
    validation off and pass on no warning holding the value.
    """
    import warnings

    from xraykit import dicom

    malformed = "1943/11/07"  # a birth date in the wrong format: invalid for VR DA
    with pytest.warns(UserWarning, match=malformed):  # what pydicom says on its own
        pydicom.dataelem.DataElement(0x00100030, "DA", malformed)
    ds = _tagged(dicom_dir)
    ds.PatientBirthDate = "20000101"
    path = _save(ds, tmp_path / "dates.dcm")
    path.write_bytes(path.read_bytes().replace(b"20000101", malformed.encode()[:8]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with dicom._values_not_echoed():  # what xraykit's reads run under
            pydicom.dataelem.DataElement(0x00100030, "DA", malformed)
        read_dicom(path)
        read_dicom(path, window="dicom")
        summary = dicom_summary(path)
    said = [str(w.message) for w in caught] + [repr(summary)]
    assert not any(malformed[:8] in text for text in said), said
    assert pydicom.config.settings.reading_validation_mode == pydicom.config.WARN


def test_the_files_voi_lut_function_is_honoured(dicom_dir, tmp_path):
    """VOILUTFunction SIGMOID (PS3.3 C.11.2.1.3.1) is applied, not read as a linear window."""
    ds = _tagged(dicom_dir, MONO2)  # MONOCHROME2, 8 stored bits, no window
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 128, 100, "SIGMOID"
    path = _save(ds, tmp_path / "sigmoid.dcm")
    stored = read_dicom(dicom_dir / MONO2) * 255.0
    expected = 1.0 / (1.0 + np.exp(-4.0 * (stored - 128) / 100))
    sigmoid = read_dicom(path, window="dicom")
    np.testing.assert_allclose(sigmoid, expected, atol=1e-5)
    linear = read_dicom(path, window=(128, 100))
    assert np.abs(sigmoid - linear).max() > 0.05
