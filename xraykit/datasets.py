"""The dataset registry, verified downloads, and loading of arrays, files and folders.

The registry is ``datasets.yaml`` (top level of the repository, shipped inside the installed
package). Downloads are cached under ``$KERAS_HOME/datasets/xraykit`` (``~/.keras`` by
default; override with ``XRAYKIT_CACHE``): written to a temporary file, verified against the
registry's checksum, then renamed, under a file lock. Not ``keras.utils.get_file``: it writes
to the final name and silently moves to ``/tmp`` when the cache folder is not writable.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import io
import os
import pathlib
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from xraykit import synthetic as _synthetic
from xraykit.images import read_images, resize_square, to_gray, to_unit_range
from xraykit.tasks import TASKS, check_task, task_from_labels

CACHE_ENV = "XRAYKIT_CACHE"
DATA_ENV = "XRAYKIT_DATA"
# A server laid out like ../shared/data, used instead of the public URLs.
MIRROR_URL_ENV = "XRAYKIT_MIRROR_URL"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".tif", ".tiff", ".bmp")
SPLITS = ("train", "val", "test")
DOWNLOAD_TIMEOUT = 60  # seconds without data before a download is abandoned
DOWNLOAD_DEADLINE = 3600  # seconds a whole download may take (a trickling server must not hang)


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------
def registry_path() -> pathlib.Path:
    """Finds ``datasets.yaml``: inside the installed package, else at the repository root.

    Returns:
        Path of the registry file.

    Raises:
        FileNotFoundError: If neither location holds it.
    """
    here = pathlib.Path(__file__).resolve().parent
    for candidate in (here / "datasets.yaml", here.parent / "datasets.yaml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        "datasets.yaml not found next to the xraykit package or at the repository root; "
        "reinstall xraykit (pip install 'xraykit @ git+...')."
    )


@functools.lru_cache(maxsize=1)
def registry() -> dict[str, dict[str, Any]]:
    """Reads the dataset registry.

    Returns:
        Mapping of dataset name to its entry (title, task, class_names, files, ...).
    """
    import yaml

    with open(registry_path(), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["datasets"]


def list_datasets() -> list[str]:
    """Lists the names of the registered datasets.

    Returns:
        Names, in registry order.
    """
    return list(registry())


def info(name: str) -> dict[str, Any]:
    """Returns a dataset's registry entry.

    Args:
        name: A registered name, e.g. ``"pneumoniamnist"`` (case-insensitive).

    Returns:
        The entry, with its ``name`` added.

    Raises:
        KeyError: If the name is not registered.
    """
    key = name.strip().lower()
    entries = registry()
    if key not in entries:
        raise KeyError(f"Unknown dataset {name!r}. Registered: {', '.join(entries)}.")
    return {"name": key, **entries[key]}


def _file_entry(name: str, size: int) -> dict[str, Any]:
    entry = info(name)
    if entry.get("access") != "direct":
        how = entry.get("instructions", "see its homepage")
        raise ValueError(
            f"{name} cannot be downloaded automatically (access: {entry.get('access')}). {how} "
            f"Then load it with xraykit.datasets.load_folder(...) or load('<file>.npz')."
        )
    files = {int(k): v for k, v in entry.get("files", {}).items()}
    if int(size) not in files:
        raise ValueError(f"{name} has no {size} px file; sizes: {sorted(files)}.")
    return files[int(size)]


# --------------------------------------------------------------------------------------------
# Verified download
# --------------------------------------------------------------------------------------------
def cache_dir() -> pathlib.Path:
    """Where downloads are cached: ``$XRAYKIT_CACHE``, else ``$KERAS_HOME`` or ``~/.keras``.

    Returns:
        The directory that holds the ``datasets/xraykit`` cache folder.
    """
    root = os.environ.get(CACHE_ENV) or os.environ.get("KERAS_HOME") or "~/.keras"
    return pathlib.Path(root).expanduser()


def file_checksum(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """Computes a file's checksum.

    Args:
        path: The file.
        algorithm: ``"md5"`` or ``"sha256"``.

    Returns:
        The hex digest.

    Raises:
        OSError: If the file cannot be read.
    """
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def expected_hash(entry: dict[str, Any]) -> tuple[str, str]:
    """The checksum a registry file entry promises.

    Args:
        entry: A registry file entry with ``sha256`` or ``md5``.

    Returns:
        ``(algorithm, hex digest)``, SHA-256 preferred.

    Raises:
        ValueError: If the entry has no checksum.
    """
    for algorithm in ("sha256", "md5"):
        if entry.get(algorithm):
            return algorithm, entry[algorithm]
    raise ValueError("registry file entry has no checksum")


def cache_folder() -> pathlib.Path:
    """The folder that holds xraykit's downloads: ``cache_dir()/datasets/xraykit``."""
    return cache_dir() / "datasets" / "xraykit"


