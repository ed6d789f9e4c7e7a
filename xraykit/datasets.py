"""The dataset object and its sources: registered files, ``.npz`` arrays, phantoms, course data.

:class:`XRayDataset` holds a dataset's train/validation/test arrays. :func:`load` gives one from
a registered name (downloaded and verified once, see :mod:`xraykit.downloads`) or a local
``.npz`` (validated by :func:`load_npz`); :func:`synthetic` from procedural phantoms;
:func:`course_data` is what a lesson runs on (a local copy, else the download, else phantoms,
saying which).

The registry (:mod:`xraykit.registry`), the downloads (:mod:`xraykit.downloads`) and folders of
image files (:mod:`xraykit.folders`) have their own modules; their public names are re-exported
here, so ``xraykit.datasets.download`` or ``from xraykit.datasets import load_folder`` work as
before.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import sys
import zipfile
import zlib
from collections.abc import Sequence

import numpy as np

from xraykit import synthetic as _synthetic
from xraykit.downloads import (  # noqa: F401  (re-exported: xraykit.datasets.<name>)
    CACHE_ENV,
    DATA_ENV,
    DOWNLOAD_DEADLINE,
    DOWNLOAD_TIMEOUT,
    MIRROR_URL_ENV,
    cache_dir,
    cache_folder,
    cached_state,
    download,
    fetch_verified,
    verify,
)
from xraykit.files import file_checksum  # noqa: F401  (re-exported)
from xraykit.folders import IMAGE_SUFFIXES, FolderData, list_images, load_folder  # noqa: F401
from xraykit.pixels import resize_batch, to_unit_batch
from xraykit.registry import (  # noqa: F401  (re-exported)
    expected_hash,
    info,
    list_datasets,
    registry,
    registry_path,
)
from xraykit.tasks import TASKS, check_task, task_from_labels

SPLITS = ("train", "val", "test")


# --------------------------------------------------------------------------------------------
# The dataset object
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class XRayDataset:
    """Train/validation/test arrays of one dataset.

    Images are float32 ``(N, H, W, 1)`` in [0, 1]. Labels are int32 ``(N, 1)`` for binary
    tasks, ``(N, L)`` for multi-label tasks (float32 with NaN where a label is unknown) and
    ``(N,)`` class indices for multi-class tasks.

    Attributes:
        name: Dataset name.
        task: ``"binary"``, ``"multilabel"`` or ``"multiclass"``.
        class_names: Names of the classes (binary: negative then positive).
        x_train: Training images.
        y_train: Training labels.
        x_val: Validation images.
        y_val: Validation labels.
        x_test: Test images.
        y_test: Test labels.
        source: Where the data came from (a path, a URL, or ``"synthetic"``).
        synthetic: Whether the images are procedural phantoms.
    """

    name: str
    task: str
    class_names: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str = ""
    synthetic: bool = False

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one image, ``(H, W, 1)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes (labels for multi-label, 1 output for binary)."""
        return len(self.class_names)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Returns ``(images, labels)`` of ``"train"``, ``"val"`` or ``"test"``."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {name!r}.")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def class_counts(self) -> dict[str, dict[str, int]]:
        """Counts positives per class in each split.

        Returns:
            ``{split: {class_name: count}}``; for binary tasks both classes are counted.
        """
        return {split: dict(zip(self.class_names, _class_counts(self.split(split)[1], self.task,
                                                                self.num_classes)))
                for split in SPLITS}

    def subset(self, max_train: int | None = None, max_val: int | None = None,
               max_test: int | None = None, seed: int = 0) -> XRayDataset:
        """Draws a stratified random subset of each split.

        Args:
            max_train: Most training images kept (``None`` keeps all).
            max_val: Most validation images kept.
            max_test: Most test images kept.
            seed: Random seed of the draw.

        Returns:
            A new :class:`XRayDataset`; class proportions are kept (on the first label for
            multi-label tasks).
        """
        rng = np.random.default_rng(seed)
        parts = {}
        for split, limit in zip(SPLITS, (max_train, max_val, max_test)):
            images, labels = self.split(split)
            if limit is None or limit >= len(images):
                parts[split] = (images, labels)
                continue
            index = _stratified_draw(labels, limit, rng)
            parts[split] = (images[index], labels[index])
        return dataclasses.replace(self, **{f"{axis}_{split}": parts[split][i]
                                            for split in SPLITS for i, axis in enumerate("xy")})

    def selection_split(self, fraction: float = 0.5, seed: int = 0) -> XRayDataset:
        """The course's split for honest model selection: choose on half of the test set.

        MedMNIST's validation split is an image-level draw from the training pool (same source,
        same patients' hospital and period), so it is easier than the test split and saturates:
        choices made on it are mostly noise. Its test split comes from the source's separate
        test set. This split keeps every choice on data like the test set and one half of that
        set untouched until the end:

        - ``train``: the official training **and** validation images (one pool);
        - ``val``: a stratified ``fraction`` of the official test images, the *selection* split
          (early stopping, thresholds, comparisons between models and settings);
        - ``test``: the rest of the official test images, looked at once, at the end.

        Benchmarks keep the official split, for comparison with published tables.

        Args:
            fraction: Share of the official test images that becomes the selection split
                (copies of one image count once and stay together).
            seed: Seed of the stratified draw (the same seed gives the same halves).

        Returns:
            A new :class:`XRayDataset` whose ``source`` says that it was re-split.

        Raises:
            ValueError: If ``fraction`` is not strictly between 0 and 1, or the test split is
                too small to give both parts an image of each class.
        """
        if "selection split" in self.source:
            raise ValueError(f"{self.name} is already a selection split ({self.source}).")
        select = _grouped_draw(self.x_test, self.y_test, fraction, seed, self.name)
        return dataclasses.replace(
            self,
            x_train=np.concatenate([self.x_train, self.x_val]),
            y_train=np.concatenate([self.y_train, self.y_val]),
            x_val=self.x_test[select], y_val=self.y_test[select],
            x_test=self.x_test[~select], y_test=self.y_test[~select],
            source=f"{self.source} (selection split: train = official train + val; val = "
                   f"{fraction:.0%} of official test, seed {seed}; test = the rest)",
        )

    def for_profile(self, profile, seed: int = 0) -> XRayDataset:
        """Cuts the splits to a run profile's sizes (see :mod:`xraykit.profiles`).

        Args:
            profile: A profile name or :class:`xraykit.profiles.Profile`.
            seed: Random seed of the stratified draw.

        Returns:
            The subset.
        """
        from xraykit.profiles import get_profile

        profile = get_profile(profile)
        return self.subset(profile.max_train, profile.max_val, profile.max_test, seed=seed)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s} {len(self.split(s)[0])}" for s in SPLITS)
        flag = " [SYNTHETIC]" if self.synthetic else ""
        return (f"XRayDataset({self.name}{flag}: {self.task}, classes {self.class_names}, "
                f"images {self.image_shape}, {sizes}; source {self.source})")


