"""Gradients on every Keras backend behind one function: :func:`value_and_grad`.

Keras 3 has no backend-neutral gradient call, so this module holds the three versions a lesson
may show: ``tf.GradientTape`` (TensorFlow), ``jax.value_and_grad`` (JAX) and
``torch.autograd.grad`` (PyTorch). :mod:`xraykit.optimizers` (optimizer paths on toy surfaces)
and :mod:`xraykit.explain` (Grad-CAM) both use it.

Example:
    >>> from keras import ops
    >>> value, grad = value_and_grad(lambda w: ops.sum(w ** 2), np.array([1.0, 2.0], "float32"))
    >>> float(value), grad.tolist()
    (5.0, [2.0, 4.0])
"""

from __future__ import annotations

import weakref

import keras
import numpy as np

__all__ = ["value_and_grad"]

# jit-compiled ``jax.value_and_grad(fn)`` per function (JAX dispatches op by op otherwise).
_JAX_JIT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _to_numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value))


def _tensor_args(args):
    return [keras.ops.convert_to_tensor(a) if isinstance(a, np.ndarray) else a for a in args]


def value_and_grad(fn, x, *args, has_aux: bool = False):
    """Value of a scalar function and its gradient with respect to the first argument.

    Args:
        fn: A function ``fn(x, *args)`` written with ``keras.ops`` that returns a scalar, or
            ``(scalar, aux)`` with ``has_aux=True``. Under JAX it is jit-compiled once per
            function object, so pass anything that changes between calls (weights) in ``args``
            rather than closing over it.
        x: Float NumPy array (or backend tensor) to differentiate with respect to.
        *args: Further arguments passed to ``fn`` unchanged (NumPy arrays become tensors).
        has_aux: ``fn`` returns ``(value, aux)``; ``aux`` is returned, not differentiated.

    Returns:
        ``(value, grad)``, or ``((value, aux), grad)`` with ``has_aux=True``: ``value`` a float,
        ``grad`` a NumPy array shaped like ``x``, ``aux`` as ``fn`` returned it.

    Raises:
        NotImplementedError: For a backend other than TensorFlow, JAX or PyTorch.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        compiled = _JAX_JIT.get(fn)
        if compiled is None:
            compiled = _JAX_JIT[fn] = jax.jit(jax.value_and_grad(fn, has_aux=has_aux))
        out, grad = compiled(jax.numpy.asarray(x), *_tensor_args(args))
    elif backend == "tensorflow":
        import tensorflow as tf

        t = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(t)
            out = fn(t, *_tensor_args(args))
        grad = tape.gradient(out[0] if has_aux else out, t)
    elif backend == "torch":
        import torch

        t = keras.ops.convert_to_tensor(x)
        t = t.detach().clone().requires_grad_(True)
        out = fn(t, *_tensor_args(args))
        (grad,) = torch.autograd.grad(out[0] if has_aux else out, t)
        grad = grad.detach()
        out = (out[0].detach(), out[1]) if has_aux else out.detach()
    else:
        raise NotImplementedError(f"value_and_grad supports the tensorflow, jax and torch "
                                  f"backends, not {backend!r}.")
    grad = _to_numpy(grad)
    if has_aux:
        return (float(_to_numpy(out[0])), out[1]), grad
    return float(_to_numpy(out)), grad