def cached_state(path: pathlib.Path, algorithm: str, expected: str) -> str:
    """Whether a cached file is there and intact.

    Args:
        path: The cache entry.
        algorithm: ``"md5"`` or ``"sha256"``.
        expected: The expected hex digest.

    Returns:
        ``"ok"``, ``"missing"`` or ``"checksum mismatch"``.

    Raises:
        IsADirectoryError: If the entry is a folder.
        OSError: If the file exists but cannot be read.
    """
    if path.is_dir():
        raise IsADirectoryError(
            f"{path}: this cache entry is a folder, not a downloaded file. Remove it "
            f"(rm -r '{path}') and download again."
        )
    if not path.exists():
        return "missing"
    try:
        ok = file_checksum(path, algorithm) == expected
    except OSError as err:
        raise type(err)(f"{path}: cached file cannot be read ({err.strerror or err}). Remove "
                        f"it, or set {CACHE_ENV} to another cache folder.") from err
    return "ok" if ok else "checksum mismatch"


def _writable_folder(folder: pathlib.Path) -> pathlib.Path:
    """Creates the cache folder if needed and checks that files can be written in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise PermissionError(
            f"{folder}: cannot write the download cache there ({err.strerror or err}). Set "
            f"{CACHE_ENV} to a writable folder (e.g. {CACHE_ENV}=/tmp/xraykit-cache)."
        ) from err
    return folder


def _progress_bar(total: int | None):
    """A Keras progress bar, imported only once a download has really started."""
    import keras

    return keras.utils.Progbar(total, unit_name="byte")


def _fetch(origin: str, handle, algorithm: str, timeout: float, deadline: float) -> str:
    """Streams ``origin`` into an open file and returns the checksum of what was written.

    Raises:
        urllib.error.URLError: If the server cannot be reached or answers with an error.
        TimeoutError: If no data arrives for ``timeout`` s or the whole transfer takes longer
            than ``deadline`` s (checked between blocks, so it may overrun by ``timeout``).
    """
    started = time.monotonic()
    digest = hashlib.new(algorithm)
    request = urllib.request.Request(origin, headers={"User-Agent": "xraykit"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        total = response.length
        progress = _progress_bar(total)
        done = 0
        while True:
            if time.monotonic() - started > deadline:
                raise TimeoutError(f"the download took longer than its {deadline:g} s deadline")
            try:
                block = response.read1(1 << 16)
            except TimeoutError as err:
                raise TimeoutError(f"no data arrived for {timeout:g} s (stalled)") from err
            if not block:
                break
            handle.write(block)
            digest.update(block)
            done += len(block)
            progress.update(done)
    if total is not None and done != total:
        raise ConnectionError(f"the server sent {done} of {total} bytes")
    return digest.hexdigest()


def fetch_verified(origin: str, target: pathlib.Path, algorithm: str, expected: str, what: str,
                   hint: str = "", timeout: float | None = None,
                   deadline: float | None = None) -> pathlib.Path:
    """Fetches one file into the cache, verified, atomically and once across processes.

    The file is written to a temporary ``.<filename>.*.part`` file next to ``target``, checked,
    and only then renamed (atomically) to ``target``, so the final name never holds a partial or
    unverified file, even if the process is killed. A file lock makes concurrent fetches of the
    same file (two notebooks, two processes) download it once; temporary files left by a killed
    process are removed by the next fetch. A cached file whose checksum does not match is
    removed and fetched again.

    Args:
        origin: URL of the file.
        target: Final path in the cache.
        algorithm: ``"md5"`` or ``"sha256"``.
        expected: The expected hex digest.
        what: What is being fetched, for messages (e.g. ``"pneumoniamnist (28 px)"``).
        hint: What to do instead, appended to the error when the fetch fails.
        timeout: Seconds without data before giving up (default ``DOWNLOAD_TIMEOUT``).
        deadline: Seconds the whole fetch may take (default ``DOWNLOAD_DEADLINE``).

    Returns:
        ``target``, holding the verified file.

    Raises:
        ConnectionError: If the file cannot be fetched (offline, server error, stalled, past
            the deadline, bad checksum).
        PermissionError: If the cache folder cannot be created or written.
        IsADirectoryError: If ``target`` is a folder.
    """
    import filelock

    timeout = DOWNLOAD_TIMEOUT if timeout is None else timeout
    deadline = DOWNLOAD_DEADLINE if deadline is None else deadline
    folder = target.parent
    if cached_state(target, algorithm, expected) == "ok":
        return target  # a verified cache needs no write access (a shared, read-only cache)
    _writable_folder(folder)
    lock = filelock.FileLock(f"{target}.lock", timeout=deadline + 2 * timeout)
    try:
        lock.acquire()
    except filelock.Timeout as err:
        raise ConnectionError(
            f"{target}: another process has been downloading this file for more than "
            f"{lock.timeout:g} s. Wait for it and try again; if none is running, delete "
            f"{lock.lock_file}."
        ) from err
    try:
        state = cached_state(target, algorithm, expected)  # another process may have fetched it
        if state == "ok":
            return target
        if state == "checksum mismatch":
            print(f"{target}: cached file fails its {algorithm} check; removing it and fetching "
                  f"again.")
            target.unlink()
        for stale in folder.glob(f".{target.name}.*.part"):  # left by a killed download
            stale.unlink(missing_ok=True)
        print(f"Downloading {what} from {origin}")
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{target.name}.",
                                         suffix=".part", delete=False) as handle:
            partial = pathlib.Path(handle.name)
            try:
                got = _fetch(origin, handle, algorithm, timeout, deadline)
                if got != expected:
                    raise ValueError(f"{algorithm} of the downloaded file is {got}, expected "
                                     f"{expected} (a corrupted or different file)")
            except (Exception, KeyboardInterrupt) as err:
                handle.close()
                partial.unlink(missing_ok=True)
                if isinstance(err, KeyboardInterrupt):
                    raise
                raise ConnectionError(
                    f"Could not download {what} from {origin}: {_reason(err)}. Check the "
                    f"connection and try again (a slow link may need a larger "
                    f"timeout=/deadline=){hint}."
                ) from err
        os.replace(partial, target)
    finally:
        lock.release()
    return target


def download(name: str, size: int = 28, url: str | None = None, *,
             timeout: float | None = None, deadline: float | None = None) -> pathlib.Path:
    """Downloads a registered file once, verifies its checksum, and returns the cached path.

    See :func:`fetch_verified` for how the file is written (temporary file, checksum, atomic
    rename, file lock).

    Args:
        name: A registered dataset with ``access: direct``.
        size: Image size of the file (e.g. 28, 64, 128, 224 for MedMNIST).
        url: Another address serving the same file (a mirror); the checksum still applies.
            Default: ``$XRAYKIT_MIRROR_URL/<name>/<filename>`` when that variable is set, else
            the registry's URL.
        timeout: Seconds without data before the download is abandoned (default
            ``DOWNLOAD_TIMEOUT``).
        deadline: Seconds the whole download may take (default ``DOWNLOAD_DEADLINE``).

    Returns:
        Path of the verified file.

    Raises:
        ValueError: If the dataset is not directly downloadable or the size is unknown.
        ConnectionError: If the file cannot be fetched (offline, server error, stalled, past
            the deadline, bad checksum).
        PermissionError: If the cache folder cannot be created or written.
        IsADirectoryError: If the cache entry for the file is a folder.
    """
    entry = _file_entry(name, size)
    algorithm, expected = expected_hash(entry)
    hint = (f", or download the file elsewhere and pass it directly: "
            f"xraykit.datasets.load('/path/to/{entry['filename']}'), or set {DATA_ENV} to the "
            f"folder that holds it")
    mirror = os.environ.get(MIRROR_URL_ENV)
    origin = url or (f"{mirror.rstrip('/')}/{name}/{entry['filename']}" if mirror else entry["url"])
    return fetch_verified(origin, cache_folder() / entry["filename"], algorithm,
                          expected, f"{name} ({size} px)", hint, timeout, deadline)


def _reason(err: BaseException) -> str:
    """One line saying why a fetch failed."""
    if isinstance(err, urllib.error.HTTPError):
        return f"the server answered HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"cannot reach the server ({err.reason})"
    return str(err) or type(err).__name__


def verify(name: str, size: int | None = None) -> dict[int, str]:
    """Checks the cached files of a dataset against the registry's checksums.

    Args:
        name: A registered dataset.
        size: One size to check; ``None`` checks every size.

    Returns:
        Mapping of size to ``"ok"``, ``"missing"`` or ``"checksum mismatch"``.

    Raises:
        KeyError: If the dataset is not registered.
        ValueError: If ``size`` is not one of the dataset's sizes.
        IsADirectoryError: If a cache entry is a folder.
        OSError: If a cached file cannot be read.
    """
    entry = info(name)
    files = {int(k): v for k, v in entry.get("files", {}).items()}
    if size is not None and files and int(size) not in files:
        raise ValueError(f"{name} has no {size} px file; sizes: {sorted(files)}.")
    status = {}
    for file_size, file_entry in sorted(files.items()):
        if size is not None and file_size != int(size):
            continue
        algorithm, expected = expected_hash(file_entry)
        status[file_size] = cached_state(cache_folder() / file_entry["filename"], algorithm,
                                          expected)
    return status


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
        counts = {}
        for split in SPLITS:
            _, labels = self.split(split)
            if self.task == "multiclass":
                values = np.bincount(labels.astype(int).ravel(), minlength=self.num_classes)
            elif self.task == "binary":
                positives = int(np.nansum(labels))
                values = [len(labels) - positives, positives]
            else:
                values = np.nansum(labels, axis=0).astype(int)
            counts[split] = {c: int(v) for c, v in zip(self.class_names, values)}
        return counts

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
            strata = labels.reshape(len(labels), -1)[:, 0]
            strata = np.nan_to_num(strata, nan=-1).astype(int)
            chosen = []
            for value in np.unique(strata):
                members = np.flatnonzero(strata == value)
                take = max(1, round(limit * len(members) / len(images)))
                chosen.append(rng.choice(members, min(take, len(members)), replace=False))
            index = np.sort(np.concatenate(chosen))[:limit]
            parts[split] = (images[index], labels[index])
        return dataclasses.replace(
            self, x_train=parts["train"][0], y_train=parts["train"][1],
            x_val=parts["val"][0], y_val=parts["val"][1],
            x_test=parts["test"][0], y_test=parts["test"][1],
        )

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
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction must be strictly between 0 and 1, got {fraction}.")
        if "selection split" in self.source:
            raise ValueError(f"{self.name} is already a selection split ({self.source}).")
        labels = self.y_test
        strata = np.nan_to_num(labels.reshape(len(labels), -1)[:, 0], nan=-1).astype(int)
        # Byte-identical images (PneumoniaMNIST's test split holds a few) go to the same side.
        first_copy = {}
        group = np.array([first_copy.setdefault(image.tobytes(), i)
                          for i, image in enumerate(self.x_test)])
        rng = np.random.default_rng(seed)
        select = np.zeros(len(labels), bool)
        for value in np.unique(strata):
            groups = np.unique(group[strata == value])
            take = int(round(fraction * len(groups)))
            if take < 1 or take >= len(groups):
                raise ValueError(
                    f"{self.name}: the test split has {len(groups)} image(s) of class {value}, "
                    f"too few to put some in both the selection split and the final test.")
            select |= np.isin(group, rng.choice(groups, take, replace=False))
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


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def _images_to_float(images: np.ndarray, path, key: str, scale: float | None = None) -> np.ndarray:
    """Converts one split's images to float32 ``(N, H, W, 1)`` in [0, 1].

    uint8 is divided by 255 and uint16 by 65535. Float images are taken as they are when in
    [0, 1] and divided by 255 when in [0, 255]. RGB images become their luminance.

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
    if images.dtype in (np.uint8, np.uint16):
        pass  # scaled by their type in to_unit_range
    elif images.dtype.kind == "f":
        if not np.isfinite(images).all():
            raise ValueError(f"{path}: {key} holds NaN or infinite values; replace them before "
                             "saving (e.g. numpy.nan_to_num).")
        low, high = (float(images.min()), float(images.max())) if images.size else (0.0, 0.0)
        scale = scale or (1.0 if high <= 1 else 255.0)
        if low < 0 or high > scale:
            raise ValueError(
                f"{path}: {key} holds float values in [{low:g}, {high:g}]; float images must lie "
                "in [0, 1] or [0, 255] (the same range in every split). Rescale them, e.g. "
                "(x - x.min()) / (x.max() - x.min()), or save them as uint8."
            )
    else:
        raise ValueError(f"{path}: {key} has dtype {images.dtype}; images must be uint8, uint16, "
                         "or float in [0, 1] or [0, 255]. Convert them, e.g. "
                         "images.astype(numpy.uint8) for 8-bit values.")
    if images.dtype.kind == "f":
        images = images.astype(np.float32) / np.float32(scale)
    images = to_unit_range(images, f"{path}: {key}")
    if images.ndim == 4 and images.shape[-1] == 3:  # RGB MedMNIST sets
        images = to_gray(images)
    elif images.ndim == 4:
        images = images[..., 0]
    return images[..., None]


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
    if name is None:
        stem = path.stem.lower()
        name = next((n for n in list_datasets() if stem == n or stem.startswith(n + "_")), stem)
    entry = registry().get(name, {})
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as handle:
            is_npy = handle.read(6) == b"\x93NUMPY"
        what = ("a single .npy array, not an .npz archive; save the splits with numpy.savez"
                if is_npy else "not an .npz (zip) archive: it may be truncated (an interrupted "
                "download) or another format; download or save it again")
        raise ValueError(f"{path}: {what}.")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:
        raise ValueError(f"{path}: not a readable .npz file ({err}).") from err
    with archive:
        missing = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels")
                   if f"{s}_{k}" not in archive.files]
        if missing:
            raise ValueError(f"{path}: missing keys {missing}; found {archive.files}. "
                             "Expected MedMNIST layout: train/val/test _images and _labels.")
        raw = {s: [_read_npz_array(archive, f"{s}_{k}", path) for k in ("images", "labels")]
               for s in SPLITS}
    floats = [x for x, _ in raw.values() if x.dtype.kind == "f" and x.size]
    scale = (1.0 if all(np.nanmax(x) <= 1 for x in floats) else 255.0) if floats else None
    arrays = {}
    for split in SPLITS:
        images = _images_to_float(raw[split][0], path, f"{split}_images", scale)
        labels = _labels_2d(raw[split][1], path, f"{split}_labels", len(images))
        arrays[split] = (images, labels)
        raw[split] = None  # frees the original arrays as we go
    size = arrays["train"][0].shape[1:3]
    widths = {s: arrays[s][1].shape[1] for s in SPLITS}
    for split in SPLITS[1:]:
        if arrays[split][0].shape[1:3] != size:
            raise ValueError(f"{path}: {split}_images are {arrays[split][0].shape[1:3]} pixels but "
                             f"train_images are {size}; every split must have one image size.")
    if len(set(widths.values())) > 1:
        raise ValueError(f"{path}: the splits have different numbers of label columns {widths}; "
                         "every split needs the same columns.")
    width = widths["train"]
    train_labels = arrays["train"][1]
    if not len(train_labels):
        raise ValueError(f"{path}: train_images and train_labels are empty; a dataset needs "
                         "training images.")
    task = task or entry.get("task") or task_from_labels(train_labels)
    if task not in TASKS:
        raise ValueError(f"{path}: the registry gives task {task!r}; expected one of {TASKS}.")
    names = list(class_names or entry.get("class_names") or [])
    if task != "multilabel" and width != 1:
        raise ValueError(f"{path}: a {task} task needs one label column, but the labels have "
                         f"{width}; pass task='multilabel' or save class indices as (N,) or "
                         "(N, 1).")
    if task == "multiclass":  # without class names, the classes are those of train_labels
        count = len(names) or int(np.nan_to_num(train_labels, nan=0).max(initial=0)) + 1
        allowed = f"0..{count - 1}" + (f" (one per class name: {names})" if names else
                                       " (the classes found in train_labels; pass class_names=[...]"
                                       " to declare others)")
    else:
        count, allowed = 2, "0 or 1"
    expected = {"binary": 2, "multilabel": width}.get(task)
    if names and expected and len(names) != expected:
        raise ValueError(f"{path}: a {task} task with {width} label column(s) needs {expected} "
                         f"class names, got {len(names)}: {names}.")
    for split in SPLITS:
        images, labels = arrays[split]
        nan = np.isnan(labels) if labels.dtype.kind == "f" else np.zeros(labels.shape, bool)
        bad = nan.copy() if task != "multilabel" else np.zeros(labels.shape, bool)
        bad |= ~nan & ((np.nan_to_num(labels) < 0) | (np.nan_to_num(labels) >= count))
        if bad.any():
            row, column = np.argwhere(bad)[0]
            where = f"{split}_labels[{row}]" if width == 1 else f"{split}_labels[{row}, {column}]"
            hint = (" (NaN, unknown, is allowed only in multi-label tasks)"
                    if nan[row, column] else "")
            raise ValueError(f"{path}: {where} is {labels[row, column]:g}{hint}; {task} "
                             f"labels must be {allowed}.")
        if task == "multiclass":
            labels = labels.reshape(-1).astype(np.int32)
        elif task == "binary":
            labels = labels.astype(np.int32)
        else:
            has_unknown = any(np.isnan(y).any() for _, y in arrays.values() if y.dtype.kind == "f")
            labels = labels.astype(np.float32 if has_unknown else np.int32)
        arrays[split] = (images, labels)
    if not names:
        names = [f"class_{i}" for i in range(expected or count)]
    return XRayDataset(name, task, names, *arrays["train"], *arrays["val"], *arrays["test"],
                       source=str(path))


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
    def resize(images):
        return np.stack([resize_square(image[..., 0], size) for image in images])[..., None]

    return dataclasses.replace(dataset, x_train=resize(dataset.x_train),
                               x_val=resize(dataset.x_val), x_test=resize(dataset.x_test))


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


