"""Files on disk: atomic writes, the write probe of a folder, and checksums.

Every file xraykit writes under a final name (a download, a saved model and its settings, a
checkpoint and its record, a training log, an executed notebook) goes through
:func:`atomic_files` or :func:`atomic_write`: it is written under a temporary name in the same
folder, flushed to disk, and only then renamed onto the final name, so that the final name never
holds a half-written file, even when the process is killed. Folders are checked with
:func:`check_writable` before work starts, so that the error names the folder and says what to
do instead of failing later, halfway through.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import pathlib
import re
import secrets
import tempfile
from collections.abc import Iterator


def _reserve_temporary(path: pathlib.Path, suffix: str) -> pathlib.Path:
    """Creates an empty, new ``.<name>.<random><suffix>`` file next to ``path``.

    Unlike :func:`tempfile.mkstemp`, the file gets the permissions of any new file (``0o666``
    less the umask), so a shared cache or model folder stays readable by others.
    """
    while True:
        candidate = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return candidate


def _sync(path: pathlib.Path) -> None:
    """Flushes a written file's data to the disk."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_files(*paths: str | os.PathLike, temporaries=None,
                 suffix: str = ".part") -> Iterator[list[pathlib.Path]]:
    """Yields temporary paths to write; on success, moves them onto ``paths``, in order.

    For writers that take a path (``model.save``) and for sets of files that belong together
    (a model and its settings): the block writes each temporary file, and only when it ends
    without an error is each one flushed to disk and renamed (atomically) onto its final path.
    When the block fails, the temporary files are removed and the final paths keep what they
    held. If renaming fails after the first file has been moved, the files not yet moved are
    left in place, so that a caller that knows their names can complete the set when it starts
    again (as :class:`xraykit.training.BestCheckpoint` does).

    Example:
        with atomic_files("m.keras", "m.keras.json", suffix=".part.keras") as (model, sidecar):
            keras_model.save(model)
            sidecar.write_text(settings)

    Args:
        *paths: The final paths (their folders must exist).
        temporaries: Fixed temporary paths, one per final path (default: new hidden files
            ``.<name>.<random><suffix>`` next to each final path).
        suffix: Ending of the default temporary names (``.part.keras`` for ``model.save``,
            which needs the ``.keras`` ending).

    Yields:
        The temporary paths, one per final path.

    Raises:
        ValueError: If ``temporaries`` does not give one path per final path.
        OSError: If a temporary file cannot be created or renamed.
    """
    finals = [pathlib.Path(p) for p in paths]
    if temporaries is None:
        temps = []
        try:
            for final in finals:
                temps.append(_reserve_temporary(final, suffix))
        except BaseException:
            for temp in temps:
                temp.unlink(missing_ok=True)
            raise
    else:
        temps = [pathlib.Path(p) for p in temporaries]
        if len(temps) != len(finals):
            raise ValueError(f"atomic_files: {len(finals)} path(s) but {len(temps)} "
                             "temporary path(s); give one temporary path per final path.")
    moved = 0
    try:
        yield temps
        for temp in temps:
            _sync(temp)
        for temp, final in zip(temps, finals):
            os.replace(temp, final)
            moved += 1
    except BaseException:
        if not moved:  # nothing is in place yet: the final paths keep what they held
            for temp in temps:
                temp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None,
                 newline: str | None = None, suffix: str = ".part") -> Iterator:
    """Opens a temporary file next to ``path``; when the block succeeds, it becomes ``path``.

    The file is written under a hidden name (``.<name>.<random>.part``) in the same folder,
    flushed to disk, then renamed onto ``path`` (atomically): ``path`` never holds a
    half-written file. When the block raises (or the process is interrupted), the temporary
    file is removed and ``path`` keeps what it held. Raise inside the block to refuse what was
    written (a checksum that does not match).

    Example:
        with atomic_write("labels.csv", "w", encoding="utf-8") as handle:
            handle.write(text)

    Args:
        path: The final path (its folder must exist).
        mode: A write mode of :func:`open` (``"wb"`` or ``"w"``).
        encoding: Text encoding for text modes.
        newline: Newline handling for text modes (``""`` for the :mod:`csv` module).
        suffix: Ending of the temporary name.

    Yields:
        The open file.

    Raises:
        OSError: If the temporary file cannot be created, written or renamed.
    """
    with atomic_files(path, suffix=suffix) as (temp,):
        with open(temp, mode, encoding=encoding, newline=newline) as handle:
            yield handle


