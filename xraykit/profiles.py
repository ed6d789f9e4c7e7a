"""Run profiles: how big a lesson's run is, and which of its branches it takes.

One environment variable, ``XRAYKIT_PROFILE``, selects the profile; notebooks read it in their
``parameters`` cell. ``smoke`` is for CI (seconds), ``cpu`` for a laptop (minutes, 28 px),
``gpu`` for real training on larger images, ``gpu-smoke`` takes every choice of ``gpu`` (image
size, candidate lists, pretrained weights, seeds, mixed precision) at ``smoke``'s sizes so that a
CPU can check the GPU path, and ``auto`` picks ``gpu`` when the Keras backend sees a GPU and
``cpu`` otherwise. Lessons read the fields; none tests a profile's name.
"""

from __future__ import annotations

import dataclasses
import os

PROFILE_ENV = "XRAYKIT_PROFILE"
#: Overrides any profile's ``precision`` (e.g. ``mixed_float16`` to take a T4's path anywhere).
PRECISION_ENV = "XRAYKIT_PRECISION"
#: The values ``Profile.precision`` and ``XRAYKIT_PRECISION`` take; ``"auto"`` lets the device
#: choose (:func:`xraykit.runtime.mixed_precision_policy`).
PRECISIONS = ("float32", "auto", "mixed_bfloat16", "mixed_float16")


@dataclasses.dataclass(frozen=True)
class Profile:
    """Sizes of one run of a lesson, and the branches it takes.

    Attributes:
        name: ``"smoke"``, ``"cpu"``, ``"gpu"`` or ``"gpu-smoke"`` (for printing only).
        image_size: Side of the square images, in pixels.
        max_train: Largest number of training images (``None`` = all).
        max_val: Largest number of validation images (``None`` = all).
        max_test: Largest number of test images (``None`` = all).
        epochs: Training epochs of a lesson's main runs.
        batch_size: Mini-batch size.
        tuner_trials: Trials of a hyperparameter search.
        tuner_epochs: Epochs per trial of a hyperparameter search.
        precision: Keras dtype policy: ``"float32"``, ``"auto"`` (chosen by the device:
            ``mixed_bfloat16`` on compute capability ≥ 8, ``mixed_float16`` below, ``float32`` on
            a CPU), or a policy forced whatever the device. ``XRAYKIT_PRECISION`` overrides it.
        seeds: Trainings per compared setting (mean ± sd over seeds when more than one).
        n_boot: Bootstrap resamples of an interval.
        width: Filters of the first convolution block of the lessons' CNNs.
        quick: Fewer settings per comparison (the smoke run of a lesson: seconds, not minutes).
        pretrained: Whether lessons try ImageNet weights (with an offline fallback).
        folder_size: Side of the images lesson 8 streams from a folder of files (at least
            128 px: findings such as nodules vanish at 28 px).
        folder_model: The network lesson 8 trains on them (:func:`xraykit.models.build_model`
            name): DenseNet-121, CheXNet's choice, except where seconds count.
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
    precision: str = "float32"
    seeds: int = 1
    n_boot: int = 1000
    width: int = 16
    quick: bool = False
    pretrained: bool = False
    folder_size: int = 128
    folder_model: str = "densenet121"

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"profile {self.name!r}: precision must be one of {PRECISIONS}, "
                             f"not {self.precision!r}.")

    @property
    def mixed_precision(self) -> bool:
        """Whether the profile may run in a mixed-precision policy (``precision`` not float32)."""
        return self.precision != "float32"

    @property
    def seed_list(self) -> list[int]:
        """``[0, 1, …]``: one offset per seed, to add to a lesson's ``SEED``."""
        return list(range(self.seeds))


_GPU = dict(image_size=64, batch_size=128, precision="auto", seeds=3, width=32, pretrained=True,
            folder_size=224)
_SMOKE_SIZES = dict(max_train=256, max_val=128, max_test=128, epochs=1, tuner_trials=2,
                    tuner_epochs=1)

PROFILES = {
    "smoke": Profile("smoke", image_size=28, batch_size=64, n_boot=200, quick=True,
                     folder_model="small_cnn", **_SMOKE_SIZES),
    # A laptop with internet gets ImageNet weights too: lesson 2 extracts a small backbone's
    # features once and trains a linear probe on them, which a CPU does in about a minute.
    "cpu": Profile("cpu", image_size=28, max_train=None, max_val=None, max_test=None,
                   epochs=12, batch_size=64, tuner_trials=6, tuner_epochs=4, pretrained=True),
    "gpu": Profile("gpu", max_train=None, max_val=None, max_test=None, epochs=30,
                   tuner_trials=16, tuner_epochs=10, **_GPU),
    # The gpu profile's every choice at smoke sizes; mixed precision forced even on a CPU (bfloat16
    # by default; XRAYKIT_PRECISION=mixed_float16 takes the T4 path), two seeds so that the
    # several-seed branches run at half the cost of three. The CNN width is a size, not a branch
    # (no lesson tests it): smoke's 16 filters instead of the gpu profile's 32.
    "gpu-smoke": Profile("gpu-smoke", n_boot=200,
                         **{**_GPU, "precision": "mixed_bfloat16", "seeds": 2, "folder_size": 128,
                            "width": 16},
                         **_SMOKE_SIZES),
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
        name: ``"smoke"``, ``"cpu"``, ``"gpu"``, ``"gpu-smoke"`` or ``"auto"``, or a
            :class:`Profile`. ``None`` reads ``XRAYKIT_PROFILE`` and defaults to ``"auto"``.

    Returns:
        The :class:`Profile`, with ``precision`` replaced by ``XRAYKIT_PRECISION`` when set.

    Raises:
        ValueError: If the name is not a known profile, or ``XRAYKIT_PRECISION`` is not a
            known precision.
    """
    if isinstance(name, Profile):
        profile = name
    else:
        profile = _named_profile(name)
    precision = (os.environ.get(PRECISION_ENV) or "").strip().lower()
    if not precision or precision == profile.precision:
        return profile
    if precision not in PRECISIONS:
        raise ValueError(f"{PRECISION_ENV}={precision!r}: use one of {', '.join(PRECISIONS)}.")
    return dataclasses.replace(profile, precision=precision)


def _named_profile(name: str | None) -> Profile:
    name = (name or os.environ.get(PROFILE_ENV) or "auto").strip().lower().replace("_", "-")
    if name == "auto":
        name = "gpu" if gpu_available() else "cpu"
    if name not in PROFILES:
        raise ValueError(
            f"Unknown profile {name!r}: use one of {', '.join(PROFILES)} or 'auto' "
            f"(set it with the {PROFILE_ENV} environment variable)."
        )
    return PROFILES[name]
