"""Lesson 2's own code (its ``definition`` cells) agrees with xraykit.models.

The notebook writes a small CNN and a transfer-learning model with plain ``keras.layers`` and
``keras.applications``; ``xraykit.models.build_model`` (with ``set_trainable``) is what the rest
of the course calls. These tests build both for several settings and check they are the same
network: layer types in order, parameter counts, the same initial weights for one seed, and the
same predictions on real radiographs once the weights are shared. They also run the lesson's
batch-normalization census, whose results the lesson's prose relies on.
"""

import keras
import numpy as np
import pytest

from tests.lesson_code import lesson_definitions
from xraykit.models import BN_MOMENTUM, build_model, count_params, set_trainable


@pytest.fixture(scope="module")
def lesson():
    return lesson_definitions("02")


def _types(model):
    return [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize("width, depth, task, num_classes", [
    (8, 2, "binary", 1),
    (16, 3, "binary", 1),
    (4, 4, "multilabel", 14),
    (8, 3, "multiclass", 3),
])
def test_small_cnn_is_build_model_small_cnn(lesson, small_data, width, depth, task, num_classes):
    ours = lesson.build_small_cnn(small_data.image_shape, width=width, depth=depth, task=task,
                                  num_classes=num_classes, seed=3)
    theirs = build_model("small_cnn", small_data.image_shape, task=task,
                         num_classes=num_classes, width=width, depth=depth, seed=3)
    assert _types(ours) == _types(theirs)
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    assert count_params(ours) == count_params(theirs)
    bn = [layer for layer in ours.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bn) == depth and {layer.momentum for layer in bn} == {BN_MOMENTUM}
    # Same seed, same initial weights; and the same predictions on radiographs.
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b)
    x = small_data.x_val[:32]
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_small_cnn_predictions_agree_after_copying_trained_weights(lesson, small_data):
    ours = lesson.build_small_cnn(small_data.image_shape, width=8, depth=3, seed=0)
    ours.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    ours.fit(small_data.x_train, small_data.y_train, epochs=1, batch_size=64, verbose=0)
    theirs = build_model("small_cnn", small_data.image_shape, width=8, depth=3, seed=7)
    x = small_data.x_val
    assert not np.allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), atol=1e-3)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, application, family", [
    ("mobilenetv3small", "MobileNetV3Small", "mobilenet_v3"),
    ("densenet121", "DenseNet121", "densenet"),
])
def test_transfer_model_is_build_model_backbone(lesson, small_data, name, application, family):
    ours, backbone = lesson.build_transfer_model(
        small_data.image_shape, getattr(keras.applications, application),
        getattr(keras.applications, family).preprocess_input, weights=None, seed=0)
    theirs = build_model(name, small_data.image_shape, weights=None, seed=0)
    assert backbone.count_params() == theirs.get_layer("backbone").count_params()
    # Stage 1: frozen backbone, only the head trains.
    backbone.trainable = False
    set_trainable(theirs, backbone=False)
    assert count_params(ours) == count_params(theirs)
    assert count_params(ours)["trainable"] == theirs.get_layer("logits").count_params()
    # Stage 2: unfrozen, batch-norm layers kept frozen.
    backbone.trainable = True
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    set_trainable(theirs, backbone=True)
    assert count_params(ours) == count_params(theirs)
    # Same weights, same predictions: the grayscale-to-RGB step and preprocess_input agree with
    # xraykit's value-range layer on real radiographs.
    theirs.get_layer("backbone").set_weights(backbone.get_weights())
    theirs.get_layer("logits").set_weights(ours.get_layer("logits").get_weights())
    x = small_data.x_val[:16]
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)


def test_transfer_model_upsamples_small_images_only(lesson):
    small, _ = lesson.build_transfer_model((28, 28, 1), keras.applications.MobileNetV3Small,
                                           keras.applications.mobilenet_v3.preprocess_input)
    large, _ = lesson.build_transfer_model((64, 64, 1), keras.applications.MobileNetV3Small,
                                           keras.applications.mobilenet_v3.preprocess_input)
    assert small.get_layer("upsample").output.shape[1:3] == (32, 32)
    assert "upsample" not in [layer.name for layer in large.layers]


def test_normalization_census_backs_the_lessons_explanation(lesson):
    """The facts section 5 tells students to look for (checked here so the prose stays true)."""
    cnn = lesson.normalization_census(build_model("small_cnn", width=4, depth=2))
    assert cnn == {"batch_norm": 2, "bn_momenta": [BN_MOMENTUM], "layer_norm": 0}
    mobilenet = lesson.normalization_census(keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(32, 32, 3)))
    assert mobilenet["batch_norm"] > 10 and mobilenet["layer_norm"] == 0
    default = keras.layers.BatchNormalization().momentum
    assert all(m > default for m in mobilenet["bn_momenta"])  # longer memory than Keras' default
    convnext = lesson.normalization_census(keras.applications.ConvNeXtTiny(
        include_top=False, weights=None, input_shape=(32, 32, 3)))
    assert convnext["batch_norm"] == 0 and convnext["layer_norm"] > 10
    # Nested models are walked: a backbone inside a model is counted.
    nested = lesson.normalization_census(build_model("mobilenetv3small", weights=None))
    assert nested["batch_norm"] == mobilenet["batch_norm"]
