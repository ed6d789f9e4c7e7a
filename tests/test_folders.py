"""load_folder: class subfolders, labels CSVs (matched by path, refused by line), streaming."""

import csv
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from xraykit import folders
from xraykit.images import UnreadableFileWarning


def _folder(root, csv_text, images, encoding="utf-8"):
    """Writes 4x4 gray PNGs (relative path -> gray value) and labels.csv into root/data."""
    folder = root / "data"
    for relative, value in images.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((4, 4), value, np.uint8)).save(path)
    folder.mkdir(exist_ok=True)
    (folder / "labels.csv").write_bytes(csv_text.encode(encoding))
    return folder


def _gray_levels(data):
    return [round(float(image.mean()) * 255) for image in data.images]


def _raises(error, folder, line, column, **kwargs):
    """Asserts load_folder raises `error` naming the CSV, the line and the column."""
    with pytest.raises(error) as caught:
        folders.load_folder(folder, image_size=4, **kwargs)
    message = str(caught.value)
    assert str(folder / "labels.csv") in message
    assert f"line {line}" in message
    if column:
        assert f"column {column!r}" in message
    return message


def test_rows_are_matched_by_path_not_by_file_name(tmp_path):
    folder = _folder(tmp_path, "image,p\nb/x.png,1\na/x.png,0\n", {"a/x.png": 10, "b/x.png": 200})
    data = folders.load_folder(folder, image_size=4)
    assert _gray_levels(data) == [200, 10]  # each row gets its own file, in CSV order
    assert data.labels.tolist() == [[1], [0]] and data.labels.dtype == np.int32
    assert data.paths == [str(folder / "b" / "x.png"), str(folder / "a" / "x.png")]
    # A bare name that two subfolders hold is ambiguous: refused, naming both candidates.
    (folder / "labels.csv").write_text("image,p\nx.png,1\n")
    message = _raises(ValueError, folder, 2, "image")
    assert "a/x.png" in message and "b/x.png" in message


