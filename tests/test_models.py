"""Tests of xraykit.models: every factory, every task, both backends, save/load."""


import keras
import numpy as np
import pytest

from tests.conftest import one_backbone_off_tensorflow
from xraykit.models import build_model, count_params, list_models, model_info, set_trainable
from xraykit.preprocessing import ToRGB, backbone_convention, backbone_range_layer

SCRATCH = list_models("scratch")
BACKBONES = list_models("backbone")


def _images(n=2, size=28, seed=0):
    return np.random.default_rng(seed).random((n, size, size, 1), dtype=np.float32)


def test_list_models_names_the_contract():
    assert SCRATCH == ["small_cnn", "vgg_small", "resnet_small"]
    assert set(BACKBONES) == {"densenet121", "resnet50v2", "efficientnetv2b0", "convnext_tiny",
                              "mobilenetv3small"}
    assert model_info("densenet121").min_size == 32
    with pytest.raises(ValueError, match="Unknown model"):
        model_info("alexnet")


@pytest.mark.parametrize("name,task,num_classes,shape", [
    ("small_cnn", "binary", 1, (2, 1)), ("small_cnn", "multilabel", 14, (2, 14)),
    ("small_cnn", "multiclass", 3, (2, 3)), ("vgg_small", "binary", 2, (2, 1)),
    ("vgg_small", "multiclass", 4, (2, 4)), ("resnet_small", "multilabel", 5, (2, 5)),
    ("resnet_small", "binary", 1, (2, 1))])
def test_scratch_models_output_shape_per_task(name, task, num_classes, shape):
    model = build_model(name, (28, 28, 1), task=task, num_classes=num_classes, width=8, depth=2)
    y = keras.ops.convert_to_numpy(model(_images(), training=False))
    assert y.shape == shape
    assert y.dtype == np.float32
    assert np.all((y >= 0) & (y <= 1))
    if task == "multiclass":
        np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)


APPLICATION_MODULES = {"densenet121": "densenet", "resnet50v2": "resnet_v2",
                       "efficientnetv2b0": "efficientnet_v2", "convnext_tiny": "convnext",
                       "mobilenetv3small": "mobilenet_v3"}


def _keras_preprocess(rgb, name):
    """What the backbone's own ``keras.applications`` ``preprocess_input`` makes of RGB [0, 1]."""
    import importlib

    module = importlib.import_module(f"keras.applications.{APPLICATION_MODULES[name]}")
    return np.asarray(keras.ops.convert_to_numpy(module.preprocess_input(rgb * 255.0)),
                      np.float32)


@pytest.mark.parametrize("name", one_backbone_off_tensorflow(BACKBONES, "resnet50v2"))
def test_backbones_build_at_28px_and_upsample(name):
    """Every backbone builds with weights=None on 28 px grayscale (upsampled to 32 inside)."""
    model = build_model(name, (28, 28, 1), task="multilabel", num_classes=3)
    assert model.get_layer("upsample").output.shape[1:3] == (32, 32)
    assert model.get_layer("gray_to_rgb").output.shape[-1] == 3
    # Only built-in layers before the backbone (the saved model loads without xraykit).
    assert all(type(layer).__module__.startswith("keras.") for layer in model.layers)
    assert model.get_layer("backbone").count_params() > 5e5
    x = _images()
    y = keras.ops.convert_to_numpy(model(x, training=False))
    assert y.shape == (2, 3) and y.dtype == np.float32
    # Same prediction as the backbone fed through its own preprocess_input (same weights).
    rgb = np.repeat(keras.ops.convert_to_numpy(model.get_layer("upsample")(x)), 3, axis=-1)
    h = model.get_layer("backbone")(_keras_preprocess(rgb, name), training=False)
    h = model.get_layer("logits")(model.get_layer("head_pool")(h))
    head = keras.ops.convert_to_numpy(model.get_layer("output")(h))
    np.testing.assert_allclose(y, head, rtol=1e-4, atol=1e-5)


def test_backbone_conventions_have_one_home():
    """ModelSpec reads the preprocessing table; the layers do what keras.applications does."""
    from xraykit.preprocessing import to_backbone_range

    rgb = np.random.default_rng(1).random((1, 2, 2, 3), dtype=np.float32)
    for name in BACKBONES:
        assert model_info(name).preprocessing == backbone_convention(name)
        np.testing.assert_allclose(to_backbone_range(rgb, name), _keras_preprocess(rgb, name),
                                   rtol=1e-5, atol=1e-4)
        layer = backbone_range_layer(name)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(rgb)),
                                   _keras_preprocess(rgb, name), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(ToRGB(name)(rgb)),
                                   _keras_preprocess(rgb, name), rtol=1e-5, atol=1e-4)
    assert model_info("small_cnn").preprocessing == "unit"
    # The reference can tell conventions apart: DenseNet's is not ResNetV2's.
    assert not np.allclose(_keras_preprocess(rgb, "densenet121"),
                           _keras_preprocess(rgb, "resnet50v2"), atol=1e-2)


def test_to_rgb_layer_config_holds_numbers_only():
    layer = ToRGB("resnet50")  # caffe: BGR, minus the ImageNet means
    config = layer.get_config()
    assert "backbone" not in config and config["reverse_channels"] is True
    assert config["scale"] == pytest.approx([255.0] * 3)
    assert config["offset"] == pytest.approx([-103.939, -116.779, -123.68])
    again = ToRGB.from_config(config)
    rgb = np.random.default_rng(2).random((1, 3, 3, 3), dtype=np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(rgb)),
                               keras.ops.convert_to_numpy(
                                   keras.applications.resnet.preprocess_input(rgb * 255.0)),
                               rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="three finite numbers"):
        ToRGB(scale=[1.0, 2.0])


