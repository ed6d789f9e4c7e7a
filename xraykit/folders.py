"""Folders of radiographs: image files in class subfolders or with a labels CSV.

Two layouts are read: class subfolders (``NORMAL/``, ``PNEUMONIA/``: Guangzhou style) and image
files with a labels CSV (NIH style). Every CSV row is validated (paths stay inside the folder,
labels are 0/1 or unknown, one row per image) and every error names the CSV, its line and
column. :func:`load_folder` reads the images into memory, or streams them in batches
(:class:`xraykit.folder_stream.FolderSequence`) for folders too big for memory.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import os
import pathlib
import re
import stat
import warnings
from collections.abc import Sequence

import numpy as np

from xraykit.images import IMAGE_SUFFIXES, UnreadableFileWarning, read_images


def _natural_key(path: pathlib.Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_images(folder: str | os.PathLike) -> list[pathlib.Path]:
    """Lists image files under a folder, recursively, sorted.

    The endings looked for are :data:`xraykit.images.IMAGE_SUFFIXES` (those
    :func:`xraykit.read_image` reads). Entries with such a name that are not regular files
    (a FIFO, a socket, a device, a link to nothing) are left out without being opened, and
    named in one :class:`xraykit.images.UnreadableFileWarning`.

    Args:
        folder: The folder.

    Returns:
        The image files, by folder then natural order of names.
    """
    folder = pathlib.Path(folder)
    found, skipped = [], []
    for path in folder.rglob("*"):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        try:
            regular = stat.S_ISREG(path.stat().st_mode)
        except OSError:  # a link to nothing, or no permission to look
            regular = False
        (found if regular else skipped).append(path)
    if skipped:
        names = "".join(f"\n  {path}" for path in sorted(skipped))
        warnings.warn(f"{len(skipped)} entry(ies) named like images are not regular files (a "
                      f"FIFO, socket, device or broken link) and were skipped:{names}",
                      UnreadableFileWarning, stacklevel=2)
    return sorted(found, key=lambda p: (str(p.parent), _natural_key(p)))


def gather_images(paths) -> list[pathlib.Path]:
    """The image files named by a list of files and folders (folders searched recursively).

    ``python -m xraykit predict`` and :func:`xraykit.predict` both read their paths through it.

    Args:
        paths: Files (any name: a DICOM may have no suffix) and folders.

    Returns:
        The files, in the order given, each folder's files sorted.

    Raises:
        FileNotFoundError: If a path does not exist.
        ValueError: If no path is given, or a folder holds no image file (the suffixes read are
            listed).
        TypeError: If an item is not a path.
    """
    if not paths:
        raise ValueError("no image path given: name files or folders to predict.")
    found: list[pathlib.Path] = []
    for i, given in enumerate(paths):
        if not isinstance(given, (str, os.PathLike)):
            raise TypeError(f"the paths mix file paths and other items (item {i} is of type "
                            f"{type(given).__name__}); pass a list of paths or one image array.")
        path = pathlib.Path(given)
        if path.is_dir():
            inside = list_images(path)
            if not inside:
                raise ValueError(f"{path}: no image file in this folder (looked for "
                                 f"{', '.join(IMAGE_SUFFIXES)}, recursively).")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder.")
    return found


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


def _csv_rows(csv_path: pathlib.Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """Reads a labels CSV as UTF-8: its columns and its ``(line, row)`` pairs."""
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
    return columns, rows


def _csv_columns(csv_path: pathlib.Path, columns: list[str], image_column: str,
                 label_columns) -> list[str]:
    """Checks a labels CSV's header and returns its label columns."""
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
    return label_columns


def _csv_items(folder: pathlib.Path, csv_path: pathlib.Path, image_column: str, label_columns):
    """Reads a labels CSV into ``(path, labels)`` pairs, validating every row."""
    columns, rows = _csv_rows(csv_path)
    label_columns = _csv_columns(csv_path, columns, image_column, label_columns)
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
        resize_mode: ``"pad"`` or ``"crop"`` (see :func:`xraykit.pixels.resize_square`).
        workers: Threads reading files in parallel.
        stream: Return a :class:`xraykit.folder_stream.FolderSequence` (a
            ``keras.utils.PyDataset``) that reads batches on demand, for folders too big for
            memory.
        batch_size: Batch size of the stream.
        strict: Raise on the first unreadable file instead of leaving it out.

    Returns:
        A :class:`FolderData` (``stream=False``) or a ``keras.utils.PyDataset`` of batches.
        Unreadable files are listed by name in ``failed`` and in an
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
        from xraykit.folder_stream import FolderSequence  # imports keras: only when streaming

        return FolderSequence(items, names, task, image_size, resize_mode, batch_size, workers,
                              label_dtype=_label_dtype(items))
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