def test_nih_sample_by_bare_name_and_by_relative_path(nih_dir, tmp_path):
    with open(nih_dir / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[:6]
    labels_csv = tmp_path / "six.csv"
    labels_csv.write_text("path,pneumonia\n" + "".join(
        f"images/{row['image']},{row['pneumonia']}\n" for row in rows))
    data = folders.load_folder(nih_dir, image_size=8, labels_csv=labels_csv, image_column="path",
                                label_columns="pneumonia")
    assert data.paths == [str(nih_dir / "images" / row["image"]) for row in rows]
    assert data.labels.ravel().tolist() == [int(row["pneumonia"]) for row in rows]
    assert data.class_names == ["negative", "pneumonia"] and not data.failed


def test_real_nih_csv_refuses_a_non_label_column_without_echoing_it(nih_dir):
    with pytest.raises(ValueError) as caught:
        folders.load_folder(nih_dir, image_size=8, label_columns=["pneumonia", "patient_id"])
    message = str(caught.value)
    assert str(nih_dir / "labels.csv") in message and "line 2" in message
    assert "column 'patient_id'" in message and "0 or 1" in message
    with open(nih_dir / "labels.csv", newline="") as handle:
        first = next(csv.DictReader(handle))
    assert not re.search(rf"\b{first['patient_id']}\b", message)  # no patient identifier


@pytest.mark.parametrize("image", ["../outside.png", "images/../../outside.png", "{outside}",
                                   "C:\\data\\outside.png"])
def test_paths_that_leave_the_folder_are_refused(tmp_path, image):
    Image.fromarray(np.full((4, 4), 77, np.uint8)).save(tmp_path / "outside.png")
    image = image.format(outside=tmp_path / "outside.png")
    folder = _folder(tmp_path, f"image,p\nin.png,0\n{image},1\n", {"in.png": 5, "images/y.png": 6})
    assert "outside" in _raises(ValueError, folder, 3, "image")


@pytest.mark.parametrize("value", ["yes", "2", "-1", "", "0.5", "nan"])
def test_binary_labels_must_be_0_or_1(tmp_path, value):
    folder = _folder(tmp_path, f"image,p\na.png,1\nb.png,{value}\n", {"a.png": 1, "b.png": 2})
    assert "0 or 1" in _raises(ValueError, folder, 3, "p")


def test_multilabel_blank_or_nan_is_unknown(tmp_path):
    text = "image,p,q\na.png,,1\nb.png,NaN,0\nc.png,1.0,0\n"
    folder = _folder(tmp_path, text, {"a.png": 1, "b.png": 2, "c.png": 3})
    data = folders.load_folder(folder, image_size=4, label_columns=["p", "q"])
    assert data.task == "multilabel" and data.class_names == ["p", "q"]
    assert data.labels.dtype == np.float32
    np.testing.assert_array_equal(data.labels, [[np.nan, 1], [np.nan, 0], [1, 0]])
    stream = folders.load_folder(folder, image_size=4, label_columns=["p", "q"], stream=True,
                                  batch_size=3, workers=1)
    _, y = stream[0]
    assert y.dtype == np.float32 and np.isnan(y[:2, 0]).all() and y[2].tolist() == [1, 0]


@pytest.mark.parametrize("value", ["yes", "2", "-1"])
def test_multilabel_labels_must_be_0_1_or_blank(tmp_path, value):
    folder = _folder(tmp_path, f"image,p,q\na.png,1,0\nb.png,0,{value}\n", {"a.png": 1, "b.png": 2})
    assert "blank" in _raises(ValueError, folder, 3, "q", label_columns=["p", "q"])


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    folder = _folder(tmp_path, "image,p\na.png,1\nb.png,0\n", {"a.png": 1, "b.png": 2},
                     encoding="utf-8-sig")
    assert (folder / "labels.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    data = folders.load_folder(folder, image_size=4)
    assert data.labels.ravel().tolist() == [1, 0] and _gray_levels(data) == [1, 2]


def test_a_missing_column_names_the_columns_there_are(tmp_path):
    folder = _folder(tmp_path, "file,p\na.png,1\n", {"a.png": 1})
    assert "['file', 'p']" in _raises(ValueError, folder, 1, None)
    assert "['file', 'p']" in _raises(ValueError, folder, 1, None, image_column="file",
                                      label_columns=["pneumonia"])


def test_a_row_naming_a_missing_image_is_refused(tmp_path):
    folder = _folder(tmp_path, "image,p\na.png,1\nb.png,0\nc.png,1\n", {"a.png": 1, "c.png": 3})
    assert "b.png" in _raises(FileNotFoundError, folder, 3, "image")


def test_two_rows_for_one_image_are_refused(tmp_path):
    text = "image,p\nimages/a.png,1\nb.png,0\na.png,0\n"  # line 4 names line 2's file by name
    folder = _folder(tmp_path, text, {"images/a.png": 1, "b.png": 2})
    assert "line 2" in _raises(ValueError, folder, 4, "image")


@pytest.mark.parametrize("text, line, column", [
    ("image,p,q\na.png,1,0\nb.png,1\n", 3, "q"),  # a field short
    ("image,p\na.png,1\nb.png,1,0\n", 3, None),  # a field too many (an unquoted comma)
    ("image,p\na.png,1\n,0\n", 3, "image"),  # no image path
])
def test_malformed_rows_are_refused_by_line(tmp_path, text, line, column):
    folder = _folder(tmp_path, text, {"a.png": 1, "b.png": 2})
    _raises(ValueError, folder, line, column, label_columns=["q"] if column == "q" else None)


def test_a_csv_that_is_not_utf8_is_refused_by_line(tmp_path):
    folder = _folder(tmp_path, "image,p,site\na.png,1,x\nb.png,0,Z\u00fcrich\n",
                     {"a.png": 1, "b.png": 2}, encoding="latin-1")
    assert "UTF-8" in _raises(ValueError, folder, 3, None)


def test_hidden_and_tool_folders_are_not_classes(tmp_path):
    images = {"NORMAL/a.png": 1, "PNEUMONIA/b.png": 2, ".ipynb_checkpoints/c.png": 3,
              "__MACOSX/PNEUMONIA/._b.png": 4}
    for relative, value in images.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((4, 4), value, np.uint8)).save(tmp_path / relative)
    data = folders.load_folder(tmp_path, image_size=4)
    assert data.task == "binary" and data.class_names == ["NORMAL", "PNEUMONIA"]
    assert data.labels.ravel().tolist() == [0, 1] and _gray_levels(data) == [1, 2]


def test_nih_folder_with_labels_csv(nih_dir):
    folder = folders.load_folder(nih_dir, image_size=32, label_columns=["pneumonia"])
    assert folder.images.shape == (64, 32, 32, 1) and folder.images.dtype == np.float32
    assert folder.labels.shape == (64, 1) and int(folder.labels.sum()) == 16
    assert folder.task == "binary" and not folder.failed
    assert 0.0 <= folder.images.min() and folder.images.max() <= 1.0


def test_class_subfolders_report_unreadable_files(nih_dir, tmp_path):
    pngs = sorted((nih_dir / "images").glob("*.png"))[:6]
    for i, png in enumerate(pngs):
        target = tmp_path / ("NORMAL" if i < 3 else "PNEUMONIA") / png.name
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(png, target)
    (tmp_path / "PNEUMONIA" / "corrupt.png").write_bytes(b"not a png")
    with pytest.warns(UnreadableFileWarning, match=r"(?s)1 of 7 file\(s\).*corrupt\.png"):
        folder = folders.load_folder(tmp_path, image_size=16)
    assert folder.class_names == ["NORMAL", "PNEUMONIA"] and folder.task == "binary"
    assert folder.images.shape == (6, 16, 16, 1)
    assert folder.labels.ravel().tolist() == [0, 0, 0, 1, 1, 1]
    assert list(folder.failed) == [str(tmp_path / "PNEUMONIA" / "corrupt.png")]
    with pytest.raises(ValueError, match="corrupt.png"):
        folders.load_folder(tmp_path, image_size=16, strict=True)


def test_folder_stream_is_a_pydataset(nih_dir):
    import keras

    stream = folders.load_folder(nih_dir, image_size=16, label_columns=["pneumonia"],
                                  stream=True, batch_size=20, workers=2)
    assert isinstance(stream, keras.utils.PyDataset) and len(stream) == 4
    x, y = stream[3]
    assert x.shape == (4, 16, 16, 1) and y.shape == (4, 1)


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        folders.load_folder(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="class subfolders"):
        folders.load_folder(tmp_path)
