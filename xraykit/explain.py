"""Grad-CAM: where in the radiograph did the model look?

Grad-CAM (Selvaraju et al., ICCV 2017) weighs the channels of a convolutional feature map
``A`` by the average gradient of a class score ``y`` with respect to them, and keeps the
positive part: ``relu(sum_c mean_ij(dy/dA_cij) * A_c)``. The map is upsampled to the input
size and scaled to [0, 1] per image.

It works for every :mod:`xraykit.models` model: from-scratch CNNs and the
``keras.applications`` backbones nested inside a wrapper model. The feature map is chosen
automatically (the last layer with a 4-D output, searching inside nested backbones) or by
name. Gradients come from the active Keras backend behind one function:
``tf.GradientTape`` (TensorFlow), ``jax.grad`` (JAX) or ``torch.autograd`` (PyTorch).

How the gradient is taken: the model is re-traced (sharing its weights) into a model with two
inputs, the images and a zero tensor ``eps`` added to the chosen layer's output, and two
outputs, the feature map and the prediction. The gradient of the prediction with respect to
``eps`` at zero is exactly ``dy/dA``, and ``eps`` is a plain input on every backend, so no
backend needs to differentiate with respect to an intermediate tensor.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np

__all__ = ["conv_layer_path", "find_conv_layer", "grad_cam", "score_gradients"]

# Models already re-traced for Grad-CAM, keyed by the original model: {model: {path: cam_model}}.
_CAM_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# jit-compiled gradient functions of those models (JAX backend).
_JAX_GRADS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# Layers whose output is a 4-D map but not a feature map worth explaining (borders, copies).
_SKIP = (keras.layers.ZeroPadding2D, keras.layers.Cropping2D, keras.layers.Dropout,
         keras.layers.SpatialDropout2D)


def _rank4(layer) -> bool:
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError, RuntimeError):
        return False
    return len(shape) == 4


def _candidates(model, prefix=()):
    """Yields ``(path, layer)`` for every layer with a 4-D output, in execution order."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        path = prefix + (layer,)
        if isinstance(layer, keras.Model):
            yield from _candidates(layer, path)
        elif _rank4(layer) and not isinstance(layer, _SKIP):
            yield path, layer


def conv_layer_path(model, layer_name: str | None = None) -> tuple:
    """Finds the layer Grad-CAM reads and the chain of nested models that lead to it.

    Args:
        model: A built Keras model (functional or sequential), possibly with nested models.
        layer_name: Name of the layer to use, searched in the model and its nested models.
            ``None`` picks the last layer whose output is a 4-D feature map with more than one
            pixel (the last convolutional block before global pooling).

    Returns:
        A tuple of layers: the nested models from the outside in, then the chosen layer.

    Raises:
        ValueError: If the model has no 4-D feature map, or no layer has that name.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"grad_cam needs a keras.Model, got {type(model).__name__}.")
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError("The model is not built: call it once on a batch (or build it from a "
                         "keras.Input) before asking for Grad-CAM.")
    candidates = list(_candidates(model))
    if layer_name is not None:
        for path, layer in candidates:
            if layer.name == layer_name:
                return path
        names = [layer.name for _, layer in candidates]
        raise ValueError(f"No layer named {layer_name!r} with a 4-D output in {model.name!r}; "
                         f"layers with feature maps are: {names[-12:]} (last 12).")
    if not candidates:
        raise ValueError(f"Model {model.name!r} has no layer with a 4-D (N, H, W, C) output: "
                         "Grad-CAM needs a convolutional feature map.")
    spatial = [(p, lay) for p, lay in candidates
               if all(d is None or d > 1 for d in lay.output.shape[1:3])]
    return (spatial or candidates)[-1][0]


def find_conv_layer(model, layer_name: str | None = None):
    """Returns the layer :func:`grad_cam` uses (see :func:`conv_layer_path`).

    Args:
        model: A built Keras model.
        layer_name: Optional name of the layer.

    Returns:
        The ``keras.layers.Layer`` whose output Grad-CAM weighs.
    """
    return conv_layer_path(model, layer_name)[-1]


def _trace(model, inputs, path, eps, stash):
    """Applies ``model`` symbolically to ``inputs``, adding ``eps`` to the output of the
    layer at the end of ``path``; the layer's output itself goes into ``stash``."""
    target = path[0]

    def wrap(op):
        if op is not target:
            return op
        if len(path) == 1:
            def call(*args, **kwargs):
                out = op(*args, **kwargs)
                stash.append(out)
                return keras.ops.add(out, keras.ops.cast(eps, out.dtype))
        else:
            def call(*args, **kwargs):
                return _trace(op, args[0], path[1:], eps, stash)
        return call

    if isinstance(model, keras.Sequential):
        x = inputs
        for layer in model.layers:
            x = wrap(layer)(x)
        return x
    if not hasattr(model, "_run_through_graph"):
        raise TypeError(f"Cannot trace {type(model).__name__} {model.name!r} for Grad-CAM: use "
                        "a functional or sequential model.")
    outputs = model._run_through_graph([inputs], operation_fn=wrap)
    if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
        outputs = outputs[0]
    return outputs


