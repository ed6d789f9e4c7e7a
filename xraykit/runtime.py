"""The runtime a lesson runs in: a quiet Keras start, the Keras version floor, devices, precision.

Every lesson's setup cell calls :func:`quiet_start` and :func:`environment`; lessons that train
call :func:`set_precision` with their profile (mixed precision where the profile asks for it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pathlib
import sys
import warnings

#: The oldest Keras with every layer the course uses
#: (``keras.layers.ContrastLimitedAdaptiveHistogramEqualization`` arrived in 3.14).
KERAS_MIN_VERSION = (3, 14)


@contextlib.contextmanager
def _stderr_descriptor_silenced():
    """Sends what C/C++ code writes to file descriptor 2 to the null device, then restores it.

    TensorFlow's native libraries print their start-up lines (oneDNN notice, missing CUDA drivers)
    before their logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` cannot hide them; Jupyter
    shows them as a red block. Python's ``sys.stderr`` is flushed first and keeps working after.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (some embedded interpreters): nothing to silence
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_keras_version(version: str | None = None) -> None:
    """Checks that Keras is new enough for the course.

    Args:
        version: A Keras version string; ``None`` reads the installed ``keras.__version__``.

    Raises:
        RuntimeError: If the version is older than :data:`KERAS_MIN_VERSION`; the message says
            what to install.
    """
    if version is None:
        import keras

        version = keras.__version__
    floor = ".".join(map(str, KERAS_MIN_VERSION))
    if _version_tuple(version)[:2] < KERAS_MIN_VERSION:
        raise RuntimeError(
            f"The course needs Keras {floor} or newer, and this environment has Keras {version}. "
            f'Run  %pip install -U "keras>={floor}"  then restart the kernel (in Colab: Runtime > '
            f"Restart session) and run the setup cell again.")


def quiet_start(backend: str = "tensorflow"):
    """Imports Keras without TensorFlow's native start-up lines and checks its version.

    Sets ``KERAS_BACKEND`` (unless already set) and ``TF_CPP_MIN_LOG_LEVEL=3`` (unless already
    set), then imports Keras with file descriptor 2 silenced: on a CPU machine TensorFlow would
    otherwise print a oneDNN notice, "Could not find cuda drivers" twice and a ``cuInit`` error,
    none of which a student can act on. Under another backend, an installed TensorFlow is imported
    then too, because ``keras.utils.set_random_seed`` imports it later anyway. Python warnings and
    errors are not affected. Under JAX, keeps compiled programs on disk
    (:func:`use_compilation_cache`). Then registers xraykit's custom Keras objects (by importing
    :mod:`xraykit.inference`), so that ``keras.saving.load_model`` opens models saved by the
    course.

    Args:
        backend: The Keras backend to use when ``KERAS_BACKEND`` is not set.

    Returns:
        The imported ``keras`` module.

    Raises:
        RuntimeError: If Keras is older than the course needs.
    """
    os.environ.setdefault("KERAS_BACKEND", backend)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "keras" not in sys.modules:
        with _stderr_descriptor_silenced():
            import keras  # noqa: F401  (the import is the point: its native start-up is silenced)

            from xraykit.profiles import gpu_available

            gpu_available()  # the first device query is where TensorFlow reports cuInit
            if keras.backend.backend() != "tensorflow" and importlib.util.find_spec("tensorflow"):
                # keras.utils.set_random_seed (and tf.data input) import TensorFlow under any
                # backend when it is installed; import it now, while its start-up is silenced.
                with contextlib.suppress(ImportError):  # a broken install: Keras skips it too
                    import tensorflow  # noqa: F401
    import keras

    check_keras_version(keras.__version__)
    use_compilation_cache()
    if keras.backend.backend() == "torch":
        # Keras 3.15's torch count_nonzero (inside RandAugment and others) calls Tensor.T on
        # 0-D tensors, for which PyTorch warns on every call: nothing a student can act on.
        warnings.filterwarnings("ignore", message="Tensor.T is deprecated on 0-D tensors",
                                category=UserWarning)
    # Registers xraykit's custom layers, losses and metrics, so that keras.saving.load_model opens
    # a model saved from any lesson in a fresh kernel.
    import xraykit.inference  # noqa: F401

    return keras


#: JAX's own variable for its persistent compilation cache; when set, JAX already uses it.
JAX_CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"
#: Largest size of the compilation cache xraykit sets up (least recently used entries go first).
JAX_CACHE_MAX_BYTES = 1 << 30


def use_compilation_cache(folder: str | os.PathLike | None = None) -> pathlib.Path | None:
    """Keeps JAX's compiled programs on disk, so that a model built again compiles in no time.

    Under JAX, every newly built Keras model compiles its train, test and predict steps anew
    (seconds on a CPU for a small CNN, minutes for a large backbone), even when the same
    architecture at the same shapes was compiled a minute before; the lessons build many such
    models (one per seed and setting). JAX's persistent compilation cache keys each program by its
    computation, so a repeated one is read back instead of compiled. Results are unchanged.

    Does nothing under TensorFlow or torch, nor when ``JAX_COMPILATION_CACHE_DIR`` or JAX's
    ``jax_compilation_cache_dir`` option is already set (yours wins).

    Args:
        folder: Where to keep the cache; default
            ``xraykit.downloads.cache_dir()/xraykit/jax_compilation_cache``.

    Returns:
        The cache folder JAX uses, or ``None`` under another backend.
    """
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    configured = os.environ.get(JAX_CACHE_ENV) or jax.config.jax_compilation_cache_dir
    if configured:
        return pathlib.Path(configured)
    from xraykit import downloads

    folder = pathlib.Path(folder or downloads.cache_dir() / "xraykit" / "jax_compilation_cache")
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    if jax.config.jax_compilation_cache_max_size == -1:  # unlimited by default
        jax.config.update("jax_compilation_cache_max_size", JAX_CACHE_MAX_BYTES)
    return folder


class _RetracingNoticeFilter(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" notice and passes every other record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Returns False for the retracing notice only."""
        return "triggered tf.function retracing" not in record.getMessage()


def hide_retracing_notice() -> None:
    """Hides TensorFlow's notice that a ``tf.function`` is retracing; other warnings still show.

    A lesson that builds and trains several models in a row on purpose makes each new model trace
    its own functions, and TensorFlow then logs a notice whose advice (fixed input signatures,
    functions defined outside loops) is about a different situation. Calling this again adds no
    second filter; under other backends it changes nothing.
    """
    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _RetracingNoticeFilter) for f in logger.filters):
        logger.addFilter(_RetracingNoticeFilter())


def gpu_compute_capability() -> tuple[int, int] | None:
    """The CUDA compute capability of the first GPU the Keras backend sees.

    Returns:
        ``(major, minor)``, e.g. ``(7, 5)`` for a T4 or ``(9, 0)`` for an H100; ``None`` when the
        backend sees no CUDA GPU or cannot tell.
    """
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            if gpus and getattr(gpus[0], "compute_capability", None):
                major, minor = str(gpus[0].compute_capability).split(".")[:2]
                return int(major), int(minor)
        elif backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                capability = tf.config.experimental.get_device_details(gpus[0]).get(
                    "compute_capability")
                if capability:
                    return int(capability[0]), int(capability[1])
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return tuple(torch.cuda.get_device_capability(0))
    except Exception:  # a backend without a GPU runtime raises on device queries
        return None
    return None


def policy_for(capability: tuple[int, int] | None) -> str:
    """The Keras dtype policy that suits a device.

    ``mixed_bfloat16`` needs compute capability 8.0 or newer (A100, L4, H100); older GPUs such as
    Colab's free T4 (7.5) have no bfloat16 and get ``mixed_float16``, whose loss scaling Keras adds
    by itself in ``compile``; a CPU gets ``float32``, since mixed precision only slows it down.

    Args:
        capability: ``(major, minor)`` of the GPU, or ``None`` for no GPU.

    Returns:
        ``"mixed_bfloat16"``, ``"mixed_float16"`` or ``"float32"``.
    """
    if capability is None:
        return "float32"
    return "mixed_bfloat16" if tuple(capability) >= (8, 0) else "mixed_float16"


def mixed_precision_policy() -> str:
    """The dtype policy for this machine's device, for ``keras.mixed_precision.set_global_policy``.

    Returns:
        :func:`policy_for` the GPU that the active backend sees (``"float32"`` without one).
    """
    return policy_for(gpu_compute_capability())


def precision_policy(profile=None) -> str:
    """The dtype policy a run profile asks for on this machine.

    Args:
        profile: A profile or its name (see :mod:`xraykit.profiles`; ``None`` reads
            ``XRAYKIT_PROFILE``). Its ``precision`` is ``"auto"`` (the device chooses, see
            :func:`mixed_precision_policy`), ``"float32"``, or a policy forced on any device.

    Returns:
        ``"float32"``, ``"mixed_bfloat16"`` or ``"mixed_float16"``.
    """
    from xraykit.profiles import get_profile

    precision = get_profile(profile).precision
    return mixed_precision_policy() if precision == "auto" else precision


def set_precision(profile=None) -> str:
    """Sets Keras' global dtype policy to :func:`precision_policy` of a profile, and says which.

    Under ``mixed_float16`` Keras' ``compile`` wraps the optimizer in a ``LossScaleOptimizer``
    by itself; xraykit's models keep their output layer in float32 under either mixed policy.

    Args:
        profile: A profile or its name (``None`` reads ``XRAYKIT_PROFILE``).

    Returns:
        The policy now in force.
    """
    import keras

    policy = precision_policy(profile)
    keras.mixed_precision.set_global_policy(policy)
    return policy


def _installed_version(package: str) -> str:
    """The installed distribution's version (``"not installed"`` when run from a bare checkout)."""
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, str]:
    """Versions, backend, device, precision, profile and data, as the lessons' setup cell prints.

    Returns:
        A dict of names to versions or descriptions; also printed one per line.
    """
    import platform

    import keras
    import numpy

    capability = gpu_compute_capability()
    if capability is not None:
        device = f"GPU (compute capability {capability[0]}.{capability[1]})"
    else:
        from xraykit.profiles import gpu_available

        device = "GPU" if gpu_available() else "CPU"
    details = {
        "python": platform.python_version(),
        "xraykit": _installed_version("xraykit"),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "numpy": numpy.__version__,
        "device": device,
        "precision": policy_for(capability) + (" (gpu profile)" if capability else ""),
        # What `make lab` / `course lab` / `course run` set for the kernel: shown, not guessed.
        "profile": os.environ.get("XRAYKIT_PROFILE") or "auto (XRAYKIT_PROFILE not set)",
        "data": os.environ.get("XRAYKIT_DATA") or "downloads (XRAYKIT_DATA not set)",
    }
    for key, value in details.items():
        print(f"{key:>9}: {value}")
    return details
