"""Lesson 1's own code (its ``definition`` cells) against the xraykit helpers it teaches."""

import keras
import numpy as np
import pytest
from keras import ops
from lesson_code import lesson_definitions

from xraykit import augmentation as aug
from xraykit import evaluation, synthetic
from xraykit import preprocessing as pp


@pytest.fixture(scope="module")
def lesson():
    return lesson_definitions("01")


def _np(x):
    return ops.convert_to_numpy(x)


def test_normalizations_equal_xraykit_on_real_radiographs(lesson, pneumonia):
    x_train = pneumonia.x_train[:512]
    batch = pneumonia.x_val[:64]
    for ours, numpy_fn, layer in [(lesson.minmax, pp.minmax, pp.PerImageMinMax()),
                                  (lesson.zscore, pp.zscore, pp.PerImageStandardize())]:
        np.testing.assert_allclose(_np(ours(batch)), numpy_fn(batch), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(_np(ours(batch)), _np(layer(batch)), rtol=1e-4, atol=1e-4)
    mean, std = lesson.dataset_mean_std(x_train)
    assert (mean, std) == pytest.approx(pp.dataset_stats(x_train), rel=1e-4)
    np.testing.assert_allclose(_np(lesson.dataset_normalize(batch, mean, std)),
                               _np(pp.dataset_normalizer(x_train)(batch)), rtol=1e-4, atol=1e-4)


def test_normalizations_can_fail(lesson, six_images):
    # A different normalization must not pass the comparison above.
    assert not np.allclose(_np(lesson.zscore(six_images)), pp.minmax(six_images), atol=1e-4)
    constant = np.full((2, 28, 28, 1), 0.25, np.float32)  # exact in float32: mean - x == 0
    np.testing.assert_allclose(_np(lesson.minmax(constant)), pp.minmax(constant), atol=1e-6)
    np.testing.assert_allclose(_np(lesson.zscore(constant)), pp.zscore(constant), atol=1e-6)


@pytest.mark.parametrize("preset", ["light", "medium"])
def test_augmentation_matches_the_preset(lesson, preset, six_images):
    # The lesson writes the three keras.layers; the preset's unfused form is the same pipeline.
    ours = lesson.xray_augmentation(**aug.PRESETS[preset], seed=5)
    theirs = aug.augmentation_layers(preset, seed=5, fused=False)
    assert lesson.layer_specs(ours) == lesson.layer_specs(theirs)
    np.testing.assert_allclose(_np(ours(six_images, training=True)),
                               _np(theirs(six_images, training=True)), atol=1e-6)
    other = aug.augmentation_layers(preset, seed=5, strength=1.5, fused=False)
    assert lesson.layer_specs(ours) != lesson.layer_specs(other)
    # The default preset fuses the three into one RandomAffine; every later layer is unchanged.
    fused = lesson.layer_specs(aug.augmentation_layers(preset, seed=5))
    assert fused[0][0] == "RandomAffine" and fused[1:] == lesson.layer_specs(ours)[3:]


def test_augmentation_defaults_are_the_medium_magnitudes_without_noise(lesson):
    specs = lesson.layer_specs(lesson.xray_augmentation(seed=0))
    medium = lesson.layer_specs(aug.augmentation_layers("medium", seed=0, fused=False))
    assert [name for name, _ in specs] == [n for n, _ in medium if n != "GaussianNoise"]
    assert specs[:5] == medium[:5]


def test_small_cnn_with_augmentation_inside(lesson, six_images):
    model = lesson.small_cnn((28, 28, 1), augmentation=lesson.xray_augmentation(seed=0), seed=0)
    assert isinstance(model.layers[0], keras.layers.Pipeline)
    scores = _np(model(six_images, training=False))
    assert scores.shape == (6, 1) and np.all((scores >= 0) & (scores <= 1))
    # augmentation is off at inference: the same as the model without its first layer
    rest = keras.Sequential(model.layers[1:])
    np.testing.assert_allclose(scores, _np(rest(six_images)), atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="the lesson's tf.data pipeline is run under the tensorflow backend")
def test_tf_data_pipeline_augments_batches(lesson, small_data):
    x, y = small_data.x_train[:40], small_data.y_train[:40]
    batches = list(lesson.augmented_batches(x, y, lesson.xray_augmentation(seed=0), batch_size=16))
    assert [len(b[1]) for b in batches] == [16, 16, 8]
    images = np.concatenate([np.asarray(b[0]) for b in batches])
    assert images.min() >= 0 and images.max() <= 1 and images.shape == x.shape
    assert not np.allclose(np.sort(images.ravel()), np.sort(x.ravel()))


def test_tta_shift_equals_predict_scores(lesson, small_data):
    model = lesson.small_cnn((28, 28, 1), seed=0)
    x = small_data.x_val[:20]
    tta = lesson.tta_shift(model, x)
    np.testing.assert_allclose(tta, evaluation.predict_scores(model, x, tta=["shift"]), atol=1e-5)
    assert not np.allclose(tta, evaluation.predict_scores(model, x), atol=1e-7)
    random_views = lesson.tta_random(model, x, aug.augmentation_layers("light", seed=0), n_views=2)
    assert random_views.shape == (20,)


def test_splits_keep_patients_apart_only_when_split_by_patient(lesson):
    _, y, ids, _ = synthetic.patient_phantoms(30, 6, seed=1)
    train, val = lesson.split_by_patient(y, ids, seed=0)
    assert len(np.intersect1d(ids[train], ids[val])) == 0
    assert len(train) + len(val) == len(y)
    train, val = lesson.split_by_image(y, seed=0)
    assert len(np.intersect1d(ids[train], ids[val])) > 0
    assert abs(y[val].mean() - y.mean()) < 0.05  # stratified


def test_occlusion_map_finds_what_the_model_reads(lesson):
    # A "model" that only reads the top-left corner: occluding it is the only thing that matters.
    inputs = keras.Input((28, 28, 1))
    corner = keras.layers.Cropping2D(((0, 20), (0, 20)))(inputs)
    score = keras.layers.Dense(1, activation="sigmoid", kernel_initializer="ones")(
        keras.layers.GlobalAveragePooling2D()(corner))
    model = keras.Model(inputs, score)
    images = np.ones((2, 28, 28, 1), np.float32)
    heat = lesson.occlusion_map(model, images)
    assert heat.shape == (2, 28, 28)
    assert heat[:, :8, :8].mean() > 0 and np.allclose(heat[:, 20:, 20:], 0.0, atol=1e-6)


def test_paired_splits_share_one_validation_set_and_differ_only_by_the_leak(lesson):
    _, y, ids, _ = synthetic.patient_phantoms(40, 12, seed=3)
    train_sets, val = lesson.paired_splits(y, ids, seed=0)
    clean, leaky = train_sets["patient-level"], train_sets["image-level"]
    assert len(clean) == len(leaky)  # the same amount of training data
    for train in (clean, leaky):
        assert len(np.intersect1d(train, val)) == 0  # no validation image is trained on
    assert len(np.intersect1d(ids[clean], ids[val])) == 0
    val_patients = np.unique(ids[val])
    assert set(np.unique(ids[leaky])) >= set(val_patients)  # every validation patient leaks
    # the leak is half of each validation patient's images; the rest of "image-level" is clean
    leaked = leaky[np.isin(ids[leaky], val_patients)]
    assert len(leaked) == len(val) and set(leaky) - set(leaked) <= set(clean)
    # the same seed gives the same sets; another seed another split
    again, val_again = lesson.paired_splits(y, ids, seed=0)
    np.testing.assert_array_equal(val, val_again)
    np.testing.assert_array_equal(leaky, again["image-level"])
    assert not np.array_equal(val, lesson.paired_splits(y, ids, seed=1)[1])


@pytest.mark.parametrize("size", [28, 64])
def test_burn_marker_writes_the_letter_into_the_chosen_images_only(lesson, size):
    rng = np.random.default_rng(0)
    images = rng.uniform(0.2, 0.8, (6, size, size, 1)).astype(np.float32)
    where = np.array([True, False, True, False, False, True])
    original = images.copy()
    out = lesson.burn_marker(images, where)
    assert out.dtype == images.dtype and out.shape == images.shape
    np.testing.assert_array_equal(images, original)  # a copy: the input is left as it was
    rows, cols = lesson.marker_box(size)
    inside = np.zeros((size, size), bool)
    inside[rows, cols] = True
    np.testing.assert_array_equal(out[~where], images[~where])  # unmarked images unchanged
    np.testing.assert_array_equal(out[where][:, ~inside], images[where][:, ~inside])
    scale = size // 28
    for marked in out[where, rows, cols, 0]:
        assert set(np.unique(marked)) == {0.0, 1.0}  # a black box and a white letter
        assert marked.sum() == lesson.LETTER_L.sum() * scale**2
        letter = marked[scale:-scale, scale:-scale]
        np.testing.assert_array_equal(letter[::scale, ::scale], lesson.LETTER_L)
    assert cols.stop <= size and rows.start >= 1  # inside the image, in the top-right corner
    assert cols.start > size // 2 and rows.stop < size // 2


def test_draw_markers_follows_the_rates_per_class(lesson):
    y = np.r_[np.zeros(4000), np.ones(4000)].astype(np.int32)[:, None]
    where = lesson.draw_markers(y, (0.05, 0.95), seed=0)
    assert abs(where[:4000].mean() - 0.05) < 0.02 and abs(where[4000:].mean() - 0.95) < 0.02
    np.testing.assert_array_equal(where, lesson.draw_markers(y, (0.05, 0.95), seed=0))
    assert not lesson.draw_markers(y, (0.0, 0.0), seed=0).any()


def test_small_cnn_predicts_float32_under_a_mixed_policy(lesson, six_images):
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = lesson.small_cnn((28, 28, 1), seed=0)
        assert model.layers[-1].compute_dtype == "float32"
        scores = lesson.predict(model, six_images)
    finally:
        keras.config.set_dtype_policy(policy)
    assert scores.dtype == np.float32 and scores.shape == (6,)


def test_occlusion_map_covers_every_pixel_when_the_stride_does_not_fit(lesson):
    score = keras.layers.Dense(1, activation="sigmoid", kernel_initializer="ones")
    model = keras.Sequential([keras.Input((64, 64, 1)), keras.layers.GlobalAveragePooling2D(),
                              score])
    images = np.full((1, 64, 64, 1), 0.5, np.float32)
    heat = lesson.occlusion_map(model, images, patch=16, stride=7)  # 0, 7, ... 42: 48 is added
    assert np.isfinite(heat).all() and (heat > 0).all()
