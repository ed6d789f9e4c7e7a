"""Shared test fixtures: the real radiographs in ../shared/data, reached through XRAYKIT_DATA."""

import os
import pathlib

import matplotlib
import pytest

matplotlib.use("Agg")  # figures are drawn, never shown

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get("XRAYKIT_DATA") or ROOT.parent / "shared" / "data")


def _require(path: pathlib.Path) -> pathlib.Path:
    if not path.exists():
        pytest.skip(f"real test data not found at {path}: "
                    "set XRAYKIT_DATA to the shared data folder")
    return path


REAL_DATA_FIXTURES = {"shared_data", "pneumonia_npz", "pneumonia", "dicom_dir", "nih_dir"}

# Test modules whose outcome does not depend on the Keras backend (files, registry, pixels,
# NumPy/scikit-learn statistics, figures, the command line, the notebook harness): they run once,
# in the TensorFlow run. Every other test is marked ``backend`` and runs under each backend
# (``make test-jax``/``test-torch`` select ``-m backend``). A new test module is backend-sensitive
# until it is listed here.
BACKEND_FREE = {
    "test_calibration", "test_checks", "test_course", "test_course_data", "test_datasets",
    "test_datasets_npz", "test_dicom", "test_downloads", "test_evaluation", "test_files",
    "test_folders", "test_images", "test_install", "test_layout", "test_lesson_00",
    "test_lesson_08", "test_notebooks", "test_plotting", "test_profiles_cli", "test_registry",
    "test_registry_safety", "test_dicom_reliability", "test_images_reliability", "test_runtime",
    "test_samples", "test_synthetic", "test_tasks", "test_widgets", "test_exercises",
    "test_grading", "test_lab", "test_site",
}


def one_backbone_off_tensorflow(params, kept="resnet50v2"):
    """A parametrization over model families: under JAX and torch, one ImageNet backbone only.

    An eager call of a large backbone dispatches hundreds of layers one by one; under JAX or torch
    on a CPU that takes one to two minutes per backbone, against seconds under TensorFlow. xraykit's
    code around a backbone (upsampling, grey to RGB, each preprocessing convention, the head) is
    the same for all of them, and the conventions' layers are checked under every backend by
    tests/test_saving.py; so off TensorFlow the other backbones show as skipped.

    Args:
        params: Family names, or tuples whose first item is one.
        kept: The backbone that runs under every backend.

    Returns:
        ``params``, with a skip mark on the other backbones off TensorFlow.
    """
    from xraykit.models import model_info

    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        return params
    reason = "eager calls of this backbone run under TensorFlow only (one_backbone_off_tensorflow)"
    marked = []
    for param in params:
        values = param if isinstance(param, tuple) else (param,)
        skipped = values[0] != kept and model_info(values[0]).kind == "backbone"
        marked.append(pytest.param(*values, marks=pytest.mark.skip(reason=reason))
                      if skipped else param)
    return marked


def write_phantom_npz(path: pathlib.Path, per_split: int) -> pathlib.Path:
    """Writes ``per_split`` synthetic phantoms per split in MedMNIST's npz layout; returns path."""
    import numpy as np

    from xraykit import synthetic

    images, labels, _ = synthetic.phantoms(3 * per_split, image_size=28, seed=0)
    images = np.round(images[..., 0] * 255).astype(np.uint8)
    np.savez(path, **{f"{split}_{kind}": array[i * per_split:(i + 1) * per_split]
                      for i, split in enumerate(("train", "val", "test"))
                      for kind, array in (("images", images), ("labels", labels))})
    return path


def pytest_collection_modifyitems(items):
    """Marks tests ``real_data`` (they read ../shared/data) and ``backend`` (backend-sensitive)."""
    for item in items:
        if REAL_DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_data)
        if item.module.__name__.rsplit(".", 1)[-1] not in BACKEND_FREE:
            item.add_marker(pytest.mark.backend)


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """The folder of real radiographs (see ../shared/data/README.md)."""
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def pneumonia_npz(shared_data) -> pathlib.Path:
    """PneumoniaMNIST 28 px, rebuilt copy (not byte-identical to the official file)."""
    return _require(shared_data / "pneumoniamnist" / "pneumoniamnist_28.npz")


@pytest.fixture(scope="session")
def pneumonia(pneumonia_npz):
    """The PneumoniaMNIST dataset object (full splits)."""
    from xraykit.datasets import load

    return load(pneumonia_npz)


@pytest.fixture(scope="session")
def small_data():
    """A smoke-sized training set (256/128/128, 28 px) for tests of the training code.

    The stratified smoke subset of the real PneumoniaMNIST when ../shared/data is there, else
    synthetic phantoms of the same sizes: these tests check the code, not the radiographs, so
    they run (and can fail) on any machine.
    """
    path = SHARED_DATA / "pneumoniamnist" / "pneumoniamnist_28.npz"
    if path.is_file():
        from xraykit.datasets import load

        return load(path).for_profile("smoke")
    from xraykit.datasets import synthetic

    return synthetic(n=1024, image_size=28, seed=0).for_profile("smoke")


@pytest.fixture(scope="session")
def dicom_dir(shared_data) -> pathlib.Path:
    """Folder with the two real DICOM chest radiographs."""
    return _require(shared_data / "dicom")


@pytest.fixture(scope="session")
def nih_dir(shared_data) -> pathlib.Path:
    """The 64-image NIH ChestX-ray14 sample with labels.csv."""
    return _require(shared_data / "nih_cxr14_sample")


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same seeds."""
    import keras

    keras.utils.set_random_seed(0)
    yield


@pytest.fixture(autouse=True)
def _close_figures():
    """Every test starts and ends without open matplotlib figures."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def six_images(small_data):
    """Six training images of the small dataset, (6, 28, 28, 1) in [0, 1]."""
    return small_data.x_train[:6]
