"""Lesson 3's own code (its ``definition`` cells) agrees with Keras and with xraykit.losses.

The notebook writes binary cross-entropy (from probabilities and from logits), weighted BCE,
focal loss, a masked multi-label loss, the prior log-odds and a CNN with a logits head in plain
``keras.ops`` / ``keras.layers``. These tests call them on real PneumoniaMNIST labels and on
logits of a CNN for real radiographs, and check them against ``keras.losses`` and the xraykit
versions the rest of the course uses (``get_loss``, ``prior_logit``, ``build_model``).
"""


import keras
import numpy as np
import pytest
from keras import ops

from tests.lesson_code import lesson_definitions
from xraykit import losses
from xraykit.autodiff import value_and_grad
from xraykit.models import build_model

LESSON = "03"


@pytest.fixture(scope="module")
def lesson():
    return lesson_definitions(LESSON)


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), np.float64)


def _logits(model, x):
    return _np(keras.Model(model.input, model.get_layer("logits").output)(x))


@pytest.fixture(scope="module")
def labels_and_logits(small_data):
    """Validation labels and logits of an untrained CNN for those radiographs, spread to +-10."""
    model = build_model("small_cnn", small_data.image_shape, width=4, depth=2, batch_norm=False,
                        seed=1)
    z = _logits(model, small_data.x_val)
    z = (4 * (z - z.mean()) / z.std()).astype(np.float32)
    return small_data.y_val.astype(np.float32), z


def test_bce_matches_keras_from_probabilities_and_logits(lesson, labels_and_logits):
    y, z = labels_and_logits
    p = _np(ops.sigmoid(z)).astype(np.float32)
    np.testing.assert_allclose(_np(lesson.bce(y, p)), _np(keras.losses.binary_crossentropy(y, p)),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(lesson.bce(y, z, from_logits=True)),
                               _np(keras.losses.binary_crossentropy(y, z, from_logits=True)),
                               rtol=1e-5, atol=1e-6)
    # Several labels per example: the mean over the last axis, as Keras.
    y2, z2 = y.reshape(-1, 2), z.reshape(-1, 2)
    np.testing.assert_allclose(_np(lesson.bce(y2, z2, from_logits=True)),
                               _np(keras.losses.binary_crossentropy(y2, z2, from_logits=True)),
                               rtol=1e-5, atol=1e-6)
    # And xraykit's weighted BCE with unit weights.
    np.testing.assert_allclose(
        _np(ops.mean(lesson.bce(y, z, from_logits=True))),
        _np(losses.WeightedBinaryCrossentropy(from_logits=True)(y, z)), rtol=1e-5)


def test_saturated_sigmoid_clips_the_loss_and_kills_its_gradient(lesson):
    z = np.array([[0.0], [40.0], [100.0]], np.float32)
    y = np.zeros_like(z)
    p = _np(ops.sigmoid(z)).astype(np.float32)
    assert p[1, 0] == p[2, 0] == 1.0
    from_p = _np(lesson.bce(y, p))
    assert from_p[1] == from_p[2] == pytest.approx(-np.log(keras.config.epsilon()), rel=0.02)
    np.testing.assert_allclose(_np(lesson.bce(y, z, from_logits=True)), [np.log(2), 40, 100],
                               rtol=1e-6)
    _, grad_p = value_and_grad(lambda t: ops.sum(lesson.bce(y, ops.sigmoid(t))), z)
    _, grad_z = value_and_grad(lambda t: ops.sum(lesson.bce(y, t, from_logits=True)), z)
    np.testing.assert_array_equal(grad_p[1:], 0.0)
    np.testing.assert_allclose(grad_z[:, 0], [0.5, 1.0, 1.0], rtol=1e-6)