def _cam_model(model, path):
    """The re-traced model ``[images, eps] -> [feature map, prediction]`` (cached)."""
    cache = _CAM_MODELS.setdefault(model, {})
    key = tuple(id(layer) for layer in path)
    if key not in cache:
        if len(model.inputs) != 1:
            raise ValueError(f"grad_cam supports single-input models; {model.name!r} has "
                             f"{len(model.inputs)} inputs.")
        image_in = keras.Input(shape=model.inputs[0].shape[1:], name="images")
        eps_in = keras.Input(shape=path[-1].output.shape[1:], name="eps")
        stash: list = []
        outputs = _trace(model, image_in, path, eps_in, stash)
        if not stash:
            raise ValueError(f"Layer {path[-1].name!r} is not on the path from the input to "
                             "the output of the model.")
        if isinstance(outputs, (list, tuple)):
            raise ValueError("grad_cam supports single-output models.")
        cache[key] = keras.Model([image_in, eps_in], [stash[-1], outputs],
                                 name=f"{model.name}_gradcam")
    return cache[key]


def score_gradients(cam_model, images, eps_shape, class_index=0):
    """Feature maps and the gradient of one output column with respect to them.

    One function for all backends: TensorFlow uses ``tf.GradientTape``, JAX ``jax.grad``,
    PyTorch ``torch.autograd``.

    Args:
        cam_model: A model ``[images, eps] -> [features, predictions]`` as built internally by
            :func:`grad_cam`.
        images: Float32 array ``(N, H, W, C)``.
        eps_shape: Shape of the feature map without the batch axis.
        class_index: Column of the prediction to explain.

    Returns:
        ``(features, gradients)``: two float32 NumPy arrays ``(N, h, w, c)``.

    Raises:
        NotImplementedError: For a backend other than TensorFlow, JAX or PyTorch.
    """
    backend = keras.backend.backend()
    zeros = np.zeros((len(images),) + tuple(eps_shape), np.float32)

    def score(outputs):
        outputs = keras.ops.reshape(outputs, (keras.ops.shape(outputs)[0], -1))
        # The sum over the batch gives every image its own gradient: images do not interact
        # at inference (batch norm uses its moving statistics).
        return keras.ops.sum(keras.ops.cast(outputs[:, class_index], "float32"))

    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(images)
        eps = tf.convert_to_tensor(zeros)
        with tf.GradientTape() as tape:
            tape.watch(eps)
            features, outputs = cam_model([x, eps], training=False)
            total = score(outputs)
        grads = tape.gradient(total, eps)
        return (np.asarray(features, dtype=np.float32), np.asarray(grads, dtype=np.float32))
    if backend == "jax":
        import jax

        fn = _JAX_GRADS.get(cam_model)
        if fn is None:
            # One jit-compiled function (weights passed as arguments, not baked in as
            # constants): eager JAX dispatches and compiles op by op, which is slow.
            def grads_of(trainable, non_trainable, x, eps):
                def total(eps):
                    (features, outputs), _ = cam_model.stateless_call(
                        trainable, non_trainable, [x, eps], training=False)
                    return score(outputs), features

                return jax.grad(total, has_aux=True)(eps)

            fn = _JAX_GRADS[cam_model] = jax.jit(grads_of)
        grads, features = fn([v.value for v in cam_model.trainable_variables],
                             [v.value for v in cam_model.non_trainable_variables],
                             jax.numpy.asarray(images), jax.numpy.asarray(zeros))
        return (np.asarray(features, dtype=np.float32), np.asarray(grads, dtype=np.float32))
    if backend == "torch":
        import torch

        device = keras.backend.get_device() if hasattr(keras.backend, "get_device") else None
        x = torch.as_tensor(images, device=device)
        eps = torch.zeros(zeros.shape, device=device, requires_grad=True)
        features, outputs = cam_model([x, eps], training=False)
        total = score(outputs)
        (grads,) = torch.autograd.grad(total, eps)
        return (features.detach().float().cpu().numpy(), grads.detach().float().cpu().numpy())
    raise NotImplementedError(f"grad_cam supports the tensorflow, jax and torch backends, "
                              f"not {backend!r}.")