def test_save_and_reload_predicts_the_same(tmp_path):
    model = build_model("resnet_small", (28, 28, 1), width=8, depth=2, dropout=0.2, l2=1e-4,
                        augmentation="light")
    x = _images(4)
    before = np.asarray(model.predict(x, verbose=0))
    path = tmp_path / "model.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(again.predict(x, verbose=0)), before, atol=1e-6)
    # augmentation is inside the model but only active in training
    assert any(layer.name.startswith("augmentation") for layer in again.layers)


def test_regularization_knobs_change_the_model():
    plain = build_model("vgg_small", width=8, depth=2, batch_norm=False)
    regular = build_model("vgg_small", width=8, depth=2, l2=1e-3, dropout=0.5)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in plain.layers)
    assert any(isinstance(layer, keras.layers.Dropout) for layer in regular.layers)
    assert len(regular.losses) > 0 and len(plain.losses) == 0
    wide = build_model("small_cnn", width=16, depth=3)
    narrow = build_model("small_cnn", width=8, depth=3)
    assert count_params(wide)["total"] > 3 * count_params(narrow)["total"]


def test_spatial_dropout_and_one_head_dropout():
    model = build_model("vgg_small", width=8, depth=3, dropout=0.5, spatial_dropout=0.1, seed=2)
    spatial = [layer for layer in model.layers
               if isinstance(layer, keras.layers.SpatialDropout2D)]
    assert [layer.name for layer in spatial] == [f"block{i}_spatial_dropout" for i in (1, 2, 3)]
    assert all(layer.rate == 0.1 for layer in spatial)
    # VGG's head drops once (after its dense layer), not twice in a row.
    plain = [layer for layer in model.layers if type(layer) is keras.layers.Dropout]
    assert [layer.name for layer in plain] == ["head_fc_dropout"]
    for name in ("small_cnn", "resnet_small"):
        net = build_model(name, width=4, depth=2, spatial_dropout=0.2)
        assert sum(isinstance(layer, keras.layers.SpatialDropout2D) for layer in net.layers) == 2
    x = _images(2)
    np.testing.assert_allclose(model(x, training=False), model(x, training=False))
    with pytest.raises(ValueError, match="spatial_dropout"):
        build_model("vgg_small", spatial_dropout=1.0)
    with pytest.raises(ValueError, match="from-scratch"):
        build_model("mobilenetv3small", spatial_dropout=0.1)


def test_set_trainable_freezes_all_but_head():
    model = build_model("small_cnn", width=8, depth=2)
    set_trainable(model, backbone=False)
    trainable = {w.path.split("/")[0] for w in model.trainable_weights}
    assert trainable == {"logits"}
    set_trainable(model, backbone=True)
    assert count_params(model)["trainable"] > count_params(model)["non_trainable"] > 0
    # BatchNorm stays frozen during fine-tuning by default
    assert all(not layer.trainable for layer in model.layers
               if isinstance(layer, keras.layers.BatchNormalization))


def test_set_trainable_reaches_batch_norm_inside_a_nested_backbone():
    inner_in = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, name="inner_conv")(inner_in)
    h = keras.layers.BatchNormalization(name="inner_bn")(h)
    backbone = keras.Model(inner_in, h, name="backbone")
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.GlobalAveragePooling2D(name="head_pool")(backbone(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, name="logits")(h))
    set_trainable(model, backbone=True)
    assert backbone.get_layer("inner_conv").trainable
    assert not backbone.get_layer("inner_bn").trainable
    set_trainable(model, backbone=True, freeze_batch_norm=False)
    assert backbone.get_layer("inner_bn").trainable


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="choose one of"):
        build_model("vit")
    with pytest.raises(ValueError, match="input_shape"):
        build_model("small_cnn", (28, 28))
    with pytest.raises(ValueError, match="task"):
        build_model("small_cnn", task="regression")
    with pytest.raises(ValueError, match="from scratch"):
        build_model("small_cnn", weights="imagenet")
    with pytest.raises(TypeError, match="augmentation"):
        build_model("small_cnn", augmentation=3)


def test_mixed_precision_output_is_float32():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model("small_cnn", width=8, depth=2)
        assert model.get_layer("logits").compute_dtype == "bfloat16"
        assert keras.ops.convert_to_numpy(model(_images())).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_imagenet_weights_fall_back_offline_with_a_warning(monkeypatch):
    calls = []

    def fake_backbone(weights=None, include_top=False, input_shape=None, pooling=None):
        calls.append(weights)
        if weights == "imagenet":  # what keras.utils.get_file raises without a network
            raise Exception("URL fetch failure: [Errno -2] Name or service not known")
        inputs = keras.Input(input_shape)
        return keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))

    monkeypatch.setattr(keras.applications, "DenseNet121", fake_backbone)
    with pytest.warns(UserWarning,
                      match="Could not load 'imagenet' weights for densenet121") as rec:
        model = build_model("densenet121", (28, 28, 1), weights="imagenet")
    assert calls == ["imagenet", None]
    assert "weights=None" in str(rec[0].message)
    assert keras.ops.convert_to_numpy(model(_images())).shape == (2, 1)


def test_batch_norm_momentum_and_switch():
    def momenta(model):
        return {layer.momentum for layer in model.layers
                if isinstance(layer, keras.layers.BatchNormalization)}

    assert momenta(build_model("resnet_small", (28, 28, 1), width=8)) == {0.9}
    assert momenta(build_model("small_cnn", (28, 28, 1), width=8, bn_momentum=0.99)) == {0.99}
    assert momenta(build_model("vgg_small", (28, 28, 1), width=8, batch_norm=False)) == set()
    with pytest.raises(ValueError, match="bn_momentum"):
        build_model("small_cnn", (28, 28, 1), bn_momentum=1.5)
