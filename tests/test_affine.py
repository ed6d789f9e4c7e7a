"""xraykit.affine.RandomAffine: one resampling, drawn and composed as the three Keras layers."""

import keras
import numpy as np
import pytest
from keras import ops
from scipy.stats import ks_2samp

from xraykit.affine import RandomAffine, affine_matrix

LIGHT = (5 / 360, 0.05, 0.05)  # the "light" preset: rotation (fraction of a turn), shift, zoom
HEAVY = (15 / 360, 0.10, 0.15)  # the "heavy" preset


def _np(x):
    return ops.convert_to_numpy(x)


def _three_layers(rotation, translation, zoom, seed, fill_mode="constant",
                  interpolation="bilinear"):
    """The presets' geometry before fusion, with the seeds RandomAffine(seed=seed) uses."""
    kw = {"fill_mode": fill_mode, "interpolation": interpolation, "fill_value": 0.0}
    return keras.layers.Pipeline([
        keras.layers.RandomRotation(rotation, seed=seed, **kw),
        keras.layers.RandomTranslation(translation, translation, seed=seed + 1, **kw),
        keras.layers.RandomZoom((-zoom, zoom), seed=seed + 2, **kw),
    ])


def test_zero_factors_and_inference_leave_images_unchanged(pneumonia):
    x = pneumonia.x_val[:16]
    np.testing.assert_allclose(_np(RandomAffine(seed=0)(x)), x, atol=1e-6)
    layer = RandomAffine(*HEAVY, seed=0)
    assert np.array_equal(_np(layer(x, training=False)), x)
    model = keras.Sequential([keras.Input(x.shape[1:]), layer])
    assert np.array_equal(_np(model(x, training=False)), x)  # a model at inference: no draw
    assert not np.allclose(_np(layer(x)), x, atol=1e-3)  # called on its own it augments
    one = _np(RandomAffine(*HEAVY, seed=0)(x[0]))  # a single (H, W, C) image
    assert one.shape == x[0].shape
    np.testing.assert_allclose(one, _np(RandomAffine(*HEAVY, seed=0)(x[:1]))[0], atol=1e-6)


@pytest.mark.parametrize("part, fill_mode, interpolation", [
    ("rotation", "constant", "bilinear"), ("translation", "constant", "bilinear"),
    ("zoom", "constant", "bilinear"), ("rotation", "reflect", "bilinear"),
    ("translation", "nearest", "nearest"), ("zoom", "wrap", "bilinear"),
])
def test_each_part_alone_equals_its_keras_layer(pneumonia, part, fill_mode, interpolation):
    """Same seed, same draw, same resampling: sign, units and fill of each part are Keras'."""
    x = pneumonia.x_train[:32]
    kw = {"fill_mode": fill_mode, "interpolation": interpolation}
    rotation, translation, zoom = HEAVY
    ours, theirs = {
        "rotation": (RandomAffine(rotation_factor=rotation, seed=3, **kw),
                     keras.layers.RandomRotation(rotation, seed=3, **kw)),
        "translation": (RandomAffine(translation_factor=translation, seed=3, **kw),
                        keras.layers.RandomTranslation(translation, translation, seed=4, **kw)),
        "zoom": (RandomAffine(zoom_factor=zoom, seed=3, **kw),
                 keras.layers.RandomZoom((-zoom, zoom), seed=5, **kw)),
    }[part]
    expected = _np(theirs(x))
    assert not np.allclose(expected, x, atol=1e-3)
    np.testing.assert_allclose(_np(ours(x)), expected, atol=1e-4)


def _coordinate_images(n, height, width):
    """Channels: column, row and 1 — bilinear resampling reproduces them exactly inside."""
    rows, cols = np.mgrid[:height, :width].astype(np.float32)
    image = np.stack([cols, rows, np.ones_like(rows)], axis=-1)
    return np.repeat(image[None], n, axis=0)


