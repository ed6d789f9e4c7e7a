"""The dataset registry: ``datasets.yaml``, its entries, their files and checksums.

The registry is ``datasets.yaml`` (top level of the repository, shipped inside the installed
package). Each entry names a dataset, its task and classes, how it can be had (``access``:
``direct`` downloads, ``sample`` folders, or instructions) and, for files, their URLs and
checksums. This module is the one place that reads it.
"""

from __future__ import annotations

import functools
import os
import pathlib
from typing import Any

from xraykit import files, urls


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


#: The largest registry file read (bytes): far above the real one, far below a memory problem.
MAX_REGISTRY_BYTES = 1 << 20
ACCESS_KINDS = ("direct", "sample", "manual", "generated")
_HEX_LENGTHS = {"md5": 32, "sha256": 64}


def load_yaml_bounded(path: str | os.PathLike, max_bytes: int = MAX_REGISTRY_BYTES) -> Any:
    """Parses a YAML document safely: plain data only, bounded in size, no aliases.

    ``yaml.safe_load`` builds only plain data (no Python objects), but it expands aliases
    (``*a``), so a small file can unfold into billions of items ("billion laughs"); here an
    alias is refused, and so is a file over ``max_bytes`` or nested deeper than Python's
    recursion limit.

    Args:
        path: The YAML file.
        max_bytes: The largest size read.

    Returns:
        The parsed document.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is too large, not UTF-8, not valid YAML, or uses an alias;
            the message names the file (and the line, where YAML gives one).
    """
    import yaml

    class _NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, f"alias *{event.anchor} is not allowed (aliases are refused)",
                    event.start_mark)
            return super().compose_node(parent, index)

    with open(path, "rb") as handle:
        raw = handle.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise ValueError(f"{path}: larger than {max_bytes} bytes; a registry is a few kB. "
                         "Check that this is the right file.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte {err.start}); save it as UTF-8.") from None
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        detail = " ".join(str(err).split())
        raise ValueError(f"{path}: not a valid registry document ({detail}).") from None
    except RecursionError:
        raise ValueError(f"{path}: nested too deeply to be a registry.") from None


def _field_error(source, name: str, field: str, problem: str) -> ValueError:
    return ValueError(f"{source}: dataset {name!r}, field {field!r}: {problem}; fix the entry.")


def _check_checksum(source, name: str, field: str, entry: dict) -> None:
    algorithms = [a for a in _HEX_LENGTHS if entry.get(a) is not None]
    if not algorithms:
        raise _field_error(source, name, field, "no checksum (md5 or sha256)")
    for algorithm in algorithms:
        value = entry[algorithm]
        if (not isinstance(value, str) or len(value) != _HEX_LENGTHS[algorithm]
                or not all(c in "0123456789abcdef" for c in value)):
            raise _field_error(source, name, f"{field}.{algorithm}",
                               f"{value!r} is not a lowercase {algorithm} hex digest")


def _check_files(source, name: str, entry: dict) -> None:
    """The ``files`` of a ``direct`` entry: sizes, file names, URLs, checksums."""
    files_by_size = entry.get("files")
    if not isinstance(files_by_size, dict) or not files_by_size:
        raise _field_error(source, name, "files", "a direct dataset needs a mapping of image "
                           "size to {filename, url, md5|sha256}")
    for size, file_entry in files_by_size.items():
        field = f"files.{size}"
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise _field_error(source, name, field, "the key must be a positive image size")
        if not isinstance(file_entry, dict):
            raise _field_error(source, name, field, "must be a mapping")
        files.check_relative(file_entry.get("filename"),
                             f"{source}: dataset {name!r}, field {field + '.filename'!r}")
        urls.check_url(file_entry.get("url"), f"{source}: dataset {name!r}, field {field}.url")
        _check_checksum(source, name, field, file_entry)


def _check_sample(source, name: str, entry: dict) -> None:
    """The ``folder``, ``sample_files`` and ``labels`` of a ``sample`` entry."""
    where = f"{source}: dataset {name!r}, field"
    files.check_relative(entry.get("folder"), f"{where} 'folder'")
    sample_files = entry.get("sample_files")
    if not isinstance(sample_files, dict) or not sample_files:
        raise _field_error(source, name, "sample_files", "a sample needs a mapping of file "
                           "name to {url|pydicom_testdata, md5|sha256}")
    for relative, file_entry in sample_files.items():
        field = f"sample_files.{relative}"
        files.check_relative(relative, f"{where} 'sample_files' (file name)")
        if not isinstance(file_entry, dict):
            raise _field_error(source, name, field, "must be a mapping")
        if "pydicom_testdata" in file_entry:
            files.check_relative(file_entry["pydicom_testdata"], f"{where} '{field}'")
        else:
            urls.check_url(file_entry.get("url"), f"{where} '{field}.url'")
        _check_checksum(source, name, field, file_entry)
    labels = entry.get("labels")
    if labels is not None:
        if not isinstance(labels, dict) or not isinstance(labels.get("columns"), list):
            raise _field_error(source, name, "labels", "needs 'file' and a list of 'columns'")
        files.check_relative(labels.get("file"), f"{where} 'labels.file'")
        for relative, file_entry in sample_files.items():
            row = file_entry.get("row")
            if not isinstance(row, dict) or not set(labels["columns"]) <= set(row):
                raise _field_error(source, name, f"sample_files.{relative}.row",
                                   f"needs a value for each label column {labels['columns']}")


def check_entry(name, entry, source="datasets.yaml") -> None:
    """Checks one registry entry: the fields its kind of access needs, well formed.

    Args:
        name: The dataset's name.
        entry: Its entry.
        source: The registry file, for messages.

    Raises:
        ValueError: If a field is missing or malformed; the message names the registry file,
            the dataset and the field.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{source}: a dataset name must be a non-empty string, not {name!r}.")
    if not isinstance(entry, dict):
        raise ValueError(f"{source}: dataset {name!r}: the entry must be a mapping of fields.")
    for field in ("title", "task", "access"):
        if not isinstance(entry.get(field), str) or not entry[field].strip():
            raise _field_error(source, name, field, "missing (a non-empty text is required)")
    if entry["access"] not in ACCESS_KINDS:
        raise _field_error(source, name, "access",
                           f"{entry['access']!r} is not one of {', '.join(ACCESS_KINDS)}")
    names = entry.get("class_names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _field_error(source, name, "class_names", "must be a list of texts")
    if entry["access"] == "direct":
        _check_files(source, name, entry)
    elif entry["access"] == "sample":
        _check_sample(source, name, entry)


def read_registry(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Reads and checks a registry file (see :func:`load_yaml_bounded` and :func:`check_entry`).

    Args:
        path: A ``datasets.yaml``.

    Returns:
        Mapping of dataset name to its entry.

    Raises:
        ValueError: If the file is not a safe, well-formed registry; the message names the file
            and, for an entry, the dataset and the field.
    """
    document = load_yaml_bounded(path)
    entries = document.get("datasets") if isinstance(document, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise ValueError(f"{path}: no 'datasets:' mapping at the top level; not a registry.")
    for name, entry in entries.items():
        check_entry(name, entry, path)
    return entries


@functools.lru_cache(maxsize=1)
def registry() -> dict[str, dict[str, Any]]:
    """Reads the dataset registry (checked by :func:`read_registry`).

    Returns:
        Mapping of dataset name to its entry (title, task, class_names, files, ...).
    """
    return read_registry(registry_path())


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
    raise ValueError("registry file entry has no checksum (md5 or sha256); fix the entry.")
