"""Lesson 5's own code (its ``definition`` cells) agrees with xraykit.models and keeps its claims.

The notebook writes a VGG-style network whose regularizers are switches (``kernel_regularizer``
L1/L2, batch normalization, ``Dropout``, ``SpatialDropout2D``, augmentation layers); the rest of
the lesson trains ``xraykit.models.build_model("vgg_small", ...)``. These tests build both for
several switch settings and check they are the same network: layer types and names in order,
parameter counts, the penalties and their configurations, the same initial weights for one seed,
the same predictions on real radiographs, the same dropout masks in training mode. They also
check the soft-thresholding step and the lesson's claim that L1 under Adam leaves weights near
zero, not at zero; the lesson's inverted dropout against ``keras.layers.Dropout`` at p = 0, 0.5,
0.99 and 1; its conv + batch norm against Keras' layers, and the scale invariance it teaches (same
output for a kernel scaled by c, gradient scaled by 1/c); and that the lesson reads profile fields,
chooses on the selection split and compares paired, without the overlap rule.
"""

import keras
import numpy as np
import pytest

from tests.lesson_code import lesson_definitions
from xraykit.augmentation import augmentation_layers
from xraykit.models import build_model, count_params
from xraykit.runs import weight_stats


@pytest.fixture(scope="module")
def lesson():
    return lesson_definitions("05")


def _pair(lesson, shape, preset=None, **switches):
    def aug():
        return augmentation_layers(preset, seed=5) if preset else None

    ours = lesson.build_vgg(shape, width=4, depth=3, seed=5, augmentation=aug(), **switches)
    theirs = build_model("vgg_small", shape, width=4, depth=3, seed=5, augmentation=aug(),
                         **switches)
    return ours, theirs


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("preset, switches", [
    (None, {}),
    (None, {"l2": 1e-3, "dropout": 0.5}),
    (None, {"l1": 1e-4, "batch_norm": False}),
    (None, {"l1": 1e-5, "l2": 1e-4, "spatial_dropout": 0.2}),
    ("medium", {"dropout": 0.3, "spatial_dropout": 0.1}),
])
def test_build_vgg_is_build_model_vgg_small(lesson, small_data, preset, switches):
    ours, theirs = _pair(lesson, small_data.image_shape, preset, **switches)
    assert [type(layer).__name__ for layer in ours.layers] == \
        [type(layer).__name__ for layer in theirs.layers]
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    assert count_params(ours) == count_params(theirs)
    assert lesson.penalties(ours) == lesson.penalties(theirs)
    expected = {"l1": "L1", "l2": "L2"}
    kinds = {type(layer.kernel_regularizer).__name__ for layer in ours.layers
             if getattr(layer, "kernel_regularizer", None) is not None}
    wanted = [expected[k] for k in ("l1", "l2") if switches.get(k)]
    assert kinds == ({"L1L2"} if len(wanted) == 2 else set(wanted))
    assert len(ours.losses) == len(lesson.penalties(ours))  # every penalty reaches the loss
    # Same seed, same initial weights; same predictions on real radiographs.
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b)
    x = small_data.x_val[:32]
    np.testing.assert_allclose(_numpy(ours(x, training=False)), _numpy(theirs(x, training=False)),
                               rtol=1e-5, atol=1e-6)


def test_dropout_masks_agree_in_training_mode(lesson, small_data):
    ours, theirs = _pair(lesson, small_data.image_shape, dropout=0.5, spatial_dropout=0.3)
    x = small_data.x_val[:16]
    a, b = _numpy(ours(x, training=True)), _numpy(theirs(x, training=True))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # ... and the dropout is really active: training-mode outputs differ from inference mode.
    assert not np.allclose(a, _numpy(ours(x, training=False)), atol=1e-4)


def test_predictions_agree_after_copying_trained_weights(lesson, small_data):
    ours, _ = _pair(lesson, small_data.image_shape, l2=1e-3, dropout=0.2)
    ours.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    ours.fit(small_data.x_train, small_data.y_train, epochs=1, batch_size=32, verbose=0)
    theirs = build_model("vgg_small", small_data.image_shape, width=4, depth=3, seed=9, l2=1e-3,
                         dropout=0.2)
    x = small_data.x_val
    assert not np.allclose(_numpy(ours(x)), _numpy(theirs(x)), atol=1e-3)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(_numpy(ours(x)), _numpy(theirs(x)), rtol=1e-5, atol=1e-6)


def test_kernel_penalty_configs(lesson):
    assert lesson.kernel_penalty() is None
    assert lesson.kernel_penalty(l2=1e-3).get_config() == keras.regularizers.L2(1e-3).get_config()
    assert isinstance(lesson.kernel_penalty(l1=1e-4), keras.regularizers.L1)
    both = lesson.kernel_penalty(l1=1e-4, l2=1e-3)
    assert isinstance(both, keras.regularizers.L1L2)
    assert both.get_config() == pytest.approx({"l1": 1e-4, "l2": 1e-3})