# --------------------------------------------------------------------------------------------
# Folders of image files
# --------------------------------------------------------------------------------------------
def _natural_key(path: pathlib.Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_images(folder: str | os.PathLike) -> list[pathlib.Path]:
    """Lists image files (PNG, JPEG, DICOM, TIFF, BMP) under a folder, recursively, sorted."""
    folder = pathlib.Path(folder)
    return sorted((p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES),
                  key=lambda p: (str(p.parent), _natural_key(p)))


@dataclasses.dataclass
class FolderData:
    """Images read from a folder.

    Attributes:
        images: Float32 ``(N, S, S, 1)`` in [0, 1].
        labels: Int32 ``(N, 1)`` (binary), ``(N,)`` (multiclass) or ``(N, L)``.
        paths: The file of each image.
        class_names: Names of the classes.
        task: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        failed: ``{path: reason}`` for files that could not be read.
    """

    images: np.ndarray
    labels: np.ndarray
    paths: list[str]
    class_names: list[str]
    task: str
    failed: dict[str, str]


def _csv_label(text: str | None, task: str, where: str) -> float:
    """Parses one label cell: 0 or 1; for multi-label CSVs a blank or NaN cell is unknown (NaN).

    The cell's text is never echoed: a wrongly chosen column could hold a patient identifier.
    """
    if text is None:
        raise ValueError(f"{where}: the row has fewer fields than the header; complete the row "
                         "(an empty field still needs its comma).")
    text = text.strip()
    if task == "multilabel" and text.lower() in ("", "nan"):
        return float("nan")
    try:
        value = float(text)
    except ValueError:
        value = None
    if value in (0.0, 1.0):
        return value
    if task == "multilabel":
        rule = "multi-label labels must be 0 or 1, or blank (or NaN) where unknown"
    else:
        rule = ("binary labels must be 0 or 1 (a blank, unknown label is allowed only with "
                "several label_columns)")
    if not text:
        found = "the cell is blank"
    elif value is None:
        found = "the cell holds text, not a number (map e.g. yes/no to 1/0)"
    elif value < 0:
        found = "the cell holds a negative number (for 'uncertain' or 'unknown' leave it blank)"
    else:
        found = "the cell holds a number other than 0 and 1"
    raise ValueError(f"{where}: {found}; {rule}. Fix the cell or remove the row.")


def _csv_image(folder: pathlib.Path, text: str | None, where: str, by_name) -> pathlib.Path | None:
    """Finds the image a CSV cell names, or ``None`` when there is no such file.

    The cell holds a path relative to ``folder``, or a bare file name found once anywhere
    under it (NIH style).
    """
    text = (text or "").strip()
    if not text:
        raise ValueError(f"{where}: no image path in the cell; give the image's path relative "
                         f"to {folder}.")
    relative = pathlib.PurePosixPath(text.replace("\\", "/"))
    if relative.is_absolute() or pathlib.PureWindowsPath(text).drive or ".." in relative.parts:
        raise ValueError(f"{where}: {text!r} points outside {folder}; write image paths "
                         "relative to that folder (e.g. images/x.png), so that only files inside "
                         "it are read.")
    candidate = folder / relative
    if candidate.is_file():
        return candidate
    if len(relative.parts) == 1:  # a bare file name: look for it in the subfolders
        matches = by_name().get(relative.name, [])
        if len(matches) > 1:
            found = ", ".join(p.relative_to(folder).as_posix() for p in matches)
            raise ValueError(f"{where}: {text!r} matches {len(matches)} files ({found}); write "
                             f"the path relative to {folder} to say which one.")
        if matches:
            return matches[0]
    return None


def _csv_items(folder: pathlib.Path, csv_path: pathlib.Path, image_column: str, label_columns):
    """Reads a labels CSV into ``(path, labels)`` pairs, validating every row."""
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path}: labels CSV not found; pass labels_csv=... with "
                                "its path.")
    data = csv_path.read_bytes()
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark (Excel's "CSV UTF-8") is accepted
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise ValueError(f"{csv_path}, line {line}: the file is not UTF-8 text; save it as UTF-8 "
                         "(e.g. 'CSV UTF-8' in Excel).") from err
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        columns = list(reader.fieldnames or [])
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as err:
        raise ValueError(f"{csv_path}, line {reader.line_num}: not valid CSV ({err}).") from err
    if not columns:
        raise ValueError(f"{csv_path}: empty file; expected a header line such as "
                         f"'{image_column},pneumonia'.")
    header = f"{csv_path}, line 1 (header)"
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ValueError(f"{header}: column(s) {repeated} appear more than once; rename them.")
    if image_column not in columns:
        raise ValueError(f"{header}: no {image_column!r} column; the columns are {columns}. "
                         "Pass image_column=... naming the column with the image paths.")
    if isinstance(label_columns, str):
        label_columns = [label_columns]
    label_columns = list(label_columns or [c for c in columns if c != image_column][:1])
    if not label_columns:
        raise ValueError(f"{header}: no label column besides {image_column!r}; add one.")
    for column in label_columns:
        if column not in columns:
            raise ValueError(f"{header}: no {column!r} column; the columns are {columns}. "
                             "Pass label_columns=[...] naming the 0/1 label columns.")
    if image_column in label_columns or len(set(label_columns)) < len(label_columns):
        raise ValueError(f"{header}: label_columns {label_columns} repeat a column or include "
                         f"the image column {image_column!r}.")
    if not rows:
        raise ValueError(f"{csv_path}: no data rows after the header.")
    task = "binary" if len(label_columns) == 1 else "multilabel"
    by_name = functools.cache(lambda: _images_by_name(folder))
    items, seen, missing = [], {}, []
    for line, row in rows:
        if None in row:
            raise ValueError(f"{csv_path}, line {line}: the row has more fields than the header's "
                             f"{len(columns)}; quote fields that contain commas.")
        where = f"{csv_path}, line {line}, column {image_column!r}"
        path = _csv_image(folder, row[image_column], where, by_name)
        labels = [_csv_label(row[c], task, f"{csv_path}, line {line}, column {c!r}")
                  for c in label_columns]
        if path is None:
            missing.append(f"line {line} ({row[image_column].strip()!r})")
            continue
        key = os.path.normpath(path)
        if key in seen:
            raise ValueError(f"{where}: the same image as line {seen[key]} "
                             f"({path.relative_to(folder).as_posix()}); remove one of the rows.")
        seen[key] = line
        items.append((path, labels))
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise FileNotFoundError(
            f"{csv_path}, column {image_column!r}: {len(missing)} row(s) name an image that is not "
            f"under {folder}: {', '.join(missing[:5])}{more}. Add the files or remove the rows."
        )
    names = ["negative", label_columns[0]] if task == "binary" else label_columns
    return items, names, task


def _images_by_name(folder: pathlib.Path) -> dict[str, list[pathlib.Path]]:
    """Maps each image file name under ``folder`` to the files that have it."""
    index: dict[str, list[pathlib.Path]] = {}
    for path in list_images(folder):
        index.setdefault(path.name, []).append(path)
    return index


def _folder_items(folder: pathlib.Path, labels_csv, image_column, label_columns):
    """Pairs each image file with its labels, from a labels CSV or class subfolders.

    Args:
        folder: The image folder.
        labels_csv: A labels CSV, or ``None`` for ``<folder>/labels.csv`` when it exists.
        image_column: CSV column with image paths relative to ``folder`` (a bare file name
            is looked up in the subfolders and must be unique there).
        label_columns: CSV label columns (a name or a list); one column is a binary task,
            several a multi-label one.

    Returns:
        ``(items, class_names, task)``, with ``items`` a list of ``(path, labels)``.

    Raises:
        FileNotFoundError: If the CSV, or an image a row names, does not exist.
        ValueError: If the folder has neither a CSV nor class subfolders, or the CSV is not
            valid (see :func:`load_folder`); the message names the CSV, line and column.
    """
    csv_path = pathlib.Path(labels_csv) if labels_csv else folder / "labels.csv"
    if labels_csv or csv_path.is_file():
        return _csv_items(folder, csv_path, image_column, label_columns)
    # Hidden and tool folders (.ipynb_checkpoints, __MACOSX from a zip) are not classes.
    classes = sorted(p.name for p in folder.iterdir()
                     if p.is_dir() and not p.name.startswith((".", "__")))
    if not classes:
        raise ValueError(
            f"{folder}: expected class subfolders (e.g. NORMAL/, PNEUMONIA/) or a labels.csv; "
            "pass labels_csv=... for another CSV name."
        )
    items = [(p, [i]) for i, c in enumerate(classes) for p in list_images(folder / c)]
    return items, classes, "binary" if len(classes) == 2 else "multiclass"


def load_folder(folder: str | os.PathLike, image_size: int = 28, labels_csv=None,
                image_column: str = "image", label_columns: Sequence[str] | None = None,
                resize_mode: str = "pad", workers: int = 4, stream: bool = False,
                batch_size: int = 32, strict: bool = False):
    """Loads a folder of radiographs: class subfolders, or a labels CSV.

    A labels CSV is read as UTF-8 (a byte-order mark is accepted). Each row names an image by
    its path relative to ``folder`` (``images/x.png``); a bare file name (NIH's
    ``00000001_000.png``) is also found in a subfolder when exactly one file has that name.
    Paths that leave the folder (``../x.png``, absolute paths), rows naming a missing image,
    two rows for one image, and labels other than 0/1 are refused. With one label column the
    task is binary; with several it is multi-label, and a blank or ``NaN`` cell marks an
    unknown label, kept as NaN (float32 labels) for a masked loss
    (:class:`xraykit.losses.MaskedBinaryCrossentropy`).

    Args:
        folder: Either class subfolders (``NORMAL/``, ``PNEUMONIA/``: Guangzhou style; binary
            when there are two) or image files with a ``labels.csv`` (NIH style).
        image_size: Side of the square output; the aspect ratio is kept (see ``resize_mode``).
        labels_csv: The labels CSV, if not ``<folder>/labels.csv``.
        image_column: CSV column with the image paths.
        label_columns: CSV column name, or list of names, with the 0/1 labels (default: the
            first column other than ``image_column``).
        resize_mode: ``"pad"`` or ``"crop"`` (see :func:`xraykit.images.resize_square`).
        workers: Threads reading files in parallel.
        stream: Return a ``keras.utils.PyDataset`` that reads
            batches on demand, for folders too big for memory.
        batch_size: Batch size of the stream.
        strict: Raise on the first unreadable file instead of leaving it out.

    Returns:
        A :class:`FolderData` (``stream=False``) or a ``keras.utils.PyDataset`` of batches.
        Unreadable files
        are listed by name in ``failed`` and in an
        :class:`xraykit.images.UnreadableFileWarning`, never silently dropped.

    Raises:
        FileNotFoundError: If the folder, the labels CSV, or an image a CSV row names does
            not exist.
        ValueError: If the folder has neither class subfolders nor a labels CSV, the CSV is
            not valid (the message names the CSV, its line and column), or no image could be
            read.
    """
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder.")
    items, names, task = _folder_items(folder, labels_csv, image_column, label_columns)
    if stream:
        return _folder_sequence_class()(items, names, task, image_size, resize_mode, batch_size,
                                        workers)
    images, paths, failed = read_images([p for p, _ in items], image_size, resize_mode, workers,
                                        strict=strict)
    if not paths:
        raise ValueError(f"{folder}: no readable image among {len(items)} file(s).")
    labels = [label for path, label in items if str(path) not in failed]
    label_array = np.asarray(labels, dtype=_label_dtype(items))
    if task == "multiclass":
        label_array = label_array.reshape(-1)
    return FolderData(images[..., None], label_array, paths, names, task, failed)


def _label_dtype(items) -> type:
    """Float32 when any label is unknown (NaN), else int32."""
    return np.float32 if any(np.isnan(v) for _, labels in items for v in labels) else np.int32


@functools.lru_cache(maxsize=1)
def _folder_sequence_class():
    """Builds the streaming class on first use, so importing xraykit does not import keras."""
    import keras

    class FolderSequence(keras.utils.PyDataset):
        """Batches read on demand from a folder, with worker threads.

        Create it through ``load_folder(..., stream=True)`` and pass it to ``model.fit`` or
        ``model.predict``. An unreadable file makes its batch shorter; it is recorded in
        ``failed`` and reported in an :class:`xraykit.images.UnreadableFileWarning`.
        """

        def __init__(self, items, class_names, task, image_size, resize_mode, batch_size,
                     workers):
            super().__init__(workers=max(1, workers), use_multiprocessing=False)
            self.items = list(items)
            self.class_names = class_names
            self.task = task
            self.image_size = image_size
            self.resize_mode = resize_mode
            self.batch_size = batch_size
            self.failed: dict[str, str] = {}
            self.label_dtype = _label_dtype(self.items)

        def __len__(self) -> int:
            return -(-len(self.items) // self.batch_size)

        def __getitem__(self, index: int):
            chunk = self.items[index * self.batch_size:(index + 1) * self.batch_size]
            images, _, failed = read_images([p for p, _ in chunk], self.image_size,
                                            self.resize_mode, workers=1)
            self.failed.update(failed)
            labels = [label for path, label in chunk if str(path) not in failed]
            x = images[..., None]
            y = np.asarray(labels, dtype=self.label_dtype)
            return x, (y.reshape(-1) if self.task == "multiclass" else y)

    return FolderSequence
