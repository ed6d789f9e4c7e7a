"""Model factories for chest X-ray classification (lesson 2).

One call builds a complete Keras model for a task:

>>> model = build_model("resnet_small", input_shape=(28, 28, 1), task="binary")

Conventions shared by every factory:

* **Inputs** are always float images in [0, 1] with shape ``(H, W, 1)`` (grayscale) or
  ``(H, W, 3)``. Anything a backbone needs on top of that (three channels, its own value range,
  a minimum input size) happens *inside* the model, so the same arrays feed every model.
* **Outputs** are probabilities in float32 (the last activation has ``dtype="float32"``, so
  mixed precision works): ``binary`` → ``(N, 1)`` sigmoid, ``multilabel`` → ``(N, L)`` sigmoid
  per label, ``multiclass`` → ``(N, C)`` softmax. The layer before it, ``"logits"``, holds the
  raw scores (calibration and Grad-CAM use it).
* **Layer names**: the optional augmentation block is ``"augmentation_<preset>"``, a
  keras.applications network is the sub-model ``"backbone"``, and every head layer's name
  starts with ``"head"`` (plus ``"logits"`` and ``"output"``); :func:`set_trainable` relies
  on this.

From-scratch networks (``small_cnn``, ``vgg_small``, ``resnet_small``) take ``width``/``depth``
and the regularization knobs ``l1``/``l2``/``dropout``/``spatial_dropout``/``batch_norm``
(lesson 5).
ImageNet backbones (``densenet121``, ``resnet50v2``, ``efficientnetv2b0``, ``convnext_tiny``,
``mobilenetv3small``) come from ``keras.applications``:

* grayscale is repeated to 3 channels (ImageNet weights expect RGB);
* :func:`xraykit.preprocessing.backbone_range_layer` maps [0, 1] to the backbone's own
  convention, read from ``keras.applications.imagenet_utils.preprocess_input``: ``"torch"``
  mean/std for DenseNet, [-1, 1] for ResNetV2, and [0, 255] for EfficientNetV2, ConvNeXt and
  MobileNetV3 (which rescale internally);
* images smaller than the backbone's minimum input (32 px) are **upsampled inside the model**
  with a bilinear ``Resizing`` layer, so 28 px PneumoniaMNIST works (at 32 px the final
  feature map is 1x1: fine for teaching, not for accuracy; use 64 px or more on a GPU);
* ``weights="imagenet"`` downloads the weights with ``keras.utils.get_file`` (cached in
  ``~/.keras/models``); offline, a warning says so and the backbone starts from random weights
  (``weights=None``).

Saving and loading: the models built here use only built-in Keras layers, except the geometric
part of an augmentation preset (:class:`xraykit.affine.RandomAffine`, registered when this
module is imported). A model that holds another xraykit layer (``PerImageStandardize``, ...) or
was compiled with an xraykit loss or metric (:func:`xraykit.training.compile_model` adds
``Specificity``) needs those classes registered in the process that loads it: load with
:func:`xraykit.inference.load_model`, or ``import xraykit.inference`` (it imports the modules
that define them) before ``keras.saving.load_model(path)``.
"""

from __future__ import annotations

import dataclasses
import warnings

import keras

