"""Grad-CAM: where in the radiograph did the model look?

Grad-CAM (Selvaraju et al., ICCV 2017) weighs the channels of a convolutional feature map
``A`` by the average gradient of a class score ``y`` with respect to them, and keeps the
positive part: ``relu(sum_c mean_ij(dy/dA_cij) * A_c)``. The map is upsampled to the input
size and scaled to [0, 1] per image.

It works for every :mod:`xraykit.models` model: from-scratch CNNs and the
``keras.applications`` backbones nested inside a wrapper model. The feature map is chosen
automatically (the last layer with a 4-D output, searching inside nested backbones) or by
name.

How the gradient is taken: the model is split (sharing its weights, with the public functional
API) into ``images -> A`` and ``[images, A] -> class logit``, and the gradient of the second
with respect to its input ``A`` comes from :func:`xraykit.autodiff.value_and_grad`. The score is
the logit before the final sigmoid/softmax: a saturated probability (p = 1.0 in float32) has
a zero gradient, and would give an empty map for exactly the confident mistakes worth
explaining.
"""

from __future__ import annotations

import functools
import weakref

import keras
import numpy as np

from xraykit.autodiff import value_and_grad

__all__ = ["conv_layer_path", "find_conv_layer", "grad_cam", "score_gradients"]

# Feature and head models built for Grad-CAM, keyed by the original model:
# {model: {path: (features_model, head_model, final_dense, class_logit_fn)}}.
_CAM_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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


def _single(tensors, what):
    if isinstance(tensors, (list, tuple)):
        if len(tensors) != 1:
            raise ValueError(f"grad_cam supports single-input, single-output models; {what} has "
                             f"{len(tensors)}.")
        return tensors[0]
    return tensors


