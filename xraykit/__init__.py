"""xraykit: helpers for a Keras 3 course on deep learning for chest X-rays.

Data flows one way: pixels (the pixel policy) → data (datasets, samples, images, dicom, synthetic,
tasks) → preprocessing and augmentation → learning (models, losses, optimizers, autodiff,
training, tuning, distribute) → judging (evaluation, calibration, explain, inference); plotting and
widgets sit on top. README.md's "Layout" says what each module owns.
"""

from xraykit import samples  # noqa: F401  (xraykit.samples, for the lessons)
from xraykit.datasets import (
    XRayDataset,
    course_data,
    download,
    info,
    list_datasets,
    load,
    load_folder,
)
from xraykit.dicom import dicom_summary, read_dicom
from xraykit.images import read_image, resize_square
from xraykit.profiles import Profile, get_profile
from xraykit.runtime import environment, quiet_start

__version__ = "0.1.0"

# Names that need keras, resolved on first use so that `import xraykit` does not import keras
# (and fix its backend) before a notebook has chosen KERAS_BACKEND.
_LAZY = {
    "build_model": "xraykit.models",
    "compile_model": "xraykit.training",
    "fit": "xraykit.training",
    "predict": "xraykit.inference",
    "grad_cam": "xraykit.explain",
}

__all__ = [
    "Profile", "XRayDataset", "build_model", "compile_model", "course_data", "dicom_summary",
    "download", "environment", "fit", "get_profile", "grad_cam", "info", "list_datasets", "load",
    "load_folder", "predict", "quiet_start", "read_dicom", "read_image", "resize_square",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xraykit' has no attribute {name!r}")
