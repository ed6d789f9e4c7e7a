"""Data-parallel training over the devices of one machine, with the backend's own engine.

Each batch is split across the devices and the gradients are averaged.
:func:`data_parallel_scope` hides the backend's engine: ``keras.distribution.DataParallel`` under
JAX, ``tf.distribute.MirroredStrategy`` under TensorFlow. Build, compile and fit the model inside
the scope. On a CPU you can try it with virtual devices: call :func:`virtual_cpu_devices` before
the backend starts; :func:`data_parallel_check` (``python -m xraykit data-parallel``) does, and
reports where a tiny model's variables live.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

__all__ = [
    "data_parallel_check", "data_parallel_scope", "distribution_strategy", "num_replicas",
    "virtual_cpu_devices",
]


def virtual_cpu_devices(n: int = 2) -> int:
    """Splits the CPU into ``n`` virtual devices, to try multi-device training without GPUs.

    Must run before the backend initializes its devices (first thing in a fresh process,
    before any model or tensor is created). Under JAX it sets ``jax_num_cpu_devices`` (and
    ``XLA_FLAGS=--xla_force_host_platform_device_count=n`` for older JAX); under TensorFlow it
    sets ``n`` logical CPU devices.

    Args:
        n: Number of devices.

    Returns:
        Number of devices the backend now sees.

    Raises:
        RuntimeError: If the backend was already initialized with another device count.
    """
    import keras

    backend = keras.backend.backend()
    previous_flags = os.environ.get("XLA_FLAGS")
    if backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_force_host_platform_device_count" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
        import jax

        try:
            jax.config.update("jax_num_cpu_devices", int(n))
        except (AttributeError, RuntimeError, ValueError):
            pass  # older JAX (uses XLA_FLAGS) or backend already started (checked below)
        count = len(keras.distribution.list_devices("cpu"))
    elif backend == "tensorflow":
        import tensorflow as tf

        cpus = tf.config.list_physical_devices("CPU")
        try:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(int(n))])
        except RuntimeError:
            pass  # already initialized; checked below
        count = len(keras.distribution.list_devices("cpu"))
    else:
        raise NotImplementedError(f"virtual_cpu_devices supports jax and tensorflow, not "
                                  f"{backend}.")
    if count != n:
        if previous_flags is None:  # leave the environment as it was
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = previous_flags
        raise RuntimeError(
            f"The {backend} backend sees {count} CPU device(s), not {n}: call "
            "virtual_cpu_devices() first thing in a fresh process (before building any model), "
            "or restart the kernel.")
    return count


def _devices(devices):
    """The given devices, else Keras' list: all GPUs (or TPUs), else all CPU devices."""
    import keras

    return list(devices) if devices is not None else keras.distribution.list_devices()


def distribution_strategy(devices: Sequence[str] | None = None):
    """The backend's data-parallel engine over all (or the given) devices.

    Args:
        devices: Device names (default: all GPUs, else all CPU devices).

    Returns:
        ``keras.distribution.DataParallel`` under JAX; ``tf.distribute.MirroredStrategy``
        under TensorFlow.

    Raises:
        NotImplementedError: Under another backend (use torch's own DDP there).
    """
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        return keras.distribution.DataParallel(devices=_devices(devices))
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy(devices=_devices(devices))
    raise NotImplementedError(
        f"data-parallel training here covers the jax and tensorflow backends, not {backend}; "
        "with torch use torch.nn.parallel.DistributedDataParallel.")


def num_replicas(strategy) -> int:
    """Number of devices a strategy from :func:`distribution_strategy` splits batches over."""
    if hasattr(strategy, "num_replicas_in_sync"):
        return int(strategy.num_replicas_in_sync)
    return int(len(strategy.device_mesh.devices.flatten()))


@contextlib.contextmanager
def data_parallel_scope(devices: Sequence[str] | None = None):
    """A scope in which models are built, compiled and trained data-parallel.

    Example::

        with data_parallel_scope() as strategy:
            model = build_model("small_cnn")
            compile_model(model)
            model.fit(x, y, batch_size=64 * num_replicas(strategy))

    The global batch is split evenly across devices: make it a multiple of
    :func:`num_replicas`.

    Args:
        devices: Device names (default: all GPUs, else all CPU devices).

    Yields:
        The strategy of :func:`distribution_strategy`.
    """
    strategy = distribution_strategy(devices)
    with strategy.scope():
        yield strategy


def data_parallel_check(n_devices: int = 2, steps: int = 4, batch_size: int = 32,
                        seed: int = 0) -> dict:
    """Trains a tiny CNN data-parallel on ``n_devices`` virtual CPU devices; returns a report.

    What ``python -m xraykit data-parallel`` runs. Call it first thing in a fresh process (see
    :func:`virtual_cpu_devices`).

    Args:
        n_devices: Virtual CPU devices to split the CPU into.
        steps: Batches per epoch (two epochs on synthetic phantoms).
        batch_size: Global batch size (split across the devices).
        seed: Seed of the data and the weights.

    Returns:
        ``{"backend", "strategy", "replicas", "variable_devices", "loss", "weights_changed",
        "weights_total"}``: the strategy's class name, the devices a kernel lives on, the loss
        per epoch and how many weight arrays training changed.

    Raises:
        RuntimeError: If the backend already started with another device count.
    """
    virtual_cpu_devices(n_devices)
    import keras
    import numpy as np

    from xraykit import models
    from xraykit.synthetic import phantoms

    keras.utils.set_random_seed(seed)
    x, y, _ = phantoms(batch_size * steps, image_size=28, seed=seed)
    y = np.asarray(y).reshape(len(y), -1)[:, :1].astype("float32")
    with data_parallel_scope() as strategy:
        model = models.build_model("small_cnn", input_shape=(28, 28, 1), width=8, depth=2,
                                   seed=seed)
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="binary_crossentropy")
        before = [np.array(w) for w in model.get_weights()]
        history = model.fit(x, y, batch_size=batch_size, epochs=2, verbose=0, shuffle=False)
        after = model.get_weights()
        kernel = model.trainable_variables[0].value
        if keras.backend.backend() == "tensorflow":  # a MirroredVariable: one copy per device
            per_replica = [str(v.device) for v in getattr(kernel, "values", [kernel])]
        else:  # a jax.Array, replicated over the mesh
            per_replica = sorted(str(d) for d in kernel.sharding.device_set)
    changed = sum(not np.allclose(a, b) for a, b in zip(before, after))
    return {
        "backend": keras.backend.backend(),
        "strategy": type(strategy).__name__,
        "replicas": num_replicas(strategy),
        "variable_devices": per_replica,
        "loss": [float(v) for v in history.history["loss"]],
        "weights_changed": int(changed),
        "weights_total": len(before),
    }
