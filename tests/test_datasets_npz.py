"""load / load_npz on broken variations of the real PneumoniaMNIST file; errors name the file."""

import io
import zipfile

import numpy as np
import pytest

from xraykit import datasets


@pytest.fixture(scope="module")
def real_arrays(pneumonia_npz):
    with np.load(pneumonia_npz) as archive:
        return {key: archive[key] for key in archive.files}


def _save(path, arrays, **changes):
    arrays = {key: value for key, value in {**arrays, **changes}.items() if value is not None}
    np.savez(path, **arrays)
    return path


def _first_to(array, value):
    """A copy of a label array whose first entry is `value` (float if value is)."""
    array = array.astype(type(value)) if isinstance(value, float) else array.copy()
    array.flat[0] = value
    return array


def _fails(path, error=ValueError, *fragments, **kwargs):
    with pytest.raises(error) as caught:
        datasets.load_npz(path, **kwargs) if kwargs else datasets.load(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    return message


# Each case breaks one thing of the real file: (changes, fragments the message must hold).
LAYOUT_CASES = {
    "val images of another size": (
        lambda a: dict(val_images=np.zeros((524, 32, 32), np.uint8)), ["val_images", "(32, 32)"]),
    "a label column more in val": (
        lambda a: dict(val_labels=np.zeros((524, 2), np.uint8)), ["'val': 2"]),
    "fewer labels than images": (
        lambda a: dict(test_labels=a["test_labels"][:5]), ["624 images but 5 labels"]),
    "a missing key": (lambda a: dict(val_labels=None), ["['val_labels']"]),
    "a fractional label": (lambda a: dict(train_labels=_first_to(a["train_labels"], 0.5)),
                           ["train_labels[0, 0]", "whole numbers"]),
    "an unknown (NaN) binary label": (lambda a: dict(val_labels=_first_to(a["val_labels"], np.nan)),
                                      ["val_labels[0]", "NaN"]),
    "label 2 in a binary file": (lambda a: dict(test_labels=_first_to(a["test_labels"], 2)),
                                 ["test_labels[0] is 2", "0 or 1"]),
    "label -1 in a binary file": (
        lambda a: dict(train_labels=_first_to(a["train_labels"].astype(np.int64), -1)),
        ["train_labels[0] is -1", "0 or 1"]),
    "float images in [-1, 1]": (lambda a: dict(train_images=a["train_images"] / 127.5 - 1),
                                ["train_images", "[-1, 1]", "[0, 255]"]),
    "float images up to 1020": (lambda a: dict(test_images=a["test_images"] * 4.0),
                                ["test_images", "float values in [0, "]),
    "float images with NaN": (lambda a: dict(val_images=_first_to(a["val_images"], np.nan)),
                              ["val_images", "NaN"]),
    "int64 images": (lambda a: dict(val_images=a["val_images"].astype(np.int64)),
                     ["val_images", "int64"]),
    "object array of labels": (lambda a: dict(train_labels=a["train_labels"].astype(object)),
                               ["train_labels", "pickled"]),
    "object array of images": (lambda a: dict(test_images=np.array([None] * 624, dtype=object)),
                               ["test_images", "pickled"]),
    "an oversized .npy header": (  # 1200 named fields make a header above numpy's 10000 bytes
        lambda a: dict(val_labels=np.zeros(524, dtype=[(f"f{i}", "u1") for i in range(1200)])),
        ["val_labels", "Header"]),
}


@pytest.mark.parametrize("case", LAYOUT_CASES)
def test_a_broken_variation_of_the_real_file_is_refused(real_arrays, tmp_path, case):
    changes, fragments = LAYOUT_CASES[case]
    # The registered name keeps the registry's task (binary) and class names.
    path = _save(tmp_path / "pneumoniamnist_28.npz", real_arrays, **changes(real_arrays))
    _fails(path, ValueError, *fragments)


def test_accepted_variations_give_the_same_pixels(pneumonia, real_arrays, tmp_path):
    as_float = {f"{s}_images": real_arrays[f"{s}_images"].astype(np.float32)
                for s in datasets.SPLITS}
    floats = datasets.load(_save(tmp_path / "pneumoniamnist_28.npz", real_arrays, **as_float))
    np.testing.assert_allclose(floats.x_test, pneumonia.x_test, atol=1e-6)  # [0, 255] floats
    rgb = {k: np.repeat(v[..., None], 3, axis=-1) for k, v in real_arrays.items() if "images" in k}
    colour = datasets.load(_save(tmp_path / "pneumoniamnist_28.npz", real_arrays, **rgb))
    np.testing.assert_allclose(colour.x_val, pneumonia.x_val, atol=1e-6)
    assert colour.y_train.tolist() == pneumonia.y_train.tolist() and colour.task == "binary"


def test_multiclass_labels_must_be_classes_of_the_training_split(real_arrays, tmp_path):
    three = {f"{s}_labels": np.arange(len(real_arrays[f"{s}_labels"]))[:, None] % 3
             for s in datasets.SPLITS}
    path = _save(tmp_path / "mine.npz", real_arrays, **three)
    data = datasets.load(path)
    assert data.task == "multiclass" and data.class_names == ["class_0", "class_1", "class_2"]
    assert data.y_val.shape == (524,) and data.y_val[:4].tolist() == [0, 1, 2, 0]
    path = _save(tmp_path / "mine.npz", real_arrays,
                 **{**three, "val_labels": _first_to(three["val_labels"], 3)})
    _fails(path, ValueError, "val_labels[0] is 3", "0..2")
    _fails(path, ValueError, "train_labels[2] is 2", "0..1", task="multiclass",
           class_names=["a", "b"])
    _fails(path, ValueError, "val_labels[0] is 3", task="multiclass", class_names=["a", "b", "c"])
    path = _save(tmp_path / "mine.npz", real_arrays,
                 **{**three, "test_labels": _first_to(three["test_labels"], -1)})
    _fails(path, ValueError, "test_labels[0] is -1")
    two_columns = {k: np.zeros((len(v), 2), np.uint8) for k, v in three.items()}
    _fails(_save(tmp_path / "mine.npz", real_arrays, **two_columns), ValueError, "2",
           task="multiclass")


def test_multilabel_unknowns_stay_nan_and_values_are_checked(real_arrays, tmp_path):
    labels = {f"{s}_labels": np.zeros((len(real_arrays[f"{s}_labels"]), 3), np.float32)
              for s in datasets.SPLITS}
    labels["val_labels"][1, 2] = np.nan
    data = datasets.load(_save(tmp_path / "mine.npz", real_arrays, **labels))
    assert data.task == "multilabel" and data.y_train.dtype == np.float32
    assert np.isnan(data.y_val[1, 2]) and np.isnan(data.y_val).sum() == 1
    labels["test_labels"][4, 1] = 2
    _fails(_save(tmp_path / "mine.npz", real_arrays, **labels), ValueError,
           "test_labels[4, 1] is 2")


def _zip_bytes(arrays, replace=None):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key, value in arrays.items():
            member = io.BytesIO()
            np.save(member, value)
            data = member.getvalue()
            archive.writestr(f"{key}.npy", replace(key, data) if replace else data)
    return buffer.getvalue()


def test_unreadable_files_are_refused_naming_the_file(pneumonia_npz, real_arrays, tmp_path):
    data = pneumonia_npz.read_bytes()
    cases = {
        "truncated.npz": data[: len(data) // 2],
        "empty.npz": b"",
        "text.npz": b"image,label\na.png,1\n",
        "corrupt_header.npz": _zip_bytes(real_arrays, lambda key, member: member.replace(
            b"'descr'", b"'dexxx'") if key == "val_labels" else member),
    }
    member = io.BytesIO()
    np.save(member, real_arrays["train_images"])
    cases["one_array.npz"] = member.getvalue()
    good = bytearray(_zip_bytes(real_arrays))  # flip bytes inside a member: its CRC fails
    start = good.find(b"train_images.npy") + 5000
    good[start:start + 64] = bytes(64)
    cases["bad_crc.npz"] = bytes(good)
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        message = _fails(tmp_path / name, ValueError)
        if name == "corrupt_header.npz":
            assert "val_labels" in message
        if name == "bad_crc.npz":
            assert "train_images" in message
        if name == "one_array.npz":
            assert ".npy" in message
    with pytest.raises(ValueError, match="task must be one of"):
        datasets.load_npz(pneumonia_npz, task="binay")
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        datasets.load(tmp_path / "absent.npz")