import xraykit.affine  # noqa: F401  (registers RandomAffine, the presets' geometry, for load_model)
from xraykit.preprocessing import backbone_convention, backbone_range_layer
from xraykit.tasks import check_task


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What :func:`list_models` knows about one architecture.

    Attributes:
        name: Factory name.
        kind: ``"scratch"`` or ``"backbone"``.
        description: One line for tables.
        min_size: Smallest input side the network accepts (smaller inputs are upsampled).
        preprocessing: How [0, 1] inputs are mapped for the network: the backbone's mode in
            :data:`xraykit.preprocessing.BACKBONE_CONVENTIONS` (``"unit"`` for from-scratch
            nets).
    """

    name: str
    kind: str
    description: str
    min_size: int = 8
    preprocessing: str = "unit"


_SPECS = {
    "small_cnn": ModelSpec("small_cnn", "scratch",
                           "conv-BN-ReLU-pool blocks, global average pooling"),
    "vgg_small": ModelSpec("vgg_small", "scratch",
                           "VGG style: two 3x3 convs per block, pooling, dense layer"),
    "resnet_small": ModelSpec("resnet_small", "scratch",
                              "ResNet style: residual basic blocks with identity shortcuts"),
    "densenet121": ModelSpec("densenet121", "backbone",
                             "DenseNet-121 (CheXNet's choice), 7.0M params", 32,
                             backbone_convention("densenet121")),
    "resnet50v2": ModelSpec("resnet50v2", "backbone",
                            "ResNet-50 v2 (pre-activation), 23.6M params", 32,
                            backbone_convention("resnet50v2")),
    "efficientnetv2b0": ModelSpec("efficientnetv2b0", "backbone",
                                  "EfficientNetV2-B0, 5.9M params", 32,
                                  backbone_convention("efficientnetv2b0")),
    "convnext_tiny": ModelSpec("convnext_tiny", "backbone",
                               "ConvNeXt-Tiny, 27.8M params", 32,
                               backbone_convention("convnext_tiny")),
    "mobilenetv3small": ModelSpec("mobilenetv3small", "backbone",
                                  "MobileNetV3-Small, 0.9M params", 32,
                                  backbone_convention("mobilenetv3small")),
}

_APPLICATIONS = {
    "densenet121": "DenseNet121",
    "resnet50v2": "ResNet50V2",
    "efficientnetv2b0": "EfficientNetV2B0",
    "convnext_tiny": "ConvNeXtTiny",
    "mobilenetv3small": "MobileNetV3Small",
}

def list_models(kind: str | None = None) -> list[str]:
    """Names accepted by :func:`build_model`.

    Args:
        kind: ``"scratch"``, ``"backbone"`` or ``None`` for all.

    Returns:
        The names, from-scratch networks first.

    Raises:
        ValueError: If ``kind`` is not one of the above.
    """
    if kind not in (None, "scratch", "backbone"):
        raise ValueError(f"kind must be 'scratch', 'backbone' or None, not {kind!r}.")
    return [n for n, s in _SPECS.items() if kind is None or s.kind == kind]


def model_info(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of one architecture (kind, description, minimum size).

    Args:
        name: A name from :func:`list_models`.

    Returns:
        The spec.

    Raises:
        ValueError: If the name is unknown.
    """
    key = str(name).lower()
    if key not in _SPECS:
        raise ValueError(f"Unknown model {name!r}: choose one of {', '.join(_SPECS)}.")
    return _SPECS[key]


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------
def _regularizer(l1: float, l2: float):
    if l1 < 0 or l2 < 0:
        raise ValueError(f"l1 and l2 must be >= 0, got l1={l1}, l2={l2}.")
    if l1 and l2:
        return keras.regularizers.L1L2(l1=l1, l2=l2)
    if l1:
        return keras.regularizers.L1(l1)
    if l2:
        return keras.regularizers.L2(l2)
    return None


# Default moving-average momentum of batch normalization in the from-scratch nets. Keras' default
# (0.99) needs thousands of steps to settle; lessons train for a few hundred, and with 0.99 the
# inference-time statistics lag so far behind that validation AUC can sit at 0.5. The helpers
# below take the momentum, or None for no batch normalization.
BN_MOMENTUM = 0.9


def _conv_bn_relu(x, filters, name, reg, bn_momentum, seed, strides=1, activation=True):
    x = keras.layers.Conv2D(
        filters, 3, strides=strides, padding="same", use_bias=bn_momentum is None,
        kernel_initializer=keras.initializers.HeNormal(seed=seed),
        kernel_regularizer=reg, name=f"{name}_conv")(x)
    if bn_momentum is not None:
        x = keras.layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)
    if activation:
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return x


def _spatial_dropout(x, rate, name, seed):
    """Drops whole feature maps (channels) at the end of a block.

    Neighbouring pixels of a map are correlated, so dropping single activations would hardly
    remove information.
    """
    if not rate:
        return x
    return keras.layers.SpatialDropout2D(rate, seed=seed, name=f"{name}_spatial_dropout")(x)


def _small_cnn(x, width, depth, reg, bn_momentum, seed, spatial_dropout=0.0):
    for i in range(depth):
        x = _conv_bn_relu(x, width * 2 ** i, f"block{i + 1}", reg, bn_momentum, seed + i)
        if i < depth - 1:
            x = keras.layers.MaxPooling2D(2, name=f"block{i + 1}_pool")(x)
        x = _spatial_dropout(x, spatial_dropout, f"block{i + 1}", seed + i)
    return x