def _call_sites(model):
    """Calls ``model``'s own layers again on a new input and records every call.

    Returns ``(input, output, sites)`` where ``sites[id(layer)] = (layer_input, layer_output)``
    in that new graph (weights are shared: the layers themselves are reused, through
    ``keras.models.clone_model``'s public ``clone_function``/``call_function`` hooks). A nested
    model's own ``.input``/``.output`` are its inner tensors, not where the outer model calls
    it; these records are.
    """
    sites = {}

    def call(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        sites[id(layer)] = (args[0] if args else None, out)
        return out

    image_in = keras.Input(shape=_single(model.inputs, f"model {model.name!r}").shape[1:])
    if isinstance(model, keras.Sequential):
        x = image_in
        for layer in model.layers:
            x = call(layer, x)
        output = x
    else:
        clone = keras.models.clone_model(model, input_tensors=image_in,
                                         clone_function=lambda layer: layer, call_function=call)
        output = clone.outputs[0]
    return image_in, output, sites


def _logit_site(model, sites, output):
    """The class-score tensor before a final sigmoid/softmax, and the Dense to finish it.

    Returns ``(tensor, dense)``: the input of a final ``Activation`` layer with ``dense=None``;
    the input of a final ``Dense(..., activation=sigmoid/softmax)`` with that layer (its kernel
    and bias are applied without the activation); else the model output itself.
    """
    last = model.layers[-1]
    name = getattr(getattr(last, "activation", None), "__name__", "")
    if name in ("sigmoid", "softmax") and sites.get(id(last), (None, None))[1] is output:
        if isinstance(last, keras.layers.Activation):
            return sites[id(last)][0], None
        if isinstance(last, keras.layers.Dense):
            return sites[id(last)][0], last
    return output, None


def _split_models(model, path):
    """Two models sharing ``model``'s weights: ``images -> A`` and ``[images, A] -> logits``.

    ``A`` is the output of the layer at the end of ``path`` (inside nested models when the path
    is longer than one). The head takes the images too, so skip connections that bypass the
    chosen layer still reach the output; only ``A`` is differentiated.
    """
    cache = _CAM_MODELS.setdefault(model, {})
    key = tuple(id(layer) for layer in path)
    if key in cache:
        return cache[key]
    if getattr(model, "inputs", None) is None:
        raise TypeError(f"Cannot explain {type(model).__name__} {model.name!r}: use a "
                        "functional or sequential model.")
    image_in = keras.Input(shape=model.inputs[0].shape[1:], name="images")
    feature_in = keras.Input(shape=path[-1].output.shape[1:], name="features")
    containers = (model,) + tuple(path[:-1])
    graphs = [_call_sites(container) for container in containers]
    for (_, _, sites), inner in zip(graphs, path):
        if id(inner) not in sites:
            raise ValueError(f"Layer {inner.name!r} is not on the path from the input to the "
                             f"output of {model.name!r}.")
    # Walk in: from the images to the input of each nested model, then to the chosen layer.
    x, container_inputs = image_in, []
    for (start, _, sites), inner in zip(graphs, path):
        container_inputs.append(x)
        x = keras.Model(start, sites[id(inner)][1 if inner is path[-1] else 0])(x)
    features = x
    # Walk out: from the chosen layer's output to each container's output; the outermost one
    # stops before its final activation.
    logit, dense = _logit_site(model, graphs[0][2], graphs[0][1])
    y = feature_in
    for depth in range(len(containers) - 1, -1, -1):
        start, output, sites = graphs[depth]
        end = logit if depth == 0 else output
        chosen = sites[id(path[depth])][1]
        if end is chosen:  # the chosen layer's output is the nested model's output (the
            continue       # backbone's last activation): nothing to run between them
        y = keras.Model([start, chosen], end)([container_inputs[depth], y])
    head = keras.Model([image_in, feature_in], y, name=f"{model.name}_head")
    # One function object per head, so that JAX compiles its gradient once.
    cache[key] = (keras.Model(image_in, features, name=f"{model.name}_features"), head, dense,
                  functools.partial(_class_logit, head=head))
    return cache[key]


def _class_logit(features, images, head_trainable, head_frozen, kernel, bias, column,
                 head=None):
    """Sum over the batch of one class logit; differentiated with respect to ``features``."""
    (logits), _ = head.stateless_call(head_trainable, head_frozen, [images, features],
                                      training=False)
    logits = keras.ops.cast(logits, "float32")
    if kernel is not None:
        logits = keras.ops.matmul(logits, keras.ops.cast(kernel, "float32"))
        if bias is not None:
            logits = logits + keras.ops.cast(bias, "float32")
    logits = keras.ops.reshape(logits, (keras.ops.shape(logits)[0], -1))
    # The sum over the batch gives every image its own gradient: images do not interact at
    # inference (batch norm uses its moving statistics).
    return keras.ops.sum(logits * column)


def score_gradients(model, images, path, class_index=0):
    """Feature maps and the gradient of one class LOGIT with respect to them.

    The logit is the score before the final sigmoid/softmax: a saturated probability has a
    gradient that underflows to zero, its logit does not. The gradient comes from
    :func:`xraykit.autodiff.value_and_grad` (every backend behind one function).

    Args:
        model: A built single-input, single-output Keras model.
        images: Float32 array ``(N, H, W, C)``.
        path: The layer chain from :func:`conv_layer_path`.
        class_index: Column of the prediction to explain.

    Returns:
        ``(features, gradients)``: two float32 NumPy arrays ``(N, h, w, c)``.
    """
    features_model, head, dense, fn = _split_models(model, path)
    features = np.asarray(keras.ops.convert_to_numpy(features_model(images, training=False)),
                          np.float32)
    n_out = int(dense.units if dense is not None else np.prod(head.outputs[0].shape[1:]))
    column = np.eye(n_out, dtype=np.float32)[class_index]
    kernel = dense.kernel.value if dense is not None else None
    bias = dense.bias.value if dense is not None and dense.use_bias else None
    _, grads = value_and_grad(fn, features, images,
                              [v.value for v in head.trainable_variables],
                              [v.value for v in head.non_trainable_variables],
                              kernel, bias, column)
    return features, np.asarray(grads, np.float32)


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
            index for multilabel/multiclass models). The score differentiated is the class
            logit (before a final sigmoid/softmax), so a saturated, confident prediction
            still gets a map.
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
    maps = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        features, grads = score_gradients(model, batch, path, class_index)
        weights = grads.mean(axis=(1, 2), keepdims=True)  # (n, 1, 1, c)
        maps.append(np.maximum((weights * features).sum(axis=-1), 0.0))
    cams = _upsample(np.concatenate(maps).astype(np.float32), images.shape[1], images.shape[2])
    cams = np.nan_to_num(np.maximum(cams, 0.0), nan=0.0, posinf=0.0)
    peak = cams.max(axis=(1, 2), keepdims=True)
    cams = np.divide(cams, peak, out=np.zeros_like(cams), where=peak > 0)
    return np.clip(cams, 0.0, 1.0).astype(np.float32)