def _upsample(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of ``(N, h, w)`` maps to ``(N, height, width)``."""
    if maps.shape[1:] == (height, width):
        return maps
    out = keras.ops.image.resize(maps[..., None], (height, width), interpolation="bilinear",
                                 data_format="channels_last")
    return np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)[..., 0]


def grad_cam(model, images, layer_name: str | None = None, class_index: int = 0,
             batch_size: int = 32) -> np.ndarray:
    """Grad-CAM heatmaps for a batch of images.

    Args:
        model: A built single-input, single-output Keras model, e.g. from
            :func:`xraykit.models.build_model` (from-scratch or a ``keras.applications``
            backbone nested inside).
        images: Float array ``(N, H, W, C)`` or one image ``(H, W, C)``, preprocessed exactly as
            the model was trained (for xraykit models: [0, 1], one channel).
        layer_name: Feature-map layer to explain; ``None`` picks the last 4-D layer, inside a
            nested backbone if there is one (see :func:`conv_layer_path`).
        class_index: Output column to explain (0 for a binary model; the label or class
            index for multilabel/multiclass models). The score is the model's output (a
            probability), whose gradient differs from the logit's only by a positive factor
            per image, which the per-image scaling removes.
        batch_size: Images per gradient computation.

    Returns:
        Float32 array ``(N, H, W)`` in [0, 1], at the input resolution; an image whose map is
        zero everywhere (no positive evidence) gets all zeros.

    Raises:
        ValueError: For a wrongly shaped input, a bad ``class_index`` or a model without a
            convolutional feature map.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C) or (H, W, C), got shape {images.shape}.")
    path = conv_layer_path(model, layer_name)
    expected = tuple(model.inputs[0].shape[1:])
    if any(e is not None and e != s for e, s in zip(expected, images.shape[1:])):
        raise ValueError(f"images have shape {images.shape[1:]} but the model expects "
                         f"{expected}: resize them as the model was trained (e.g. "
                         "xraykit.images.resize_square).")
    n_out = int(np.prod([d for d in model.outputs[0].shape[1:] if d is not None]) or 1)
    if not 0 <= class_index < n_out:
        raise ValueError(f"class_index={class_index} but the model has {n_out} output(s).")
    cam_model = _cam_model(model, path)
    eps_shape = tuple(cam_model.inputs[1].shape[1:])
    maps = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        features, grads = score_gradients(cam_model, batch, eps_shape, class_index)
        weights = grads.mean(axis=(1, 2), keepdims=True)  # (n, 1, 1, c)
        maps.append(np.maximum((weights * features).sum(axis=-1), 0.0))
    cams = _upsample(np.concatenate(maps).astype(np.float32), images.shape[1], images.shape[2])
    cams = np.nan_to_num(np.maximum(cams, 0.0), nan=0.0, posinf=0.0)
    peak = cams.max(axis=(1, 2), keepdims=True)
    cams = np.divide(cams, peak, out=np.zeros_like(cams), where=peak > 0)
    return np.clip(cams, 0.0, 1.0).astype(np.float32)
