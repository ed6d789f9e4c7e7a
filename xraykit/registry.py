"""The dataset registry: ``datasets.yaml``, its entries, their files and checksums.

The registry is ``datasets.yaml`` (top level of the repository, shipped inside the installed
package). Each entry names a dataset, its task and classes, how it can be had (``access``:
``direct`` downloads, ``sample`` folders, or instructions) and, for files, their URLs and
checksums. This module is the one place that reads it.
"""

from __future__ import annotations

import functools
import pathlib
from typing import Any


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


def file_entries(name: str) -> dict[int, dict[str, Any]]:
    """The downloadable files of a dataset, by image size.

    Args:
        name: A registered dataset.

    Returns:
        Mapping of image size (e.g. 28) to its file entry (``filename``, ``url``, checksum);
        empty for datasets without files.

    Raises:
        KeyError: If the name is not registered.
    """
    return {int(k): v for k, v in info(name).get("files", {}).items()}


def check_size(name: str, size: int, files: dict[int, dict[str, Any]]) -> None:
    """Checks that a dataset has a file of an image size.

    Raises:
        ValueError: If ``size`` is not one of ``files``'s sizes; the message lists them.
    """
    if int(size) not in files:
        raise ValueError(f"{name} has no {size} px file; sizes: {sorted(files)}.")


def file_entry(name: str, size: int) -> dict[str, Any]:
    """The registry entry of the file a dataset can be downloaded as, at one image size.

    Args:
        name: A registered dataset with ``access: direct``.
        size: Image size of the file (e.g. 28, 64, 128, 224 for MedMNIST).

    Returns:
        The file entry (``filename``, ``url``, ``md5`` or ``sha256``).

    Raises:
        KeyError: If the name is not registered.
        ValueError: If the dataset cannot be downloaded directly or has no file of that size.
    """
    entry = info(name)
    if entry.get("access") != "direct":
        how = entry.get("instructions", "see its homepage")
        raise ValueError(
            f"{name} cannot be downloaded automatically (access: {entry.get('access')}). {how} "
            f"Then load it with xraykit.datasets.load_folder(...) or load('<file>.npz')."
        )
    files = file_entries(name)
    check_size(name, size, files)
    return files[int(size)]


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