def test_soft_threshold_is_the_l1_proximal_step(lesson):
    rng = np.random.default_rng(0)
    w, t = rng.normal(0, 0.01, 500), 0.005
    z = lesson.soft_threshold(w, t)
    assert np.all(z[np.abs(w) <= t] == 0.0) and np.all(z[np.abs(w) > t] != 0.0)
    np.testing.assert_allclose(np.abs(z[np.abs(w) > t]), np.abs(w[np.abs(w) > t]) - t)
    # It minimises 0.5 (z - w)^2 + t |z| for each weight: no point of a fine grid does better.
    grid = np.linspace(-0.05, 0.05, 20001)
    for wi, zi in zip(w[:20], z[:20]):
        objective = 0.5 * (grid - wi) ** 2 + t * np.abs(grid)
        assert 0.5 * (zi - wi) ** 2 + t * abs(zi) <= objective.min() + 1e-12


def test_l1_under_adam_leaves_weights_near_zero_not_at_zero(lesson, small_data):
    """The lesson's claim: exact zeros need a proximal step (or pruning), not L1 plus Adam."""
    model = lesson.build_vgg(small_data.image_shape, width=4, depth=2, l1=1e-2, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    model.fit(small_data.x_train, small_data.y_train, epochs=3, batch_size=16, verbose=0)
    stats = weight_stats(model, tol=1e-3)
    assert stats["near_zero"] > 0.02  # the L1 pull is visible...
    assert stats["exact_zero"] < 0.2 * stats["near_zero"]  # ...but it lands on 0 rarely
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            layer.kernel.assign(lesson.soft_threshold(_numpy(layer.kernel), 1e-3))
    assert weight_stats(model, tol=1e-3)["exact_zero"] >= stats["near_zero"]


@pytest.mark.parametrize("rate", [0.0, 0.5, 0.99, 1.0])
def test_inverted_dropout_agrees_with_keras_dropout(lesson, small_data, rate):
    """Same kept share and 1/(1-p) scaling as keras.layers.Dropout; the mean kept (p < 1)."""
    x = np.repeat(small_data.x_val[:4].reshape(1, -1), 200, axis=0).astype("float32")
    ours = _numpy(lesson.inverted_dropout(x, rate, seed=3))
    theirs = _numpy(keras.layers.Dropout(rate, seed=3, dtype="float32")(x, training=True))
    for out in (ours, theirs):
        kept = out != 0
        np.testing.assert_allclose(out[kept], x[kept] / (1 - rate), rtol=1e-6)
        if rate == 1.0:  # nothing kept, by both: Keras returns zeros for rate=1
            assert not kept.any()
            continue
        share, n = kept[x != 0].mean(), np.count_nonzero(x)  # binomial: 5 standard errors
        assert abs(share - (1 - rate)) <= 5 * np.sqrt(rate * (1 - rate) / n) + 1e-9
        standard_error = np.sqrt(rate / (1 - rate) * np.mean(x**2) / x.size)
        assert abs(out.mean() - x.mean()) <= 5 * standard_error + 1e-6
    if rate == 0.0:
        np.testing.assert_array_equal(ours, x)
    if 0 < rate < 1:  # a different draw gives a different mask: the mask is random
        assert not np.array_equal(ours != 0, _numpy(lesson.inverted_dropout(x, rate, seed=4)) != 0)


def test_conv_then_batch_norm_is_keras_and_ignores_the_kernel_scale(lesson, small_data):
    """The lesson's claims: BN output unchanged when the kernel is scaled by c, gradient by 1/c."""
    from xraykit.autodiff import value_and_grad

    x = small_data.x_train[:16].astype("float32")
    kernel = _numpy(keras.initializers.HeNormal(seed=1)((3, 3, 1, 4)))
    conv = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, dtype="float32")
    norm = keras.layers.BatchNormalization(dtype="float32")
    conv.build(x.shape)
    conv.kernel.assign(kernel)
    np.testing.assert_allclose(_numpy(norm(conv(x), training=True)),
                               _numpy(lesson.conv_then_batch_norm(x, kernel)), atol=1e-4)
    target = np.random.default_rng(0).normal(size=(*x.shape[:3], 4)).astype("float32")

    def loss(k, x, target):
        return keras.ops.mean((lesson.conv_then_batch_norm(x, k, epsilon=1e-9) - target) ** 2)

    value, grad = value_and_grad(loss, kernel, x, target)
    for c in (0.3, 3.0):
        scaled_value, scaled_grad = value_and_grad(loss, (c * kernel).astype("float32"), x, target)
        assert scaled_value == pytest.approx(value, rel=1e-4)
        np.testing.assert_allclose(scaled_grad * c, grad, rtol=1e-2, atol=1e-6)
    # Without the normalization the scale matters: the check can fail.
    plain = keras.ops.conv(x, 2.0 * kernel, padding="same")
    assert not np.allclose(_numpy(plain), _numpy(keras.ops.conv(x, kernel, padding="same")))


def _code_cells():
    import json

    from xraykit import course

    cells = json.loads(course.find_notebooks(only=["05"])[0].read_text(encoding="utf-8"))["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


def test_the_lesson_reads_profile_fields_compares_paired_and_uses_runs():
    import re

    code = "\n".join(_code_cells())
    pattern = re.compile(r"profile\.name\s*(==|!=|in\b)|\[profile\.name\]")
    assert [line for line in code.splitlines() if pattern.search(line)] == []
    assert "regularization" not in code  # the module is xraykit.runs now
    assert 'split="selection"' in code
    assert "paired_bootstrap_ci" in code
    assert '["high"] >=' not in code  # the overlap rule is gone