def check_writable(folder: str | os.PathLike, what: str, todo: str,
                   error: type[OSError] | None = None) -> pathlib.Path:
    """Creates a folder if needed and checks that files can be written in it.

    Args:
        folder: The folder.
        what: What the folder is, for the message (``"run_dir"``, ``"download cache"``).
        todo: What to do instead, for the message (``"pass a folder you can write to"``).
        error: The ``OSError`` subclass to raise (default: the one that matches the cause,
            e.g. ``NotADirectoryError`` or ``PermissionError``).

    Returns:
        The folder, as a path.

    Raises:
        OSError: If the folder is a file, or cannot be created or written; the message names
            the folder, says why, and says what to do.
    """
    path = pathlib.Path(folder)
    if path.exists() and not path.is_dir():
        message = f"{what} {path} is a file, not a folder: {todo}."
        raise error(message) if error else OSError(errno.ENOTDIR, message)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as cause:
        message = (f"{what} {path} cannot be created or written "
                   f"({cause.strerror or cause}): {todo}.")
        raise (error(message) if error else OSError(cause.errno, message)) from cause
    return path


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


def check_relative(relative, where: str) -> pathlib.PurePosixPath:
    r"""Checks that a name is a relative path that stays inside its folder.

    For file and folder names that come from a document (a registry entry): they are joined
    to a folder xraykit writes in, so they must not climb out of it.

    Args:
        relative: The name, e.g. ``"pneumoniamnist.npz"`` or ``"images/00001.png"``.
        where: What gave it, for the message (``"datasets.yaml: dataset 'x', field 'folder'"``).

    Returns:
        The name as a relative POSIX path.

    Raises:
        ValueError: If it is not a non-empty string, is absolute (``/x``, ``C:\\x``), contains
            ``..``, a backslash or a NUL, or names the folder itself (``.``).
    """
    if not isinstance(relative, str) or not relative.strip():
        raise ValueError(f"{where}: a file name is required, not {relative!r}.")
    bad = ("\x00" in relative or "\\" in relative or relative.startswith("/")
           or re.match(r"^[A-Za-z]:", relative) is not None)
    path = pathlib.PurePosixPath(relative)
    if bad or ".." in path.parts or not path.parts or path == pathlib.PurePosixPath("."):
        raise ValueError(f"{where}: {relative!r} is not a plain relative file name (no "
                         "absolute path, '..', backslash or empty part); fix the entry.")
    return path


def resolve_inside(root: str | os.PathLike, relative, where: str) -> pathlib.Path:
    """Joins a relative name to a folder and checks the result is inside it, links followed.

    Args:
        root: The folder (the download cache, a sample's folder).
        relative: The name (see :func:`check_relative`).
        where: What gave it, for the message.

    Returns:
        ``root / relative`` (not resolved: the caller's spelling of ``root`` is kept).

    Raises:
        ValueError: If the name is not a plain relative name, or the path, once symbolic
            links are followed, lies outside ``root``.
    """
    path = pathlib.Path(root) / check_relative(relative, where)
    real_root = pathlib.Path(root).resolve()
    if not path.resolve().is_relative_to(real_root):
        raise ValueError(f"{where}: {relative!r} leads outside {root} (through a symbolic "
                         f"link, to {path.resolve()}); remove the link or fix the entry.")
    return path