def test_composition_is_rotation_then_translation_then_zoom():
    """Where each output pixel samples from: the same point as after the three Keras layers.

    Resampling images whose values are their own coordinates shows, per output pixel, which
    input point it took; wherever no step filled it (third channel 1), the three layers in a
    row and the one matrix must have taken the same point. A wrong order, sign or axis moves it.
    """
    x = _coordinate_images(16, 24, 32)  # not square: height and width must not be swapped
    for seed in (0, 7):
        fused = _np(RandomAffine(*HEAVY, seed=seed)(x))
        chained = _np(_three_layers(*HEAVY, seed=seed)(x))
        inside = (np.abs(fused[..., 2] - 1) < 1e-4) & (np.abs(chained[..., 2] - 1) < 1e-4)
        assert inside.mean() > 0.5
        np.testing.assert_allclose(fused[..., :2][inside], chained[..., :2][inside], atol=1e-2)


def test_a_bright_pixel_lands_where_the_matrix_says():
    """90° counter-clockwise, then 5 px right and down, then twice as large, about the centre."""
    x = np.zeros((1, 25, 25, 1), np.float32)
    x[0, 12, 16] = 1.0  # 4 px right of the centre (12, 12)
    # Degenerate ranges fix the draw: a quarter turn, a shift of 0.2 * 25 = 5 px, zoom 1 - 0.5.
    layer = RandomAffine((0.25, 0.25), (0.2, 0.2), (-0.5, -0.5), seed=0)
    out = _np(layer(x))[0, ..., 0]
    # Rotated: 4 px above the centre; shifted: (+5, +1); zoomed in twice: (+10, +2) → (14, 22).
    assert np.unravel_index(np.argmax(out), out.shape) == (14, 22)
    assert out[14, 22] == pytest.approx(1.0, abs=1e-5)
    matrix = _np(affine_matrix([np.pi / 2], [5.0], [5.0], [0.5], 25, 25))[0]
    np.testing.assert_allclose(matrix @ [22, 14, 1], [16, 12, 1], atol=1e-5)  # output → input
    drawn = layer.get_random_transformation(x)
    np.testing.assert_allclose(_np(drawn["transform"])[0], matrix.ravel()[:8], atol=1e-5)


def _moments(images):
    """Per image: total intensity, centroid (x, y) and principal-axis angle (radians)."""
    im = images[..., 0].astype(np.float64)
    rows, cols = np.mgrid[:im.shape[1], :im.shape[2]]
    mass = im.sum(axis=(1, 2))
    cx, cy = (im * cols).sum(axis=(1, 2)) / mass, (im * rows).sum(axis=(1, 2)) / mass
    dx, dy = cols - cx[:, None, None], rows - cy[:, None, None]
    mu20, mu02, mu11 = ((im * d).sum(axis=(1, 2)) / mass for d in (dx * dx, dy * dy, dx * dy))
    return mass, cx, cy, 0.5 * np.arctan2(2 * mu11, mu20 - mu02)


def _geometry_statistics(before, after):
    """Statistics that each follow one drawn parameter and not the interpolation's blur."""
    m0, x0, y0, a0 = _moments(before)
    m1, x1, y1, a1 = _moments(after)
    return {"intensity ratio (zoom)": m1 / m0, "centroid shift x": x1 - x0,
            "centroid shift y": y1 - y0,
            "principal-axis turn (rotation)": (a1 - a0 + np.pi / 2) % np.pi - np.pi / 2}


def test_draws_follow_the_three_layers_distributions_on_radiographs(pneumonia):
    """Two-sample KS tests, fused vs three layers, independent seeds and images.

    The radiographs sit in a black margin, so nothing leaves the frame: then the intensity
    ratio follows the zoom (1 / z²), the centroid shift the translation and the principal axis
    the rotation, and none of them depends on how often the image was resampled (three bilinear
    passes blur more; the blur changes neither totals nor centroids nor, being nearly
    isotropic, the axis). A wrong range, unit or distribution of any part fails (p < 1e-6 for
    1.5 times any factor with these sizes).
    """
    n = 600
    x = np.pad(pneumonia.x_train[:2 * n], ((0, 0), (14, 14), (14, 14), (0, 0)))
    for factors in (LIGHT, HEAVY):
        fused = _geometry_statistics(x[:n], _np(RandomAffine(*factors, seed=1)(x[:n])))
        chained = _geometry_statistics(x[n:], _np(_three_layers(*factors, seed=101)(x[n:])))
        for name in fused:
            assert np.std(fused[name]) > 0
            p = ks_2samp(fused[name], chained[name]).pvalue
            assert p > 1e-3, f"{name} at factors {factors}: KS p = {p:.2g}"


