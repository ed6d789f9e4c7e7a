"""Tests for xraykit.preprocessing on real radiographs (PneumoniaMNIST, DICOM, NIH sample)."""

import keras
import numpy as np
import pytest

from xraykit import preprocessing as pp
from xraykit.dicom import read_dicom
from xraykit.images import read_image


@pytest.fixture(scope="module")
def x(small_data):
    return small_data.x_train[:32]


@pytest.fixture(scope="module")
def dicom_image(dicom_dir):
    return read_dicom(dicom_dir / "cr_mono1_10bit_chest_nometa.dcm")


def test_check_unit_range_accepts_and_explains(x):
    out = pp.check_unit_range(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    with pytest.raises(ValueError, match="divide by 255"):
        pp.check_unit_range(x * 255)
    with pytest.raises(ValueError, match="12/16-bit"):
        pp.check_unit_range(x * 4095)
    with pytest.raises(ValueError, match="already normalized"):
        pp.check_unit_range(x - 0.5)
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="nan_to_num"):
        pp.check_unit_range(bad)
    bad[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN/inf"):
        pp.zscore(bad)


def test_minmax_per_image_on_raw_dicom_values(dicom_image):
    raw = dicom_image * 1023.0 + 50.0  # 10-bit stored values with an offset
    out = pp.minmax(raw)
    assert out.dtype == np.float32 and out.shape == raw.shape
    assert out.min() == pytest.approx(0.0) and out.max() == pytest.approx(1.0)
    batch = np.stack([raw, raw * 0.5])[..., None]
    out_b = pp.minmax(batch)
    flat = out_b.reshape(2, -1)
    assert np.allclose(flat.min(1), 0) and np.allclose(flat.max(1), 1)
    assert np.allclose(out_b[0], out_b[1], atol=1e-5)
    layer_out = keras.ops.convert_to_numpy(pp.PerImageMinMax()(batch))
    assert np.allclose(layer_out, out_b, atol=1e-5)


def test_zscore_and_layer_agree(x):
    z = pp.zscore(x)
    flat = z.reshape(len(z), -1)
    assert np.allclose(flat.mean(1), 0, atol=1e-4) and np.allclose(flat.std(1), 1, atol=1e-3)
    layer = keras.ops.convert_to_numpy(pp.PerImageStandardize()(x))
    assert layer.dtype == np.float32 and np.allclose(layer, z, atol=1e-4)
    assert pp.zscore(x[0, ..., 0]).shape == (28, 28)


def test_dataset_normalizer_matches_training_stats(small_data):
    x_train = small_data.x_train
    mean, std = pp.dataset_stats(x_train)
    assert 0 < mean < 1 and 0 < std < 0.5
    layer = pp.dataset_normalizer(x_train)
    out = keras.ops.convert_to_numpy(layer(x_train))
    assert out.mean() == pytest.approx(0.0, abs=1e-3)
    assert out.std() == pytest.approx(1.0, abs=1e-2)
    layer_mean = float(np.ravel(keras.ops.convert_to_numpy(layer.mean))[0])
    assert layer_mean == pytest.approx(mean, abs=1e-5)
    with pytest.raises(ValueError, match="x_train"):
        pp.dataset_normalizer(x_train * 255)


def test_xrv_scale_formula(x):
    assert np.allclose(pp.xrv_scale(np.array([0.0, 0.5, 1.0])), [-1024, 0, 1024])
    assert np.allclose(pp.xrv_scale(np.array([0, 255.0]), maxval=255), [-1024, 1024])
    out = pp.xrv_scale(x)
    assert np.allclose(out, (2 * x - 1) * 1024, atol=1e-3)
    assert np.allclose(keras.ops.convert_to_numpy(pp.XRVScale()(x)), out, atol=1e-3)
    with pytest.raises(ValueError, match="maxval"):
        pp.xrv_scale(x * 255)


def test_window_numpy_and_layer(dicom_image):
    out = pp.window(dicom_image, center=0.4, width=0.2)
    assert out.min() == 0.0 and out.max() == 1.0
    # values inside the window map linearly
    inside = (dicom_image > 0.31) & (dicom_image < 0.49)
    assert np.allclose(out[inside], (dicom_image[inside] - 0.3) / 0.2, atol=1e-5)
    layer = keras.ops.convert_to_numpy(pp.Window(0.4, 0.2)(dicom_image[None, ..., None]))
    assert np.allclose(layer[0, ..., 0], out, atol=1e-5)
    with pytest.raises(ValueError, match="width"):
        pp.window(dicom_image, 0.5, 0.0)


def test_equalize_hist_flattens_histogram(nih_dir):
    img = pp.resize_batch(read_image(sorted((nih_dir / "images").glob("*.png"))[0]), 128)
    eq = pp.equalize_hist(img)
    assert eq.shape == img.shape and eq.dtype == np.float32
    assert eq.min() >= 0 and eq.max() <= 1
    # a flatter histogram: the cumulative distribution is close to the identity line
    q = np.quantile(eq, [0.25, 0.5, 0.75])
    assert np.allclose(q, [0.25, 0.5, 0.75], atol=0.05)
    # order-preserving: brighter pixels stay at least as bright
    order = np.argsort(img.ravel())
    assert np.all(np.diff(eq.ravel()[order]) >= -1e-6)


def test_clahe_local_contrast(dicom_image):
    small = pp.resize_batch(dicom_image, 32)
    out = pp.clahe(small, clip_limit=2.0, tile_grid_size=(4, 4))
    assert out.shape == small.shape and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
    assert not np.allclose(out, small, atol=1e-2)
    batch = pp.clahe(np.stack([small, small])[..., None])
    assert batch.shape == (2, 32, 32, 1) and np.allclose(batch[0, ..., 0], batch[1, ..., 0])


def test_clahe_layer_refused_under_torch():
    if keras.backend.backend() != "torch":
        assert isinstance(pp.clahe_layer(), keras.layers.Layer)
        return
    with pytest.raises(NotImplementedError, match="torch"):
        pp.clahe_layer()


def test_resize_pad_and_crop(dicom_image):
    wide = dicom_image[100:300, :]  # 200 x 440, a non-square crop of a real radiograph
    padded = pp.resize_batch(wide, 64, "pad")
    cropped = pp.resize_batch(wide, 64, "crop")
    assert padded.shape == cropped.shape == (64, 64)
    assert np.all(padded[:10] == 0) and np.all(padded[-10:] == 0)  # black bands top/bottom
    assert (cropped[:10] > 0).mean() > 0.5
    batch = pp.resize_batch(np.stack([wide, wide]), 32)
    assert batch.shape == (2, 32, 32, 1)
    layer_out = keras.ops.convert_to_numpy(pp.resize_layer(64, "pad")(wide[None, ..., None]))
    assert layer_out.shape == (1, 64, 64, 1) and np.all(layer_out[0, :10] == 0)
    with pytest.raises(ValueError, match="mode"):
        pp.resize_layer(64, "stretch")


@pytest.mark.parametrize("backbone,module", [
    ("densenet121", "densenet"), ("resnet50v2", "resnet_v2"), ("resnet50", "resnet"),
    ("efficientnetv2b0", "efficientnet_v2"), ("convnext_tiny", "convnext"),
])
def test_to_rgb_matches_keras_applications(x, backbone, module):
    import importlib

    expected = importlib.import_module(f"keras.applications.{module}").preprocess_input(
        np.repeat(x[:4], 3, axis=-1) * 255.0)
    out = pp.to_rgb(x[:4], backbone)
    assert out.shape == (4, 28, 28, 3) and out.dtype == np.float32
    assert np.allclose(out, keras.ops.convert_to_numpy(expected), atol=1e-3)
    layer = keras.ops.convert_to_numpy(pp.ToRGB(backbone)(x[:4]))
    assert np.allclose(layer, out, atol=1e-3)


def test_to_rgb_errors_and_unit(x):
    assert np.allclose(pp.to_rgb(x[0, ..., 0])[..., 1], x[0, ..., 0])
    with pytest.raises(ValueError, match="unknown backbone"):
        pp.to_rgb(x, "alexnet")
    with pytest.raises(ValueError, match="divide by 255"):
        pp.to_rgb(x * 255, "densenet121")


def test_model_with_layers_saves_and_reloads(tmp_path, small_data):
    x_train = small_data.x_train[:64]
    inputs = keras.Input((28, 28, 1))
    h = pp.Window(0.5, 0.8)(inputs)
    h = pp.PerImageMinMax()(h)
    a = pp.PerImageStandardize()(h)
    b = pp.XRVScale()(h)
    c = pp.dataset_normalizer(x_train)(h)
    d = pp.ToRGB("densenet121")(h)
    h = keras.layers.Concatenate()([a, b / 1024.0, c, d])
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="out")(h))
    before = model.predict(x_train[:8], verbose=0)
    path = tmp_path / "prep.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert np.allclose(reloaded.predict(x_train[:8], verbose=0), before, atol=1e-5)
    assert {type(layer).__name__ for layer in reloaded.layers} >= {
        "Window", "PerImageMinMax", "PerImageStandardize", "Rescaling", "ToRGB", "Normalization"}
