"""xraykit.autodiff.value_and_grad: one gradient function for every backend."""

import keras
import numpy as np
import pytest
from keras import ops

from xraykit.autodiff import value_and_grad


def _rosenbrock(w):
    return (1.0 - w[0]) ** 2 + 100.0 * (w[1] - w[0] ** 2) ** 2


def _native_value_and_grad(fn, w):
    """The active backend's own gradient call, written out as a lesson shows it."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        t = tf.convert_to_tensor(w)
        with tf.GradientTape() as tape:
            tape.watch(t)
            value = fn(t)
        return float(value), tape.gradient(value, t).numpy()
    if backend == "jax":
        import jax

        value, grad = jax.value_and_grad(fn)(jax.numpy.asarray(w))
        return float(value), np.asarray(grad)
    pytest.skip(f"no native reference written for {backend}")


def test_value_and_grad_matches_the_formula_and_the_backend():
    w = np.array([-1.5, 2.0], np.float32)
    value, grad = value_and_grad(_rosenbrock, w)
    x, y = w.astype(np.float64)
    expected = [-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)]
    assert value == pytest.approx((1 - x) ** 2 + 100 * (y - x * x) ** 2, rel=1e-6)
    np.testing.assert_allclose(grad, expected, rtol=1e-5)
    native_value, native_grad = _native_value_and_grad(_rosenbrock, w)
    assert value == pytest.approx(native_value)
    np.testing.assert_allclose(grad, native_grad, rtol=1e-6)


def test_value_and_grad_extra_arguments_and_aux():
    w = np.array([1.0, 2.0, 3.0], np.float32)
    scale = np.array([2.0, 0.0, -1.0], np.float32)

    def fn(v, s):
        return ops.sum(v * s), v * 2.0

    (value, aux), grad = value_and_grad(fn, w, scale, has_aux=True)
    assert value == pytest.approx(-1.0)
    np.testing.assert_allclose(grad, scale)
    np.testing.assert_allclose(ops.convert_to_numpy(aux), w * 2)
    # A second call with other arguments (compiled once under JAX) gives the new answer.
    (value, _), grad = value_and_grad(fn, w, -scale, has_aux=True)
    assert value == pytest.approx(1.0)
    np.testing.assert_allclose(grad, -scale)