def _vgg_small(x, width, depth, reg, bn_momentum, seed, spatial_dropout=0.0):
    for i in range(depth):
        filters = width * 2 ** i
        x = _conv_bn_relu(x, filters, f"block{i + 1}a", reg, bn_momentum, seed + 2 * i)
        x = _conv_bn_relu(x, filters, f"block{i + 1}b", reg, bn_momentum, seed + 2 * i + 1)
        if i < depth - 1:
            x = keras.layers.MaxPooling2D(2, name=f"block{i + 1}_pool")(x)
        x = _spatial_dropout(x, spatial_dropout, f"block{i + 1}", seed + i)
    return x


def _residual_block(x, filters, strides, name, reg, bn_momentum, seed):
    """A ResNet basic block: two 3x3 convs plus a shortcut (1x1 conv when the shape changes)."""
    shortcut = x
    y = _conv_bn_relu(x, filters, f"{name}_1", reg, bn_momentum, seed, strides=strides)
    y = _conv_bn_relu(y, filters, f"{name}_2", reg, bn_momentum, seed + 1, activation=False)
    if strides != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(
            filters, 1, strides=strides, use_bias=bn_momentum is None, kernel_regularizer=reg,
            kernel_initializer=keras.initializers.HeNormal(seed=seed + 2),
            name=f"{name}_shortcut_conv")(x)
        if bn_momentum is not None:
            shortcut = keras.layers.BatchNormalization(
                momentum=bn_momentum, name=f"{name}_shortcut_bn")(shortcut)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def _resnet_small(x, width, depth, reg, bn_momentum, seed, spatial_dropout=0.0):
    x = _conv_bn_relu(x, width, "stem", reg, bn_momentum, seed)
    for i in range(depth):
        filters = width * 2 ** i
        strides = 1 if i == 0 else 2
        x = _residual_block(x, filters, strides, f"stage{i + 1}_block1", reg, bn_momentum,
                            seed + 10 * i)
        x = _residual_block(x, filters, 1, f"stage{i + 1}_block2", reg, bn_momentum,
                            seed + 10 * i + 5)
        x = _spatial_dropout(x, spatial_dropout, f"stage{i + 1}", seed + i)
    return x


_SCRATCH = {"small_cnn": _small_cnn, "vgg_small": _vgg_small, "resnet_small": _resnet_small}


def _application(name, shape, weights):
    """Instantiates a keras.applications backbone, falling back to random weights offline."""
    constructor = getattr(keras.applications, _APPLICATIONS[name])
    kwargs = {"include_top": False, "input_shape": shape, "pooling": None}
    if weights is None:
        return constructor(weights=None, **kwargs), None
    try:
        return constructor(weights=weights, **kwargs), weights
    except Exception as err:  # URLError, HTTPError, socket errors, hash mismatch...
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        warnings.warn(f"Could not load {weights!r} weights for {name} ({reason}). Continuing "
                      "with random weights (weights=None): this is training from scratch, not "
                      "transfer learning. Connect to the internet (the weights are cached in "
                      "~/.keras/models afterwards) or copy the file there to use pretrained "
                      "weights.", stacklevel=3)
        return constructor(weights=None, **kwargs), None


def _augmentation_block(augmentation, seed):
    if augmentation is None or augmentation is False:
        return None
    if isinstance(augmentation, str):
        if augmentation.lower() == "none":
            return None
        from xraykit.augmentation import augmentation_layers

        return augmentation_layers(augmentation, seed=seed)
    if isinstance(augmentation, keras.layers.Layer):
        return augmentation
    raise TypeError(f"augmentation must be a preset name (e.g. 'light'), a keras Layer or None, "
                    f"not {type(augmentation).__name__}.")


