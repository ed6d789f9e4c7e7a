"""The real sample radiographs the lessons show: offline mirror, cache, verified download.

Registry entries with ``access: sample`` (``python -m xraykit datasets list``) name a folder and
its files, each with a pinned public URL and checksum. A sample is found, in this order:

1. in a local mirror: ``data`` (or ``$XRAYKIT_DATA``) holding ``<folder>/<file>`` with the same
   checksums, such as the course's ``../shared/data``; nothing is downloaded;
2. in the download cache (``xraykit.downloads.cache_folder()/samples/<folder>``);
3. downloaded into the cache through the same verified path as the MedMNIST files
   (:func:`xraykit.downloads.fetch_verified`: progress bar, temporary file, checksum, atomic
   rename, lock). ``$XRAYKIT_MIRROR_URL`` (or ``url=``) points at a server laid out like
   ``../shared/data`` instead of the public URLs. Files that pydicom's test-data manager
   serves are fetched by pydicom, with its own hash check.

Lessons call :func:`course_sample`, which prints one line and returns ``None`` when a sample
cannot be had, so that the section that needs it can say it is skipped.
"""

from __future__ import annotations

import csv
import io
import os
import pathlib
import shutil
from typing import Any

from xraykit import downloads, files
from xraykit.downloads import DATA_ENV, MIRROR_URL_ENV  # noqa: F401  (samples.MIRROR_URL_ENV)
from xraykit.registry import expected_hash, info, list_datasets


def sample_names() -> list[str]:
    """Lists the registered samples.

    Returns:
        Names of the registry entries with ``access: sample``.
    """
    return [name for name in list_datasets() if info(name).get("access") == "sample"]


def _entry(name: str) -> dict[str, Any]:
    entry = info(name)
    if entry.get("access") != "sample":
        raise ValueError(f"{name} is not a sample (access: {entry.get('access')}); samples are "
                         f"{', '.join(sample_names())}. Use xraykit.datasets.download for "
                         f"MedMNIST files.")
    return entry


def _cache_folder(entry: dict[str, Any]) -> pathlib.Path:
    """A sample's folder in the download cache, checked to stay inside it."""
    return downloads.entry_path(downloads.cache_folder() / "samples", entry["name"],
                                entry["folder"])