def _class_counts(labels: np.ndarray, task: str, num_classes: int) -> list[int]:
    """Images per class (binary: negatives and positives; multi-label: positives per label)."""
    if task == "multiclass":
        return np.bincount(labels.astype(int).ravel(), minlength=num_classes).tolist()
    if task == "binary":
        positives = int(np.nansum(labels))
        return [len(labels) - positives, positives]
    return np.nansum(labels, axis=0).astype(int).tolist()


def _strata(labels: np.ndarray) -> np.ndarray:
    """The stratum of each image: its (first) label, -1 where unknown."""
    return np.nan_to_num(labels.reshape(len(labels), -1)[:, 0], nan=-1).astype(int)


def _stratified_draw(labels: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``limit`` images, drawn keeping each stratum's share."""
    strata = _strata(labels)
    chosen = []
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        take = max(1, round(limit * len(members) / len(labels)))
        chosen.append(rng.choice(members, min(take, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))[:limit]


def _grouped_draw(images: np.ndarray, labels: np.ndarray, fraction: float, seed: int,
                  name: str) -> np.ndarray:
    """A mask selecting ``fraction`` of each stratum; copies of one image fall on one side.

    Raises:
        ValueError: If ``fraction`` is not strictly between 0 and 1, or a stratum is too small
            to have images on both sides.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be strictly between 0 and 1, got {fraction}.")
    strata = _strata(labels)
    # Byte-identical images (PneumoniaMNIST's test split holds a few) go to the same side.
    first_copy = {}
    group = np.array([first_copy.setdefault(image.tobytes(), i)
                      for i, image in enumerate(images)])
    rng = np.random.default_rng(seed)
    select = np.zeros(len(labels), bool)
    for value in np.unique(strata):
        groups = np.unique(group[strata == value])
        take = int(round(fraction * len(groups)))
        if take < 1 or take >= len(groups):
            raise ValueError(
                f"{name}: the test split has {len(groups)} image(s) of class {value}, "
                f"too few to put some in both the selection split and the final test.")
        select |= np.isin(group, rng.choice(groups, take, replace=False))
    return select


# --------------------------------------------------------------------------------------------
# Loading a .npz: each check a function, each error naming the file and the key
# --------------------------------------------------------------------------------------------
def _images_to_float(images: np.ndarray, path, key: str, scale: float | None = None) -> np.ndarray:
    """Converts one split's images to float32 ``(N, H, W, 1)`` in [0, 1].

    The file format's own rule (uint8, uint16, or floats with white = 1 or 255, one scale per
    file) is checked here; the rest is the pixel policy (:func:`xraykit.pixels.to_unit_batch`):
    scaling by type, NaN/inf refused, RGB to luminance.

    Args:
        images: ``(N, H, W)``, ``(N, H, W, 1)`` or ``(N, H, W, 3)`` array.
        path: The file the images came from (named in errors).
        key: Their key in that file (named in errors).
        scale: For float images, the value that means white (1 or 255); by default 1 when no
            value exceeds 1, else 255. Give it to decide once for every split of a file.

    Returns:
        Float32 ``(N, H, W, 1)`` in [0, 1].

    Raises:
        ValueError: If the shape or dtype is wrong, or float values are not finite or lie
            outside [0, 1] and [0, 255].
    """
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
        raise ValueError(f"{path}: {key} must be (N, H, W) or (N, H, W, 1|3), got shape "
                         f"{images.shape}. Save grayscale images as one (N, H, W) array.")
    if images.dtype.kind == "f" and images.size and np.isfinite(images).all():
        # A file's floats may mean white = 1 or white = 255: decided once, from the values.
        low, high = float(images.min()), float(images.max())
        scale = scale or (1.0 if high <= 1 else 255.0)
        if low < 0 or high > scale:
            raise ValueError(
                f"{path}: {key} holds float values in [{low:g}, {high:g}]; float images must lie "
                "in [0, 1] or [0, 255] (the same range in every split). Rescale them, e.g. "
                "(x - x.min()) / (x.max() - x.min()), or save them as uint8."
            )
    elif images.dtype not in (np.uint8, np.uint16) and images.dtype.kind != "f":
        # Wider integers (int64 of 0..255?) have no scale a file can vouch for.
        raise ValueError(f"{path}: {key} has dtype {images.dtype}; images must be uint8, uint16, "
                         "or float in [0, 1] or [0, 255]. Convert them, e.g. "
                         "images.astype(numpy.uint8) for 8-bit values.")
    return to_unit_batch(images, f"{path}: {key}", batch=True, float_white=scale or 1.0)


def _read_npz_array(archive, key: str, path) -> np.ndarray:
    """Reads one array of an open ``.npz``, naming the file and key when it cannot."""
    try:
        return archive[key]
    except (ValueError, OSError, EOFError, MemoryError, zipfile.BadZipFile, zlib.error) as err:
        reason = str(err).splitlines()[0].rstrip(".") if str(err) else type(err).__name__
        if "allow_pickle" in reason:
            reason = ("it is an object (pickled) array, which is never loaded because unpickling "
                      "can run code")
        raise ValueError(f"{path}: cannot read {key}: {reason}. Save the file again with "
                         "numpy.savez from numeric arrays (uint8 images, integer labels).") from err


def _labels_2d(labels: np.ndarray, path, key: str, n_images: int) -> np.ndarray:
    """Checks one split's labels (numeric, one per image, whole numbers) and makes them 2-D."""
    if labels.dtype.kind not in "biuf":
        raise ValueError(f"{path}: {key} has dtype {labels.dtype}; labels must be integers (or "
                         "float with NaN for unknown multi-label entries).")
    count = len(labels) if labels.ndim else 0
    if count != n_images:
        split = key.split("_")[0]
        raise ValueError(f"{path}: {split} has {n_images} images but {count} labels; "
                         "give one label row per image.")
    labels = labels.reshape(count, int(np.prod(labels.shape[1:])) if labels.ndim > 1 else 1)
    if labels.dtype.kind == "f":
        bad = np.isinf(labels) | (np.isfinite(labels) & (labels != np.round(labels)))
        if bad.any():
            row, column = np.argwhere(bad)[0]
            raise ValueError(f"{path}: {key}[{row}, {column}] is {labels[row, column]:g}; labels "
                             "must be whole numbers (0/1, or class indices), with NaN only for "
                             "unknown multi-label entries.")
    return labels


def _registered_name(path: pathlib.Path) -> str:
    """The registered dataset a file's name starts with (``chestmnist_64.npz``), else its stem."""
    stem = path.stem.lower()
    return next((n for n in list_datasets() if stem == n or stem.startswith(n + "_")), stem)


def _check_is_npz_archive(path: pathlib.Path) -> None:
    """Checks that a file is a zip archive, naming what it is instead (a ``.npy``, a truncation)."""
    if zipfile.is_zipfile(path):
        return
    with open(path, "rb") as handle:
        is_npy = handle.read(6) == b"\x93NUMPY"
    what = ("a single .npy array, not an .npz archive; save the splits with numpy.savez"
            if is_npy else "not an .npz (zip) archive: it may be truncated (an interrupted "
            "download) or another format; download or save it again")
    raise ValueError(f"{path}: {what}.")


def _check_keys(archive, path: pathlib.Path) -> None:
    """Checks that an open ``.npz`` has the MedMNIST keys: train/val/test images and labels."""
    missing = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels")
               if f"{s}_{k}" not in archive.files]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}; found {archive.files}. "
                         "Expected MedMNIST layout: train/val/test _images and _labels.")


