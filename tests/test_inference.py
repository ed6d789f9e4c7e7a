"""Tests of xraykit.inference: save/load with the preprocessing config, predict on real files."""

import json
import zipfile

import keras
import numpy as np
import pytest

from xraykit.calibration import apply_temperature
from xraykit.datasets import load_folder
from xraykit.images import UnreadableFileWarning
from xraykit.inference import load_model, model_config, predict, save_model
from xraykit.models import build_model


@pytest.fixture(scope="module")
def trained(small_data):
    model = build_model("small_cnn", (28, 28, 1), width=8, depth=2)
    model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy")
    model.fit(small_data.x_train, small_data.y_train, epochs=2, batch_size=64, verbose=0)
    return model


def test_save_and_load_carry_the_config(trained, tmp_path):
    path = save_model(trained, tmp_path / "pneumonia", temperature=1.8, threshold=0.35,
                      class_names=["normal", "pneumonia"])
    assert path.name == "pneumonia.keras"
    with zipfile.ZipFile(path) as archive:
        stored = json.loads(archive.read("xraykit.json"))
    assert stored["temperature"] == 1.8 and stored["image_size"] == 28
    assert json.loads((tmp_path / "pneumonia.keras.json").read_text())["threshold"] == 0.35
    model = load_model(path)
    config = model_config(model)
    assert (config.image_size, config.resize_mode, config.temperature, config.threshold) == \
        (28, "pad", 1.8, 0.35)
    assert config.class_names == ["normal", "pneumonia"] and config.task == "binary"
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), trained.predict(x, verbose=0),
                               atol=1e-5)


def test_predict_on_real_dicoms_and_pngs(trained, tmp_path, dicom_dir, nih_dir):
    path = save_model(trained, tmp_path / "m.keras", temperature=2.0, threshold=0.4,
                      class_names=["normal", "pneumonia"])
    # DICOM folder (one MONOCHROME1 without file meta, one JPEG-compressed), with Grad-CAM.
    result = predict(str(path), dicom_dir, grad_cam=True)
    assert len(result) == 2 and result.failed == {}
    assert result.probabilities.shape == (2, 1) and np.isfinite(result.probabilities).all()
    assert result.heatmaps.shape == (2, 28, 28) and np.isfinite(result.heatmaps).all()
    np.testing.assert_allclose(result.probabilities, apply_temperature(result.raw, 2.0),
                               atol=1e-6)
    assert ((result.probabilities >= 0.4) == result.predicted.astype(bool)).all()
    frame = result.to_frame()
    assert list(frame.columns) == ["path", "p_pneumonia", "predicted"]

    # NIH PNGs: the same pixels as load_folder (the training path) gives, then model.predict.
    model = load_model(path)
    folder = load_folder(nih_dir, image_size=28, label_columns=["pneumonia"])
    assert len(folder.paths) == 64
    result = predict(model, folder.paths[:8])
    assert result.paths == folder.paths[:8]
    np.testing.assert_allclose(result.images, folder.images[:8], atol=1e-6)
    expected = apply_temperature(model.predict(folder.images[:8], verbose=0), 2.0)
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-5)

    # One file, and an array at full resolution resized the same way.
    one = predict(model, folder.paths[0])
    np.testing.assert_allclose(one.probabilities[0], expected[0], atol=1e-5)
    from xraykit.images import read_image

    arr = predict(model, read_image(folder.paths[0]))
    np.testing.assert_allclose(arr.probabilities[0], expected[0], atol=1e-5)


def test_predict_arrays_and_errors(trained, tmp_path):
    x = np.random.default_rng(1).random((4, 28, 28), dtype=np.float32)
    result = predict(trained, x, temperature=1.0)  # no saved config: inferred from the model
    np.testing.assert_allclose(result.probabilities, trained.predict(x[..., None], verbose=0),
                               atol=1e-6)
    assert result.paths == [None] * 4
    uint8 = predict(trained, (x * 255).astype(np.uint8))
    assert uint8.probabilities.shape == (4, 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        predict(trained, x * 300)
    with pytest.raises(FileNotFoundError):
        predict(trained, tmp_path / "missing.png")
    with pytest.raises(ValueError, match="no image file in this folder"):
        predict(trained, tmp_path)
    with pytest.raises(FileNotFoundError, match="save_model"):
        load_model(tmp_path / "nothing.keras")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="could be read"), \
            pytest.warns(UnreadableFileWarning, match="bad.png"):
        predict(trained, [tmp_path / "bad.png"])