def _check_args(name, input_shape, task, num_classes, dropout, width, depth,
                spatial_dropout=0.0):
    if name not in _SPECS:
        raise ValueError(f"Unknown model {name!r}: choose one of {', '.join(_SPECS)} "
                         f"(see xraykit.models.list_models()).")
    check_task(task)
    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise ValueError(f"input_shape must be (H, W, 1) or (H, W, 3), got {input_shape}.")
    if task == "binary" and num_classes not in (1, 2):
        raise ValueError(f"A binary task has one sigmoid output: use num_classes=1 "
                         f"(got {num_classes}); for several labels use task='multilabel'.")
    if task == "multiclass" and num_classes < 2:
        raise ValueError(f"A multiclass task needs num_classes >= 2 (got {num_classes}).")
    if task == "multilabel" and num_classes < 1:
        raise ValueError(f"A multilabel task needs num_classes >= 1 (got {num_classes}).")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
    if not 0.0 <= spatial_dropout < 1.0:
        raise ValueError(f"spatial_dropout must be in [0, 1), got {spatial_dropout}.")
    if spatial_dropout and _SPECS[name].kind != "scratch":
        raise ValueError(f"spatial_dropout applies to the from-scratch nets "
                         f"({', '.join(list_models('scratch'))}), not to {name}; use dropout.")
    if width < 1 or depth < 1:
        raise ValueError(f"width and depth must be >= 1, got width={width}, depth={depth}.")


def build_model(name: str, input_shape=(28, 28, 1), task: str = "binary", num_classes: int = 1,
                weights: str | None = None, dropout: float = 0.0, l2: float = 0.0,
                l1: float = 0.0, batch_norm: bool = True, augmentation=None, width: int = 32,
                depth: int = 3, seed: int = 0, bn_momentum: float = BN_MOMENTUM,
                spatial_dropout: float = 0.0, output_bias=None) -> keras.Model:
    """Builds a classification model for chest X-rays.

    Args:
        name: One of :func:`list_models`: ``"small_cnn"``, ``"vgg_small"``,
            ``"resnet_small"``, ``"densenet121"``, ``"resnet50v2"``, ``"efficientnetv2b0"``,
            ``"convnext_tiny"``, ``"mobilenetv3small"``.
        input_shape: ``(H, W, 1)`` (or ``(H, W, 3)``); inputs are floats in [0, 1].
        task: ``"binary"`` (one sigmoid), ``"multilabel"`` (one sigmoid per label) or
            ``"multiclass"`` (softmax).
        num_classes: Outputs: 1 for binary, the number of labels or classes otherwise.
        weights: ``None`` (random init) or ``"imagenet"`` (backbones only; falls back to
            ``None`` with a warning when the download fails).
        dropout: Dropout rate before the last layer (in VGG, after its dense layer: one
            ``Dropout``, before ``logits``).
        l2: L2 weight penalty on conv/dense kernels (from-scratch nets and the head).
        l1: L1 weight penalty on conv/dense kernels (from-scratch nets and the head).
        batch_norm: Batch normalization after each conv (from-scratch nets).
        spatial_dropout: ``SpatialDropout2D`` rate at the end of every block or stage of the
            from-scratch nets (after its pooling): drops whole feature maps.
        bn_momentum: Momentum of the batch-normalization moving averages (default 0.9, for
            runs of a few hundred steps; 0.99, Keras' default, suits runs of thousands).
        augmentation: ``None``, a preset name of :func:`xraykit.augmentation.augmentation_layers`
            (``"light"``, ``"medium"``, ``"heavy"``) or a Keras layer; it runs only in
            training, inside the model (so on the GPU).
        width: Filters of the first block of from-scratch nets (doubles per block).
        depth: Blocks (stages) of from-scratch nets.
        seed: Seed of the weight initializers and the augmentation.
        output_bias: Initial bias of the ``"logits"`` layer: ``None`` (zeros), a float, or one
            value per output; ``log(positives / negatives)`` of the training labels starts a
            sigmoid output at the class prior (lesson 3).

    Returns:
        An uncompiled ``keras.Model`` (compile with :func:`xraykit.training.compile_model`).

    Raises:
        ValueError: On an unknown name or task, a bad shape, or a bad hyperparameter.
        TypeError: If ``augmentation`` is neither a name, a layer nor ``None``.
    """
    name = str(name).lower()
    input_shape = tuple(int(s) for s in input_shape)
    if task == "binary" and num_classes == 2:
        num_classes = 1
    _check_args(name, input_shape, task, num_classes, dropout, width, depth, spatial_dropout)
    if weights not in (None, "imagenet"):
        raise ValueError(f"weights must be None or 'imagenet', not {weights!r}.")
    if weights is not None and _SPECS[name].kind == "scratch":
        raise ValueError(f"{name} is trained from scratch: there are no {weights!r} weights; "
                         f"use weights=None or one of {', '.join(list_models('backbone'))}.")
    reg = _regularizer(l1, l2)

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    aug = _augmentation_block(augmentation, seed)
    if aug is not None:
        x = aug(x)

    spec = _SPECS[name]
    if spec.kind == "scratch":
        if not 0.0 < bn_momentum < 1.0:
            raise ValueError(f"bn_momentum must be in (0, 1), got {bn_momentum}.")
        features = _SCRATCH[name](x, width, depth, reg, bn_momentum if batch_norm else None,
                                  seed, spatial_dropout)
        x = keras.layers.GlobalAveragePooling2D(name="head_pool")(features)
        if name == "vgg_small":
            x = keras.layers.Dense(width * 4, kernel_regularizer=reg, name="head_fc",
                                   kernel_initializer=keras.initializers.HeNormal(seed=seed))(x)
            x = keras.layers.ReLU(name="head_fc_relu")(x)
            if dropout:  # the only dropout of VGG's head (no second one below)
                x = keras.layers.Dropout(dropout, seed=seed, name="head_fc_dropout")(x)
    else:
        height, width_px = input_shape[:2]
        if min(height, width_px) < spec.min_size:
            scale = spec.min_size / min(height, width_px)
            x = keras.layers.Resizing(round(height * scale), round(width_px * scale),
                                      interpolation="bilinear", name="upsample")(x)
        if input_shape[-1] == 1:
            x = keras.layers.Concatenate(axis=-1, name="gray_to_rgb")([x, x, x])
        # Built-in layers only, so the saved model loads without xraykit.
        x = backbone_range_layer(name)(x)
        backbone, loaded = _application(name, tuple(x.shape[1:]), weights)
        backbone.name = "backbone"
        # With pretrained weights keep BatchNorm in inference mode (Keras transfer-learning
        # guide), so fine-tuning does not wreck the ImageNet statistics.
        x = backbone(x, training=False) if loaded else backbone(x)
        x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    if dropout and name != "vgg_small":
        x = keras.layers.Dropout(dropout, seed=seed, name="head_dropout")(x)
    bias = "zeros" if output_bias is None else keras.initializers.Constant(output_bias)
    x = keras.layers.Dense(num_classes, kernel_regularizer=reg, name="logits",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                           bias_initializer=bias)(x)
    activation = "softmax" if task == "multiclass" else "sigmoid"
    outputs = keras.layers.Activation(activation, dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=name)