def _labels_text(entry: dict[str, Any]) -> str:
    """The labels CSV of a sample, written from the registry's rows."""
    columns = entry["labels"]["columns"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for file_entry in entry["sample_files"].values():
        writer.writerow({column: file_entry["row"][column] for column in columns})
    return buffer.getvalue()


def _complete(folder: pathlib.Path, entry: dict[str, Any]) -> bool:
    """Whether ``folder`` holds every file of the sample, intact (and its labels file)."""
    if not folder.is_dir():
        return False
    for relative, file_entry in entry["sample_files"].items():
        algorithm, expected = expected_hash(file_entry)
        try:
            path = downloads.entry_path(folder, entry["name"], relative)
            if downloads.cached_state(path, algorithm, expected) != "ok":
                return False
        except OSError:  # a folder or an unreadable file where a file should be
            return False
    labels = entry.get("labels")
    return labels is None or downloads.entry_path(folder, entry["name"], labels["file"]).is_file()


def local_sample(name: str, data: str | os.PathLike | None = None) -> pathlib.Path | None:
    """Finds a sample in a local mirror or the download cache, without the network.

    Args:
        name: A registered sample, e.g. ``"nih-cxr14-sample"``.
        data: A mirror folder holding ``<folder>/...`` (default ``$XRAYKIT_DATA``).

    Returns:
        The sample's folder, or ``None`` when no complete, intact copy is found.

    Raises:
        KeyError: If the name is not registered.
        ValueError: If the entry is not a sample.
    """
    entry = _entry(name)
    data = data if data is not None else os.environ.get(DATA_ENV) or None
    roots = [pathlib.Path(data)] if data else []
    roots.append(downloads.cache_folder() / "samples")
    for root in roots:
        folder = downloads.entry_path(root, name, entry["folder"])
        if _complete(folder, entry):
            return folder
    return None


def _fetch_with_pydicom(file_name: str, target: pathlib.Path, file_entry: dict) -> None:
    """Lets pydicom's test-data manager download (and hash-check) a file, then caches it."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(file_name)  # None, with a warning, when it cannot be fetched
    algorithm, expected = expected_hash(file_entry)
    if path is None or files.file_checksum(path, algorithm) != expected:
        raise ConnectionError(
            f"pydicom could not fetch {file_name} from the pydicom-data repository (offline, "
            f"or the file changed). Check the connection and try again.")
    with open(path, "rb") as original, files.atomic_write(target) as copy:
        shutil.copyfileobj(original, copy)


def download_sample(name: str, url: str | None = None, *, timeout: float | None = None,
                    deadline: float | None = None) -> pathlib.Path:
    """Downloads every file of a sample into the cache, verified, and writes its labels file.

    Args:
        name: A registered sample.
        url: Base URL of a mirror laid out like ``../shared/data`` (default
            ``$XRAYKIT_MIRROR_URL``, else each file's public URL).
        timeout: Seconds without data before a file's download is abandoned.
        deadline: Seconds one file's download may take.

    Returns:
        The sample's folder in the cache.

    Raises:
        KeyError: If the name is not registered.
        ValueError: If the entry is not a sample.
        ConnectionError: If a file cannot be fetched or fails its checksum.
        PermissionError: If the cache folder cannot be written.
    """
    entry = _entry(name)
    mirror = url or os.environ.get(MIRROR_URL_ENV)
    folder = _cache_folder(entry)
    hint = (f", or point {DATA_ENV} at a folder holding {entry['folder']}/ (such as "
            f"the course's shared data folder)")
    for relative, file_entry in entry["sample_files"].items():
        target = downloads.entry_path(folder, name, relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        algorithm, expected = expected_hash(file_entry)
        if "pydicom_testdata" in file_entry and not mirror:
            if downloads.cached_state(target, algorithm, expected) != "ok":
                _fetch_with_pydicom(file_entry["pydicom_testdata"], target, file_entry)
            continue
        origin = (f"{mirror.rstrip('/')}/{entry['folder']}/{relative}" if mirror
                  else file_entry["url"])
        downloads.fetch_verified(origin, target, algorithm, expected, f"{name}: {relative}",
                                 hint, timeout, deadline)
    labels = entry.get("labels")
    if labels is not None:
        labels_path = downloads.entry_path(folder, name, labels["file"])
        with files.atomic_write(labels_path, "w", encoding="utf-8") as out:
            out.write(_labels_text(entry))
    return folder


def sample(name: str, data: str | os.PathLike | None = None) -> pathlib.Path:
    """The folder of a sample: from a local mirror, the cache, or a verified download.

    Args:
        name: A registered sample, e.g. ``"chest-dicom-samples"``.
        data: A mirror folder holding ``<folder>/...`` (default ``$XRAYKIT_DATA``).

    Returns:
        The sample's folder.

    Raises:
        KeyError: If the name is not registered.
        ValueError: If the entry is not a sample.
        ConnectionError: If it must be downloaded and cannot be.
        PermissionError: If the cache folder cannot be written.
    """
    return local_sample(name, data) or download_sample(name)


def course_sample(name: str, data: str | os.PathLike | None = None) -> pathlib.Path | None:
    """The folder of a sample for a lesson, or ``None`` with one line saying why.

    Args:
        name: A registered sample.
        data: The lesson's ``DATA`` (a mirror folder; default ``$XRAYKIT_DATA``).

    Returns:
        The sample's folder, or ``None`` when it cannot be had (offline, no mirror); the line
        printed then says what to do, and the lesson skips the sections that need it.
    """
    try:
        return sample(name, data)
    except (OSError, ValueError) as err:  # ConnectionError and PermissionError are OSErrors
        reason = str(err).splitlines()[0].split(". ")[0]
        print(f"SKIPPED: the {name} sample is not available ({reason}). Connect to the "
              f"internet, or set {DATA_ENV} to a folder holding "
              f"{_entry(name)['folder']}/, to see these sections.")
        return None


def verify_sample(name: str) -> dict[str, str]:
    """Checks a sample's cached files against the registry's checksums.

    Args:
        name: A registered sample.

    Returns:
        Mapping of each file (relative to the sample's folder) to ``"ok"``, ``"missing"`` or
        ``"checksum mismatch"``.

    Raises:
        KeyError: If the name is not registered.
        ValueError: If the entry is not a sample.
        IsADirectoryError: If a cache entry is a folder.
    """
    entry = _entry(name)
    folder = _cache_folder(entry)
    status = {}
    for relative, file_entry in entry["sample_files"].items():
        algorithm, expected = expected_hash(file_entry)
        path = downloads.entry_path(folder, name, relative)
        status[relative] = downloads.cached_state(path, algorithm, expected)
    return status
