"""xraykit.augmentation: presets, determinism, use inside fit and in the input pipeline."""

import keras
import numpy as np
import pytest

from xraykit import augmentation as aug


@pytest.fixture(scope="module")
def batch(small_data):
    return small_data.x_train[:16]


def _tiny_model(augmentation=None):
    inputs = keras.Input((28, 28, 1))
    h = augmentation(inputs) if augmentation is not None else inputs
    h = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(h))
    model.compile("adam", "binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
    return model


def test_presets_shapes_ranges_and_strength_order(batch):
    diffs = {}
    for preset in aug.PRESETS:
        out = aug.augment_numpy(batch, preset, seed=3)
        assert out.shape == batch.shape and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0
        diffs[preset] = float(np.abs(out - batch).mean())
    assert diffs["none"] == 0.0
    assert 0 < diffs["light"] < diffs["medium"] < diffs["heavy"]
    assert np.array_equal(aug.augment_numpy(batch, "heavy", strength=0.0), batch)
    assert float(np.abs(aug.augment_numpy(batch, "light", seed=3, strength=3.0) - batch).mean()) \
        > diffs["light"]


def test_seeded_and_deterministic(batch):
    a = aug.augment_numpy(batch, "medium", seed=7)
    b = aug.augment_numpy(batch, "medium", seed=7)
    c = aug.augment_numpy(batch, "medium", seed=8)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_xray_safe_defaults():
    for preset in aug.PRESETS:
        names = [type(layer).__name__ for layer in aug.augmentation_layers(preset).layers]
        assert "RandomFlip" not in names and "RandAugment" not in names
        assert "Identity" in names if preset == "none" else "ReLU" in names  # clips to [0, 1]
    flip = [layer for layer in aug.augmentation_layers("light", horizontal_flip=True).layers
            if isinstance(layer, keras.layers.RandomFlip)]
    assert len(flip) == 1 and flip[0].mode == "horizontal"
    geometry = aug.augmentation_layers("heavy").layers[0]
    assert isinstance(geometry, aug.RandomAffine) and geometry.fill_mode == "constant"
    assert geometry.rotation_factor * 360 == pytest.approx(15.0)
    rot = aug.augmentation_layers("heavy", fused=False).layers[0]
    assert isinstance(rot, keras.layers.RandomRotation)
    assert max(abs(f) for f in np.ravel(rot.factor)) * 360 <= 15.0 + 1e-6
    with pytest.raises(ValueError, match="unknown augmentation preset"):
        aug.augmentation_layers("extreme")
    with pytest.raises(ValueError, match="strength"):
        aug.augmentation_layers("light", strength=-1)
    rows = aug.describe_presets()
    assert [r["preset"] for r in rows] == list(aug.PRESETS) and rows[0]["rotation"] == 0.0


def _specs(layers):
    return [(type(layer).__name__, {k: v for k, v in layer.get_config().items() if k != "name"})
            for layer in layers]


@pytest.mark.parametrize("flip", [False, True])
def test_fused_geometry_replaces_the_three_layers_and_keeps_every_other_draw(flip):
    """One RandomAffine with the seeds and factors of the three layers; the rest unchanged."""
    for preset in ("light", "medium", "heavy"):
        fused = aug.augmentation_layers(preset, seed=4, strength=1.5, horizontal_flip=flip).layers
        three = aug.augmentation_layers(preset, seed=4, strength=1.5, horizontal_flip=flip,
                                        fused=False).layers
        start = int(flip)
        assert _specs(fused[:start]) == _specs(three[:start])
        rotation, translation, zoom = three[start:start + 3]
        assert [type(layer).__name__ for layer in (rotation, translation, zoom)] == \
            ["RandomRotation", "RandomTranslation", "RandomZoom"]
        geometry = fused[start]
        # RandomAffine(seed=s) draws what these draw with seeds s, s + 1, s + 2 (test_affine.py)
        assert (rotation.seed, translation.seed, zoom.seed) == tuple(geometry.seed + i
                                                                      for i in range(3))
        assert (geometry.rotation_factor, geometry.translation_factor, geometry.zoom_factor) == \
            pytest.approx((rotation.factor[1], translation.height_factor, zoom.height_factor[1]))
        assert _specs(fused[start + 1:]) == _specs(three[start + 3:])


def test_saved_and_reloaded_with_model(tmp_path, small_data):
    model = _tiny_model(aug.augmentation_layers("heavy", seed=0))
    x = small_data.x_train
    pred = model.predict(x[:8], verbose=0)
    # inference does not augment: two predictions are identical
    assert np.array_equal(pred, model.predict(x[:8], verbose=0))
    path = tmp_path / "aug.keras"
    model.save(path)
    # compile=False: the model was never trained, so there is no optimizer state to restore.
    reloaded = keras.saving.load_model(path, compile=False)
    assert np.allclose(reloaded.predict(x[:8], verbose=0), pred, atol=1e-6)


def test_augmented_dataset_in_fit(small_data):
    x, y = small_data.x_train, small_data.y_train
    ds = aug.augmented_dataset(x, y, "light", batch_size=64, seed=0)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        assert isinstance(ds, tf.data.Dataset)
        xb, yb = next(iter(ds))
        xb, yb = xb.numpy(), yb.numpy()
    else:
        assert isinstance(ds, keras.utils.PyDataset) and len(ds) == 4
        xb, yb = ds[0]
    assert xb.shape == (64, 28, 28, 1) and yb.shape == (64, 1)
    assert 0.0 <= xb.min() and xb.max() <= 1.0
    py = aug.augmented_dataset(x[:32], y[:32], "none", batch_size=16, backend="pydataset",
                               shuffle=False)
    assert np.array_equal(py[1][0], x[16:32])
    if keras.backend.backend() != "tensorflow":
        with pytest.raises(ValueError, match="pydataset"):
            aug.augmented_dataset(x, y, backend="tensorflow")
    with pytest.raises(ValueError, match="differ in length"):
        aug.augmented_dataset(x, y[:10])


def test_mixup_and_cutmix(small_data):
    labels = small_data.y_train[:, 0]
    idx = np.concatenate([np.flatnonzero(labels == 0)[:8], np.flatnonzero(labels == 1)[:8]])
    batch, y = small_data.x_train[idx], small_data.y_train[idx]
    mixed, soft = aug.mixup(batch, y, alpha=0.4, seed=1)
    assert mixed.shape == batch.shape and soft.shape == (16, 1)
    assert 0 <= soft.min() and soft.max() <= 1 and np.any((soft > 0) & (soft < 1))
    assert mixed.min() >= batch.min() - 1e-6 and mixed.max() <= batch.max() + 1e-6
    cut, soft_c = aug.cutmix(batch, y, seed=1)
    assert cut.shape == batch.shape and 0 <= soft_c.min() and soft_c.max() <= 1
    # CutMix pastes pixels: every output pixel comes from some input image at that position
    same = np.isclose(cut[:, None], batch[None]).any(axis=1)
    assert same.all()


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixup_and_cutmix_under_a_mixed_policy(small_data, policy):
    """The gpu profiles set a mixed policy globally; NumPy in, float32 NumPy out still."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        for mix in (aug.mixup, aug.cutmix):
            mixed, soft = mix(small_data.x_train[:6], small_data.y_train[:6], seed=0)
            assert mixed.dtype == soft.dtype == np.float32 and soft.shape == (6, 1)
    finally:
        keras.config.set_dtype_policy(before)


def test_optional_gridmask_and_migration_table():
    layer, reason = aug.gridmask_layer()
    assert (layer is None) == bool(reason)
    if layer is None:
        assert reason.startswith("GridMask skipped") and "\n" not in reason
    assert all(k.startswith("keras_cv.") for k in aug.KERAS_CV_MIGRATION)
    assert aug.KERAS_CV_MIGRATION["keras_cv.layers.RandAugment"] == "keras.layers.RandAugment"
    assert isinstance(aug.randaugment(seed=0), keras.layers.RandAugment)


def test_augmentation_inside_fit_and_in_pipeline(small_data):
    """fit() with the augmentation inside the model and in the input pipeline (both backends)."""
    x, y = small_data.x_train[:32], small_data.y_train[:32]
    rows = aug.augmentation_cost(_tiny_model, x, y, "medium", batch_size=32, epochs=2)
    expected = "Dataset" if keras.backend.backend() == "tensorflow" else "PyDataset"
    assert rows[2]["data"].endswith(expected) and rows[1]["data"] == "ndarray"
    assert [r["where"].split(":")[-1].strip() for r in rows] == [
        "no augmentation", "inside the model", "in the input pipeline"]
    assert all(r["seconds_per_epoch"] > 0 and r["images_per_second"] > 0 for r in rows)