@pytest.mark.parametrize("from_logits", [False, True])
def test_weighted_bce_is_keras_sample_weight_and_xraykit(lesson, labels_and_logits, small_data,
                                                         from_logits):
    y, z = labels_and_logits
    pred = z if from_logits else _np(ops.sigmoid(z)).astype(np.float32)
    weights = losses.class_weights(small_data.y_train)
    ours = _np(ops.mean(lesson.weighted_bce(y, pred, weights[1], weights[0], from_logits)))
    sample_weight = np.where(y[:, 0] == 1, weights[1], weights[0])
    theirs = keras.losses.BinaryCrossentropy(from_logits=from_logits)(
        y, pred, sample_weight=sample_weight)
    np.testing.assert_allclose(ours, _np(theirs), rtol=1e-5)
    packaged = losses.get_loss("weighted_bce", y_train=small_data.y_train, from_logits=from_logits)
    np.testing.assert_allclose(ours, _np(packaged(y, pred)), rtol=1e-5)
    # The weights matter: unit weights give a different number.
    assert not np.isclose(ours, _np(ops.mean(lesson.bce(y, pred, from_logits))), rtol=1e-3)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("gamma, alpha", [(0.0, None), (2.0, None), (2.0, 0.25), (5.0, 0.8)])
def test_focal_bce_is_keras_and_xraykit(lesson, labels_and_logits, from_logits, gamma, alpha):
    y, z = labels_and_logits
    pred = z if from_logits else _np(ops.sigmoid(z)).astype(np.float32)
    ours = _np(ops.mean(lesson.focal_bce(y, pred, gamma, alpha, from_logits=from_logits)))
    keras_focal = keras.losses.BinaryFocalCrossentropy(
        gamma=gamma, apply_class_balancing=alpha is not None, alpha=alpha or 0.25,
        from_logits=from_logits)
    np.testing.assert_allclose(ours, _np(keras_focal(y, pred)), rtol=1e-5)
    packaged = losses.get_loss("focal", gamma=gamma, alpha=alpha, from_logits=from_logits)
    np.testing.assert_allclose(ours, _np(packaged(y, pred)), rtol=1e-5)
    if gamma == 0.0 and alpha is None:
        np.testing.assert_allclose(ours, _np(ops.mean(lesson.bce(y, pred, from_logits))),
                                   rtol=1e-6)


def test_focal_bce_from_logits_is_exact_where_keras_focal_depends_on_the_backend(lesson):
    """Keras' focal loss with from_logits=True is exact on TensorFlow only, as the lesson says.

    It applies the sigmoid, then the clipped probability form; TensorFlow recovers the logit
    from the sigmoid's output, JAX and torch do not.
    """
    z = np.array([[5.0], [40.0]], np.float32)
    y = np.zeros_like(z)
    _, ours = value_and_grad(lambda t: ops.sum(lesson.focal_bce(y, t, 2.0, from_logits=True)), z)
    np.testing.assert_allclose(ours[1], 1.0, rtol=1e-5)
    keras_focal = keras.losses.BinaryFocalCrossentropy(gamma=2.0, from_logits=True, reduction="sum")
    _, theirs = value_and_grad(lambda t: keras_focal(y, t), z)
    np.testing.assert_allclose(theirs[0], ours[0], rtol=1e-4)   # unsaturated: the same
    expected = 1.0 if keras.backend.backend() == "tensorflow" else 0.0
    np.testing.assert_allclose(theirs[1], expected, atol=1e-6)


@pytest.fixture(scope="module")
def multilabel_batch(small_data):
    """Hidden labels (NaN and -1, three rows all unknown) and logits for real radiographs."""
    rng = np.random.default_rng(0)
    n = 48
    y = (rng.random((n, 5)) < 0.3).astype(np.float32)
    y[:, 0] = small_data.y_train[:n, 0]   # one column is the real pneumonia label
    y = losses.hide_labels(y, fraction=0.3, seed=2)
    y[rng.random(y.shape) < 0.1] = -1.0
    y[:3] = np.nan
    model = build_model("small_cnn", small_data.image_shape, task="multilabel", num_classes=5,
                        width=4, depth=2, batch_norm=False, seed=3)
    z = _logits(model, small_data.x_train[:n])
    z = (3 * z / z.std()).astype(np.float32)
    return y, z, rng.uniform(0.5, 2.0, n).astype(np.float32)


