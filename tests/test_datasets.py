"""Loading arrays, files and folders, synthetic phantoms, and the lessons' data entry point."""

import shutil

import numpy as np
import pytest

from xraykit import datasets, synthetic
from xraykit.images import UnreadableFileWarning


def test_shared_pneumoniamnist_has_official_splits(pneumonia):
    assert (len(pneumonia.x_train), len(pneumonia.x_val), len(pneumonia.x_test)) == (4708, 524, 624)
    assert pneumonia.x_train.shape[1:] == (28, 28, 1) and pneumonia.x_train.dtype == np.float32
    assert 0.0 <= pneumonia.x_train.min() and pneumonia.x_train.max() <= 1.0
    assert pneumonia.y_train.shape == (4708, 1)
    assert pneumonia.class_names == ["normal", "pneumonia"] and pneumonia.task == "binary"
    assert pneumonia.class_counts() == {
        "train": {"normal": 1214, "pneumonia": 3494},
        "val": {"normal": 135, "pneumonia": 389},
        "test": {"normal": 234, "pneumonia": 390},
    }


def test_subset_is_stratified_and_seeded(pneumonia):
    small = pneumonia.subset(200, 100, 100, seed=1)
    assert len(small.x_train) == 200 and len(small.x_test) == 100
    share = small.y_train.mean()
    assert abs(share - 3494 / 4708) < 0.02
    again = pneumonia.subset(200, 100, 100, seed=1)
    np.testing.assert_array_equal(small.x_train, again.x_train)
    assert not np.array_equal(small.x_train, pneumonia.subset(200, 100, 100, seed=2).x_train)
    smoke = pneumonia.for_profile("smoke")
    assert (len(smoke.x_train), len(smoke.x_val), len(smoke.x_test)) == (256, 128, 128)


def _write_npz(path, **overrides):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 8), ("val", 4), ("test", 4)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (n, 1))
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def test_local_npz_is_validated(tmp_path):
    good = datasets.load(_write_npz(tmp_path / "mine.npz"))
    assert good.task == "binary" and good.x_val.shape == (4, 28, 28, 1)
    cases = {
        "missing keys": dict(test_labels=None),
        r"must lie in \[0, 1\] or \[0, 255\]": dict(train_images=np.full((8, 28, 28), 300.0)),
        "must be 0 or 1": dict(val_labels=np.array([[0], [1], [2], [1]])),
        "images but": dict(test_labels=np.zeros((3, 1))),
        r"\(N, H, W\)": dict(train_images=np.zeros((8, 28), np.uint8)),
    }
    for message, override in cases.items():
        path = _write_npz(tmp_path / "bad.npz", **override)
        with pytest.raises(ValueError, match=message):
            datasets.load(path)
    np.savez(tmp_path / "pickled.npz", train_images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickled.npz"):
        datasets.load(tmp_path / "pickled.npz")
    with pytest.raises(FileNotFoundError):
        datasets.load(tmp_path / "absent.npz")


def test_nih_folder_with_labels_csv(nih_dir):
    folder = datasets.load_folder(nih_dir, image_size=32, label_columns=["pneumonia"])
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
        folder = datasets.load_folder(tmp_path, image_size=16)
    assert folder.class_names == ["NORMAL", "PNEUMONIA"] and folder.task == "binary"
    assert folder.images.shape == (6, 16, 16, 1)
    assert folder.labels.ravel().tolist() == [0, 0, 0, 1, 1, 1]
    assert list(folder.failed) == [str(tmp_path / "PNEUMONIA" / "corrupt.png")]
    with pytest.raises(ValueError, match="corrupt.png"):
        datasets.load_folder(tmp_path, image_size=16, strict=True)


def test_folder_stream_is_a_pydataset(nih_dir):
    import keras

    stream = datasets.load_folder(nih_dir, image_size=16, label_columns=["pneumonia"],
                                  stream=True, batch_size=20, workers=2)
    assert isinstance(stream, keras.utils.PyDataset) and len(stream) == 4
    x, y = stream[3]
    assert x.shape == (4, 16, 16, 1) and y.shape == (4, 1)


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        datasets.load_folder(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="class subfolders"):
        datasets.load_folder(tmp_path)


def test_synthetic_phantoms_are_seeded_and_learnable():
    images, labels, masks = synthetic.phantoms(200, 32, seed=3)
    again, _, _ = synthetic.phantoms(200, 32, seed=3)
    np.testing.assert_array_equal(images, again)
    assert images.shape == (200, 32, 32, 1) and 0 <= images.min() and images.max() <= 1
    positive = labels[:, 0] == 1
    assert masks[positive].any(axis=(1, 2)).all() and not masks[~positive].any()
    # The opacity brightens the lung where the mask is.
    inside = images[positive, ..., 0][masks[positive]].mean()
    lung_masks = masks[positive].any(axis=0)[None].repeat((~positive).sum(), 0)
    lungs_of_negatives = images[~positive, ..., 0][lung_masks].mean()
    assert inside > lungs_of_negatives + 0.1
    multi = datasets.synthetic(100, 28, task="multilabel")
    assert multi.y_train.shape[1] == 4 and multi.synthetic and multi.task == "multilabel"


def test_course_data_uses_override_then_falls_back(shared_data, monkeypatch, capsys):
    real = datasets.course_data("pneumoniamnist", "smoke", data=shared_data)
    assert not real.synthetic and len(real.x_train) == 256
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)

    def offline(*args, **kwargs):
        raise ConnectionError("Could not download: offline")

    monkeypatch.setattr(datasets, "download", offline)
    fake = datasets.course_data("pneumoniamnist", "smoke")
    assert fake.synthetic and "SYNTHETIC DATA" in capsys.readouterr().out
    multilabel = datasets.course_data("chestmnist", "smoke")
    assert multilabel.synthetic and multilabel.task == "multilabel"