def test_one_resampling_keeps_what_the_three_lose(pneumonia):
    """Same draws, the radiographs as they are: the two agree inside the image.

    At the edges the three layers lose what an earlier step pushed out of the frame; the fused
    layer does not (its output is never darker on average).
    """
    x = pneumonia.x_train[:128]
    for factors in (LIGHT, HEAVY):
        fused = _np(RandomAffine(*factors, seed=0)(x))
        chained = _np(_three_layers(*factors, seed=0)(x))
        assert np.abs(fused - chained)[:, 6:22, 6:22].mean() < 0.02
        kept = fused.mean(axis=(1, 2, 3)) - chained.mean(axis=(1, 2, 3))
        assert kept.mean() > 0 and (kept > -1e-4).mean() > 0.95


def test_seeded_and_serializable(pneumonia):
    x = pneumonia.x_val[:8]
    layer = RandomAffine(*LIGHT, fill_mode="reflect", interpolation="nearest", fill_value=0.2,
                         seed=11, name="geometry")
    first, second = _np(layer(x)), _np(layer(x))
    assert not np.allclose(first, second)  # a new draw per call
    config = layer.get_config()
    assert config["seed"] == 11 and config["fill_mode"] == "reflect"
    clone = RandomAffine.from_config(config)
    assert clone.get_config() == config
    np.testing.assert_allclose(_np(clone(x)), first, atol=1e-6)  # same seed, same first draw
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is RandomAffine and restored.get_config() == config
    assert keras.saving.get_registered_name(RandomAffine) == "xraykit>RandomAffine"
    for bad in ({"rotation_factor": 1.5}, {"zoom_factor": (-1.0, 0.2)},
                {"translation_factor": "0.1"}, {"fill_mode": "mirror"},
                {"interpolation": "bicubic"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            RandomAffine(**bad)


def test_channels_first_is_the_same_transform(pneumonia):
    x = pneumonia.x_val[:4]
    last = _np(RandomAffine(*HEAVY, seed=2)(x))
    first = _np(RandomAffine(*HEAVY, seed=2, data_format="channels_first")(
        np.transpose(x, (0, 3, 1, 2))))
    np.testing.assert_allclose(np.transpose(first, (0, 2, 3, 1)), last, atol=1e-5)


def test_trains_inside_a_model_and_keeps_jax_compiled(small_data):
    """Fits inside a model; under JAX the training step stays compiled.

    Keras' three geometric layers switch jit_compile off (supports_jit = False); this one does
    not under JAX. TensorFlow's XLA has no kernel for its resampling op, so there it does too.
    """
    def model(*augmentation):
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((28, 28, 1)), *augmentation,
                              keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(1, activation="sigmoid")])
        m.compile("adam", "binary_crossentropy")
        return m

    fused = model(RandomAffine(*LIGHT, seed=0))
    history = fused.fit(small_data.x_train[:64], small_data.y_train[:64], batch_size=32,
                        epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    if keras.backend.backend() == "jax":
        assert fused.jit_compile
        assert not model(*_three_layers(*LIGHT, seed=0).layers).jit_compile
    elif keras.backend.backend() == "tensorflow":
        assert not RandomAffine().supports_jit
    else:  # torch: Keras does not compile torch steps by default, whatever the layers declare
        assert not fused.jit_compile


def test_in_a_tf_data_pipeline(small_data):
    tf = pytest.importorskip("tensorflow")
    x = small_data.x_train[:32]
    ds = tf.data.Dataset.from_tensor_slices(x).batch(16)
    layer = RandomAffine(*HEAVY, seed=0)
    if keras.backend.backend() != "tensorflow":
        with pytest.raises(ValueError, match="KERAS_BACKEND=tensorflow"):
            next(iter(ds.map(layer)))
        return
    batches = [b.numpy() for b in ds.map(lambda b: layer(b, training=True))]
    out = np.concatenate(batches)
    assert out.shape == x.shape and not np.allclose(out, x, atol=1e-3)