def _read_raw_splits(path: pathlib.Path) -> dict[str, list[np.ndarray]]:
    """Reads the ``[images, labels]`` arrays of each split from a ``.npz``, as stored."""
    _check_is_npz_archive(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:
        raise ValueError(f"{path}: not a readable .npz file ({err}).") from err
    with archive:
        _check_keys(archive, path)
        return {s: [_read_npz_array(archive, f"{s}_{k}", path) for k in ("images", "labels")]
                for s in SPLITS}


def _float_scale(raw: dict[str, list[np.ndarray]]) -> float | None:
    """The value that means white for a file's float images: 1, or 255 if any exceeds 1."""
    floats = [x for x, _ in raw.values() if x.dtype.kind == "f" and x.size]
    if not floats:
        return None
    return 1.0 if all(np.nanmax(x) <= 1 for x in floats) else 255.0


def _read_splits(path: pathlib.Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each split's images (float32 ``(N, H, W, 1)``) and labels (2-D), checked one by one."""
    raw = _read_raw_splits(path)
    scale = _float_scale(raw)
    arrays = {}
    for split in SPLITS:
        images = _images_to_float(raw[split][0], path, f"{split}_images", scale)
        labels = _labels_2d(raw[split][1], path, f"{split}_labels", len(images))
        arrays[split] = (images, labels)
        raw[split] = None  # frees the original arrays as we go
    return arrays


def _check_one_image_size(path: pathlib.Path, arrays) -> None:
    """Checks that every split's images have the training images' size."""
    size = arrays["train"][0].shape[1:3]
    for split in SPLITS[1:]:
        if arrays[split][0].shape[1:3] != size:
            raise ValueError(f"{path}: {split}_images are {arrays[split][0].shape[1:3]} pixels but "
                             f"train_images are {size}; every split must have one image size.")


def _check_one_label_width(path: pathlib.Path, arrays) -> int:
    """Checks that every split has the same number of label columns, and returns it."""
    widths = {s: arrays[s][1].shape[1] for s in SPLITS}
    if len(set(widths.values())) > 1:
        raise ValueError(f"{path}: the splits have different numbers of label columns {widths}; "
                         "every split needs the same columns.")
    return widths["train"]


def _check_has_training_images(path: pathlib.Path, train_labels: np.ndarray) -> None:
    """Checks that the training split is not empty."""
    if not len(train_labels):
        raise ValueError(f"{path}: train_images and train_labels are empty; a dataset needs "
                         "training images.")


def _check_task_fits_labels(path: pathlib.Path, task: str, width: int) -> None:
    """Checks that a task is known and that its labels have a fitting number of columns."""
    if task not in TASKS:
        raise ValueError(f"{path}: the registry gives task {task!r}; expected one of {TASKS}.")
    if task != "multilabel" and width != 1:
        raise ValueError(f"{path}: a {task} task needs one label column, but the labels have "
                         f"{width}; pass task='multilabel' or save class indices as (N,) or "
                         "(N, 1).")


def _label_values_allowed(task: str, names: list[str], train_labels: np.ndarray) -> tuple[int, str]:
    """How many label values a task allows (labels lie in ``0..count-1``), and that in words."""
    if task != "multiclass":
        return 2, "0 or 1"
    # Without class names, the classes are those of train_labels.
    count = len(names) or int(np.nan_to_num(train_labels, nan=0).max(initial=0)) + 1
    return count, f"0..{count - 1}" + (
        f" (one per class name: {names})" if names else
        " (the classes found in train_labels; pass class_names=[...] to declare others)")


def _expected_class_count(task: str, width: int) -> int | None:
    """The number of class names a task needs (``None``: as many as its classes)."""
    return {"binary": 2, "multilabel": width}.get(task)


def _check_class_names(path: pathlib.Path, task: str, width: int, names: list[str]) -> None:
    """Checks that there is one class name per class (binary: two; multi-label: one a column)."""
    expected = _expected_class_count(task, width)
    if names and expected and len(names) != expected:
        raise ValueError(f"{path}: a {task} task with {width} label column(s) needs {expected} "
                         f"class names, got {len(names)}: {names}.")


def _check_label_values(path: pathlib.Path, split: str, labels: np.ndarray, task: str,
                        count: int, allowed: str) -> None:
    """Checks that a split's labels lie in ``0..count-1``, with NaN only in multi-label tasks."""
    nan = np.isnan(labels) if labels.dtype.kind == "f" else np.zeros(labels.shape, bool)
    bad = nan.copy() if task != "multilabel" else np.zeros(labels.shape, bool)
    bad |= ~nan & ((np.nan_to_num(labels) < 0) | (np.nan_to_num(labels) >= count))
    if bad.any():
        row, column = np.argwhere(bad)[0]
        where = (f"{split}_labels[{row}]" if labels.shape[1] == 1
                 else f"{split}_labels[{row}, {column}]")
        hint = " (NaN, unknown, is allowed only in multi-label tasks)" if nan[row, column] else ""
        raise ValueError(f"{path}: {where} is {labels[row, column]:g}{hint}; {task} "
                         f"labels must be {allowed}.")


def _typed_labels(labels: np.ndarray, task: str, has_unknown: bool) -> np.ndarray:
    """Checked labels in their task's type: int32 ``(N,)`` or ``(N, L)``, float32 with NaN."""
    if task == "multiclass":
        return labels.reshape(-1).astype(np.int32)
    if task == "binary" or not has_unknown:
        return labels.astype(np.int32)
    return labels.astype(np.float32)


def load_npz(path: str | os.PathLike, name: str | None = None, task: str | None = None,
             class_names: Sequence[str] | None = None) -> XRayDataset:
    """Loads a MedMNIST-style ``.npz`` file, validating its keys, shapes, dtypes and labels.

    Images may be uint8, uint16, or float in [0, 1] or [0, 255] (one range for the whole
    file); every split must have the same image size and the same number of label columns.
    Labels must be whole numbers: 0/1 for binary and multi-label tasks (NaN marks an unknown
    multi-label entry), 0..K-1 for K classes.

    Args:
        path: A ``.npz`` with ``train_images``, ``train_labels``, ``val_*`` and ``test_*``.
        name: Dataset name; a registered name found in the file name is used by default and
            gives the class names and task.
        task: Overrides the task: ``"binary"``, ``"multiclass"`` or ``"multilabel"``
            (inferred from the labels otherwise).
        class_names: Overrides the class names.

    Returns:
        The :class:`XRayDataset`.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is not a readable ``.npz`` (not a zip archive, truncated,
            corrupt, pickled arrays), a key is missing, or a shape, dtype or label is wrong;
            the message names the file and the key.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file.")
    if task is not None:
        check_task(task)
    name = name if name is not None else _registered_name(path)
    entry = registry().get(name, {})
    arrays = _read_splits(path)
    _check_one_image_size(path, arrays)
    width = _check_one_label_width(path, arrays)
    train_labels = arrays["train"][1]
    _check_has_training_images(path, train_labels)
    task = task or entry.get("task") or task_from_labels(train_labels)
    _check_task_fits_labels(path, task, width)
    names = list(class_names or entry.get("class_names") or [])
    count, allowed = _label_values_allowed(task, names, train_labels)
    _check_class_names(path, task, width, names)
    for split in SPLITS:
        _check_label_values(path, split, arrays[split][1], task, count, allowed)
    has_unknown = any(np.isnan(y).any() for _, y in arrays.values() if y.dtype.kind == "f")
    arrays = {s: (x, _typed_labels(y, task, has_unknown)) for s, (x, y) in arrays.items()}
    names = names or [f"class_{i}" for i in range(_expected_class_count(task, width) or count)]
    return XRayDataset(name, task, names, *arrays["train"], *arrays["val"], *arrays["test"],
                       source=str(path))


# --------------------------------------------------------------------------------------------
# Loading by name, phantoms, and the data a lesson runs on
# --------------------------------------------------------------------------------------------
def load(name_or_path: str | os.PathLike, size: int = 28) -> XRayDataset:
    """Loads a registered dataset (downloaded and verified once) or a local ``.npz`` file.

    Args:
        name_or_path: A registered name such as ``"pneumoniamnist"``, or a path to a
            MedMNIST-style ``.npz`` (loaded without a checksum, with its layout validated).
            ``"synthetic"`` gives procedural phantoms.
        size: Image size for registered datasets.

    Returns:
        The :class:`XRayDataset`.
    """
    text = os.fspath(name_or_path)
    if text.lower() == "synthetic":
        return synthetic(image_size=size)
    if text.lower().endswith(".npz") or os.sep in text or os.path.exists(text):
        return load_npz(text)
    return load_npz(download(text, size=size), name=text.lower())


def synthetic(n: int = 1200, image_size: int = 28, seed: int = 0,
              task: str = "binary") -> XRayDataset:
    """Procedural chest phantoms split 70/15/15 into train/val/test.

    Args:
        n: Total number of images.
        image_size: Side of the square images.
        seed: Random seed.
        task: ``"binary"`` (opacity or not) or ``"multilabel"`` (opacity per lung zone).

    Returns:
        An :class:`XRayDataset` flagged ``synthetic=True``.
    """
    images, labels, _ = _synthetic.phantoms(n, image_size, seed=seed, task=task)
    n_train, n_val = int(n * 0.7), int(n * 0.15)
    cuts = (slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, n))
    names = ["no opacity", "opacity"] if task == "binary" else list(_synthetic.ZONES)
    parts = [array for cut in cuts for array in (images[cut], labels[cut])]
    return XRayDataset(f"synthetic-{task}", task, names, *parts, source="synthetic", synthetic=True)


def _offline_banner(reason: str) -> None:
    line = "=" * 78
    print(f"{line}\nSYNTHETIC DATA: {reason}\nThe lesson continues on procedural phantoms; "
          f"numbers will not match real radiographs.\nTo use real data, connect to the internet "
          f"or set {DATA_ENV} to a folder or .npz.\n{line}", file=sys.stdout)


def _resized(dataset: XRayDataset, size: int) -> XRayDataset:
    """The dataset with every image resized to ``size x size`` (bilinear)."""
    resized = {f"x_{split}": resize_batch(dataset.split(split)[0], size) for split in SPLITS}
    return dataclasses.replace(dataset, **resized)


def course_data(name: str = "pneumoniamnist", profile=None, data: str | os.PathLike | None = None,
                seed: int = 0, split: str = "official") -> XRayDataset:
    """The data a lesson runs on: a local override, else the registry, else synthetic.

    Every failure a lesson can meet offline (a missing or unreadable ``data``, no network, a
    corrupt or unreadable cache entry) leads to the next source, with a printed line saying why;
    the last one, synthetic phantoms, comes with a printed banner. A local file whose image size
    differs from the profile's is resized to the profile's size, with a printed line saying so.
    These are printed, not warned: telling the student where the lesson's data came from is this
    function's job, and a warning would show in a notebook as an alarming red block.

    Args:
        name: Registered dataset, e.g. ``"pneumoniamnist"`` or ``"chestmnist"``.
        profile: Run profile (name or object); gives the image size and subset sizes.
        data: A ``.npz`` file, or a folder holding ``<name>/<name>_<size>.npz`` or
            ``<name>_<size>.npz`` (like ``../shared/data``). Defaults to ``$XRAYKIT_DATA``.
        seed: Seed of the profile's stratified subset (and of the selection split's draw).
        split: ``"official"`` (the dataset's own train/val/test) or ``"selection"`` (see
            :meth:`XRayDataset.selection_split`: choices are made on half of the test set).

    Returns:
        The dataset, re-split if asked, cut to the profile, with the profile's image size.

    Raises:
        KeyError: If ``name`` is not a registered dataset.
        ValueError: If ``profile`` is not a known profile or ``split`` not a known split.
    """
    from xraykit.profiles import get_profile

    profile = get_profile(profile)
    size = profile.image_size
    info(name)  # an unknown name is the caller's mistake: raise, do not fall back
    if split not in ("official", "selection"):
        raise ValueError(f"split must be 'official' or 'selection', not {split!r}.")
    data = data if data is not None else os.environ.get(DATA_ENV) or None
    dataset = None
    if data:
        root = pathlib.Path(data)
        candidates = [root] if root.suffix == ".npz" else [
            root / name / f"{name}_{size}.npz", root / f"{name}_{size}.npz",
            root / name / f"{name}_28.npz", root / f"{name}_28.npz",
        ]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            print(f"{data}: no {name} file there (looked for "
                  f"{', '.join(map(str, candidates))}); trying the download instead.")
        else:
            try:
                dataset = load_npz(found, name=name)
            except (OSError, ValueError) as err:
                print(f"{found}: cannot be used ({err}); trying the download instead.")
    if dataset is None:
        try:
            dataset = load(name, size=size)
        except (OSError, ValueError) as err:  # offline, server, cache folder or file problems
            _offline_banner(f"{name} could not be loaded ({str(err).splitlines()[0]})")
            task = "multilabel" if info(name)["task"] == "multilabel" else "binary"
            dataset = synthetic(n=2000, image_size=size, seed=seed, task=task)
    if split == "selection":
        dataset = dataset.selection_split(seed=seed)
    dataset = dataset.for_profile(profile, seed=seed)
    if dataset.image_shape[:2] != (size, size):
        height, width = dataset.image_shape[:2]
        note = (f" (upsampled images hold no more detail than the {height} px original; get the "
                f"{size} px file for real {size} px data)" if max(height, width) < size else "")
        print(f"{dataset.source}: images are {height}x{width} px but the {profile.name} "
              f"profile uses {size} px; resizing them to {size}x{size} px{note}.")
        dataset = _resized(dataset, size)
    return dataset