@pytest.mark.parametrize("from_logits", [False, True])
def test_masked_bce_is_xraykit_masked_loss(lesson, multilabel_batch, from_logits):
    y, z, sample_weight = multilabel_batch
    pred = z if from_logits else _np(ops.sigmoid(z)).astype(np.float32)
    ours = lesson.MaskedBCE(from_logits=from_logits)
    theirs = losses.get_loss("masked_bce", from_logits=from_logits)
    assert isinstance(ours, keras.losses.Loss)
    for sw in (None, sample_weight):
        np.testing.assert_allclose(_np(ours(y, pred, sample_weight=sw)),
                                   _np(theirs(y, pred, sample_weight=sw)), rtol=1e-5)
    # The mean over known entries, by hand.
    known = ~np.isnan(y) & (y >= 0)
    terms = _np(lesson.bce_terms(np.where(known, y, 0), pred, from_logits))
    np.testing.assert_allclose(_np(ours(y, pred)), terms[known].mean(), rtol=1e-5)
    # Every label known: Keras' BCE; none known: 0, not NaN.
    full = np.nan_to_num(np.clip(y, 0, 1), nan=0.0)
    np.testing.assert_allclose(
        _np(ours(full, pred)),
        _np(keras.losses.BinaryCrossentropy(from_logits=from_logits)(full, pred)), rtol=1e-5)
    assert _np(ours(np.full_like(y, np.nan), pred)) == 0.0


def test_masked_bce_gradient_is_finite_and_zero_on_unknown_entries(lesson, multilabel_batch):
    y, z, _ = multilabel_batch
    loss = lesson.MaskedBCE(from_logits=True)
    value, grad = value_and_grad(lambda t: loss(y, t), z)
    known = ~np.isnan(y) & (y >= 0)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    np.testing.assert_array_equal(grad[~known], 0.0)
    assert np.all(grad[known] != 0.0)
    _, theirs = value_and_grad(lambda t: losses.get_loss("masked_bce", from_logits=True)(y, t), z)
    np.testing.assert_allclose(grad, theirs, rtol=1e-5, atol=1e-8)


def test_prior_logit_is_xraykit_prior_logit(lesson, small_data):
    np.testing.assert_allclose(lesson.prior_logit(small_data.y_train),
                               losses.prior_logit(small_data.y_train))
    rate = small_data.y_train.mean()
    np.testing.assert_allclose(lesson.prior_logit(small_data.y_train), [np.log(rate / (1 - rate))])
    y = np.array([[1, 0], [np.nan, 1], [0, -1], [1, 0], [1, 1]], np.float32)
    np.testing.assert_allclose(lesson.prior_logit(y), losses.prior_logit(y))
    np.testing.assert_allclose(losses.prior_logit(y), [np.log(3 / 1), np.log(2 / 2)])


@pytest.mark.parametrize("num_outputs", [1, 3])
def test_build_cnn_is_build_model_logits_with_output_bias(lesson, small_data, num_outputs):
    bias = np.linspace(-1.5, 2.0, num_outputs)
    ours = lesson.build_cnn(small_data.image_shape, width=4, depth=3, num_outputs=num_outputs,
                            output_bias=bias, seed=5)
    task = "binary" if num_outputs == 1 else "multilabel"
    model = build_model("small_cnn", small_data.image_shape, task=task, num_classes=num_outputs,
                        width=4, depth=3, batch_norm=False, seed=5, output_bias=bias)
    theirs = keras.Model(model.input, model.get_layer("logits").output)
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(ours.get_layer("logits").get_weights()[1], bias, rtol=1e-6)
    x = small_data.x_val[:32]
    np.testing.assert_allclose(_np(ours(x)), _logits(model, x),
                               rtol=1e-5, atol=1e-6)
    # Without output_bias the bias starts at zero, as before.
    assert build_model("small_cnn", width=4, depth=2).get_layer("logits").get_weights()[1] == 0.0
