"""Run profiles: how big a lesson's run is (image size, subset sizes, epochs, trials).

One environment variable, ``XRAYKIT_PROFILE``, selects the profile; notebooks read it in their
``parameters`` cell. ``smoke`` is for CI (seconds), ``cpu`` for a laptop (minutes, 28 px),
``gpu`` for real training on larger images, and ``auto`` picks ``gpu`` when the Keras backend
sees a GPU and ``cpu`` otherwise.
"""

from __future__ import annotations

import dataclasses
import os

PROFILE_ENV = "XRAYKIT_PROFILE"


@dataclasses.dataclass(frozen=True)
class Profile:
    """Sizes of one run of a lesson.

    Attributes:
        name: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        image_size: Side of the square images, in pixels.
        max_train: Largest number of training images (``None`` = all).
        max_val: Largest number of validation images (``None`` = all).
        max_test: Largest number of test images (``None`` = all).
        epochs: Training epochs of a lesson's main runs.
        batch_size: Mini-batch size.
        tuner_trials: Trials of a hyperparameter search.
        tuner_epochs: Epochs per trial of a hyperparameter search.
        mixed_precision: Whether lessons switch Keras to a mixed-precision policy.
    """

    name: str
    image_size: int
    max_train: int | None
    max_val: int | None
    max_test: int | None
    epochs: int
    batch_size: int
    tuner_trials: int
    tuner_epochs: int
    mixed_precision: bool = False


PROFILES = {
    "smoke": Profile("smoke", image_size=28, max_train=256, max_val=128, max_test=128,
                     epochs=1, batch_size=64, tuner_trials=2, tuner_epochs=1),
    "cpu": Profile("cpu", image_size=28, max_train=None, max_val=None, max_test=None,
                   epochs=12, batch_size=64, tuner_trials=6, tuner_epochs=4),
    "gpu": Profile("gpu", image_size=64, max_train=None, max_val=None, max_test=None,
                   epochs=30, batch_size=128, tuner_trials=16, tuner_epochs=10,
                   mixed_precision=True),
}


def gpu_available() -> bool:
    """Tells whether the active Keras backend can see a GPU.

    Returns:
        ``True`` when at least one GPU device is visible to the backend.
    """
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            return any(d.platform == "gpu" for d in jax.devices())
        if backend == "tensorflow":
            import tensorflow as tf

            return bool(tf.config.list_physical_devices("GPU"))
        if backend == "torch":
            import torch

            return torch.cuda.is_available()
    except Exception:  # a backend without a GPU runtime raises on device queries
        return False
    return False


def get_profile(name: str | Profile | None = None) -> Profile:
    """Returns the run profile to use.

    Args:
        name: ``"smoke"``, ``"cpu"``, ``"gpu"`` or ``"auto"``, or a :class:`Profile` (returned
            as is). ``None`` reads ``XRAYKIT_PROFILE`` and defaults to ``"auto"``.

    Returns:
        The :class:`Profile`.

    Raises:
        ValueError: If the name is not a known profile.
    """
    if isinstance(name, Profile):
        return name
    name = (name or os.environ.get(PROFILE_ENV) or "auto").strip().lower()
    if name == "auto":
        name = "gpu" if gpu_available() else "cpu"
    if name not in PROFILES:
        raise ValueError(
            f"Unknown profile {name!r}: use one of {', '.join(PROFILES)} or 'auto' "
            f"(set it with the {PROFILE_ENV} environment variable)."
        )
    return PROFILES[name]
