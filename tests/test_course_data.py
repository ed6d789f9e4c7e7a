"""course_data: the profile's image size, and the synthetic fallback for every offline failure."""

import copy
import dataclasses

import numpy as np
import pytest

from xraykit import datasets, registry
from xraykit.images import resize_square
from xraykit.profiles import PROFILES

# A smoke-sized profile at the gpu profile's image size, so that the test stays fast.
SMALL_64 = dataclasses.replace(PROFILES["smoke"], name="gpu", image_size=64, max_train=32,
                               max_val=16, max_test=16)


@pytest.fixture()
def offline(monkeypatch, tmp_path):
    """No network (every registry URL refuses connections) and an empty cache."""
    entries = copy.deepcopy(registry.registry())
    for entry in entries.values():
        for file_entry in entry.get("files", {}).values():
            file_entry["url"] = "http://127.0.0.1:9/" + file_entry["filename"]  # discard port
    monkeypatch.setattr(registry, "registry", lambda: entries)
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    return tmp_path / "cache" / "datasets" / "xraykit"


def test_28px_file_is_resized_for_a_64px_profile_and_says_so(pneumonia_npz, pneumonia, capsys):
    data = datasets.course_data("pneumoniamnist", SMALL_64, data=pneumonia_npz)
    said = capsys.readouterr().out
    assert "images are 28x28 px but the gpu profile uses 64 px; resizing them to 64x64 px" in said
    assert str(pneumonia_npz) in said
    assert not data.synthetic and data.image_shape == (64, 64, 1) and len(data.x_train) == 32
    # The same images, resized: the smoke subset of the 28 px file, each resized to 64 px.
    small = pneumonia.for_profile(SMALL_64)
    expected = resize_square(small.x_train[3, ..., 0], 64)
    np.testing.assert_allclose(data.x_train[3, ..., 0], expected, atol=1e-6)
    np.testing.assert_array_equal(data.y_train, small.y_train)


def test_matching_size_is_not_resized(pneumonia_npz, capsys):
    data = datasets.course_data("pneumoniamnist", "smoke", data=pneumonia_npz)
    assert data.image_shape == (28, 28, 1)
    assert "resizing" not in capsys.readouterr().out


def _assert_synthetic_with_banner(data, capsys, *named):
    out = capsys.readouterr().out
    assert data.synthetic and data.image_shape == (64, 64, 1)
    assert "SYNTHETIC DATA" in out
    for text in named:
        assert text in out, out


def test_no_network_falls_back_with_banner(offline, capsys):
    data = datasets.course_data("pneumoniamnist", SMALL_64)
    _assert_synthetic_with_banner(data, capsys, "127.0.0.1:9/pneumoniamnist_64.npz")


def test_missing_data_folder_falls_back_with_banner(offline, tmp_path, capsys):
    missing = tmp_path / "no_such_folder"
    data = datasets.course_data("pneumoniamnist", SMALL_64, data=missing)
    _assert_synthetic_with_banner(data, capsys, f"{missing}: no pneumoniamnist file there")


def test_corrupt_data_file_falls_back_with_banner(offline, tmp_path, capsys):
    broken = tmp_path / "pneumoniamnist_64.npz"
    broken.write_bytes(b"not a zip archive")
    data = datasets.course_data("pneumoniamnist", SMALL_64, data=broken)
    _assert_synthetic_with_banner(data, capsys, f"{broken}: cannot be used",
                                  "not an .npz (zip) archive")


def test_corrupt_cache_file_is_removed_and_falls_back(offline, capsys):
    offline.mkdir(parents=True)
    cached = offline / "pneumoniamnist_64.npz"
    cached.write_bytes(b"half a download")
    data = datasets.course_data("pneumoniamnist", SMALL_64)
    _assert_synthetic_with_banner(data, capsys, f"{cached}: cached file fails its md5 check")
    assert not cached.exists()


def test_cache_entry_that_is_a_folder_falls_back_with_banner(offline, capsys):
    entry = offline / "chestmnist_64.npz"
    entry.mkdir(parents=True)
    data = datasets.course_data("chestmnist", SMALL_64)
    _assert_synthetic_with_banner(data, capsys, f"{entry}: this cache entry is a folder")
    assert data.task == "multilabel"


def test_unwritable_cache_falls_back_with_banner(offline, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(datasets.CACHE_ENV, str(blocker))
    data = datasets.course_data("pneumoniamnist", SMALL_64)
    _assert_synthetic_with_banner(data, capsys,
                                  f"download cache {blocker}/datasets/xraykit cannot be created")


def test_unknown_dataset_is_an_error_not_a_fallback(offline):
    with pytest.raises(KeyError, match="Unknown dataset 'pneumonia-mnist'"):
        datasets.course_data("pneumonia-mnist", "smoke")


def test_selection_split_chooses_on_half_of_the_test_set(pneumonia):
    chosen = pneumonia.selection_split(seed=3)
    assert len(chosen.x_train) == len(pneumonia.x_train) + len(pneumonia.x_val)
    assert len(chosen.x_val) + len(chosen.x_test) == len(pneumonia.x_test)
    # The two halves partition the official test images, stratified by class.
    test_rows = {img.tobytes() for img in pneumonia.x_test}
    val_rows = [img.tobytes() for img in chosen.x_val]
    final_rows = [img.tobytes() for img in chosen.x_test]
    assert set(val_rows) <= test_rows and set(final_rows) <= test_rows
    assert not set(val_rows) & set(final_rows)
    assert abs(chosen.y_val.mean() - chosen.y_test.mean()) < 0.01
    # Seeded: the same halves again, other halves for another seed.
    np.testing.assert_array_equal(pneumonia.selection_split(seed=3).y_val, chosen.y_val)
    assert not np.array_equal(pneumonia.selection_split(seed=4).x_val, chosen.x_val)
    assert "selection split" in chosen.source
    with pytest.raises(ValueError, match="already a selection split"):
        chosen.selection_split()
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        pneumonia.selection_split(fraction=1.0)


def test_course_data_selection_split(pneumonia_npz):
    data = datasets.course_data("pneumoniamnist", "smoke", data=pneumonia_npz, split="selection")
    assert "selection split" in data.source and len(data.x_val) == 128
    with pytest.raises(ValueError, match="split must be"):
        datasets.course_data("pneumoniamnist", "smoke", data=pneumonia_npz, split="val")