def _walk_layers(layer):
    """Yields ``layer`` and, for a nested model, every layer inside it (public ``.layers``)."""
    yield layer
    for sub in getattr(layer, "layers", ()):
        yield from _walk_layers(sub)


def _is_head(layer) -> bool:
    return layer.name.startswith("head") or layer.name in ("logits", "output")


def set_trainable(model: keras.Model, backbone: bool = False,
                  freeze_batch_norm: bool = True) -> keras.Model:
    """Freezes or unfreezes the feature extractor, for feature extraction then fine-tuning.

    The head (layers named ``head*``, ``logits``, ``output``) always stays trainable.
    Recompile the model after calling this (Keras reads ``trainable`` at compile time).

    Args:
        model: A model from :func:`build_model`.
        backbone: ``False`` freezes everything but the head (feature extraction); ``True``
            unfreezes it (fine-tuning; use a small learning rate, e.g. 1e-5).
        freeze_batch_norm: When unfreezing, keep BatchNormalization layers frozen: in Keras 3 a
            frozen BN layer runs in inference mode (its moving statistics stay as they are, the
            Keras transfer-learning guide's advice, which :func:`build_model` also follows by
            calling a pretrained backbone with ``training=False``) and its scale and offset
            (gamma, beta) stay fixed too, which goes beyond the guide (its example fine-tunes them).

    Returns:
        The same model, for chaining.
    """
    for layer in model.layers:
        if _is_head(layer) or isinstance(layer, keras.layers.InputLayer):
            layer.trainable = True
            continue
        # Parents before children, so a nested model's setting does not undo its BN layers'.
        for sub in _walk_layers(layer):
            frozen_bn = isinstance(sub, keras.layers.BatchNormalization) and freeze_batch_norm
            sub.trainable = backbone and not frozen_bn
    return model


def count_params(model: keras.Model) -> dict[str, int]:
    """Trainable and frozen parameter counts.

    Args:
        model: Any built Keras model.

    Returns:
        ``{"total", "trainable", "non_trainable"}``.
    """
    import numpy as np

    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return {"total": trainable + frozen, "trainable": trainable, "non_trainable": frozen}
