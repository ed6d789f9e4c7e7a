"""The dataset object, loading registered and local files, phantoms, and the lessons' data."""

import numpy as np
import pytest

from xraykit import datasets, synthetic


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


def test_moved_names_stay_importable_from_datasets():
    import xraykit
    from xraykit import downloads, files, folders, registry

    moved = {
        registry: ["registry_path", "registry", "list_datasets", "info", "expected_hash"],
        downloads: ["CACHE_ENV", "DATA_ENV", "MIRROR_URL_ENV", "DOWNLOAD_TIMEOUT",
                    "DOWNLOAD_DEADLINE", "cache_dir", "cache_folder", "cached_state",
                    "fetch_verified", "download", "verify"],
        files: ["file_checksum"],
        folders: ["IMAGE_SUFFIXES", "list_images", "FolderData", "load_folder"],
    }
    for module, names in moved.items():
        for name in names:
            assert getattr(datasets, name) is getattr(module, name), name
    assert xraykit.download is downloads.download and xraykit.load_folder is folders.load_folder
