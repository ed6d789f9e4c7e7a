"""Lesson 5's own code (its ``definition`` cells) agrees with xraykit.models and keeps its claims.

The notebook writes a VGG-style network whose regularizers are switches (``kernel_regularizer``
L1/L2, batch normalization, ``Dropout``, ``SpatialDropout2D``, augmentation layers); the rest of
the lesson trains ``xraykit.models.build_model("vgg_small", ...)``. These tests build both for
several switch settings and check they are the same network: layer types and names in order,
parameter counts, the penalties and their configurations, the same initial weights for one seed,
the same predictions on real radiographs, the same dropout masks in training mode. They also
check the soft-thresholding step and the lesson's claim that L1 under Adam leaves weights near
zero, not at zero.
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
