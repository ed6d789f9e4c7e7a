"""Verified downloads into the cache: checksums, temporary file, lock, progress, stall and deadline.

Downloads are cached under ``$KERAS_HOME/datasets/xraykit`` (``~/.keras`` by default; override
with ``XRAYKIT_CACHE``): written to a temporary file, verified against the registry's checksum,
then renamed, under a file lock. Not ``keras.utils.get_file``: it writes to the final name and
silently moves to ``/tmp`` when the cache folder is not writable. The dataset files
(:func:`download`) and the lessons' samples (:mod:`xraykit.samples`) both come through
:func:`fetch_verified`.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import math
import os
import pathlib
import time
import urllib.error
import urllib.request

from xraykit import files, urls
from xraykit.files import file_checksum
from xraykit.registry import check_size, expected_hash, file_entries, file_entry

CACHE_ENV = "XRAYKIT_CACHE"
# A local folder (or .npz) laid out like ../shared/data, used before any download.
DATA_ENV = "XRAYKIT_DATA"
# A server laid out like ../shared/data, used instead of the public URLs.
MIRROR_URL_ENV = "XRAYKIT_MIRROR_URL"
DOWNLOAD_TIMEOUT = 60  # seconds without data before a download is abandoned
DOWNLOAD_DEADLINE = 3600  # seconds a whole download may take (a trickling server must not hang)
# The minimum-rate rule (like curl --speed-limit/--speed-time): a download that brings fewer than
# DOWNLOAD_MIN_RATE bytes/s on average over the last DOWNLOAD_RATE_WINDOW seconds is given up.
DOWNLOAD_MIN_RATE = 1024
DOWNLOAD_RATE_WINDOW = 30


def cache_dir() -> pathlib.Path:
    """Where downloads are cached: ``$XRAYKIT_CACHE``, else ``$KERAS_HOME`` or ``~/.keras``.

    Returns:
        The directory that holds the ``datasets/xraykit`` cache folder.
    """
    root = os.environ.get(CACHE_ENV) or os.environ.get("KERAS_HOME") or "~/.keras"
    return pathlib.Path(root).expanduser()


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


def _progress_bar(total: int | None):
    """A Keras progress bar, imported only once a download has really started."""
    import keras

    return keras.utils.Progbar(total, unit_name="byte")


class _RateGuard:
    """The minimum-rate rule: fewer than ``min_rate`` bytes/s over the last ``window`` s fails.

    A sliding window: after each block, the bytes received since the oldest sample still at
    least ``window`` s old are compared with ``min_rate * elapsed``.
    """

    def __init__(self, min_rate: float, window: float):
        self.min_rate, self.window = min_rate, window
        self.samples = collections.deque([(time.monotonic(), 0)])

    def check(self, done: int) -> None:
        """Records the bytes received so far; raises when the last window was too slow.

        Raises:
            TimeoutError: If the average rate over the last ``window`` s is below ``min_rate``.
        """
        now = time.monotonic()
        self.samples.append((now, done))
        while len(self.samples) > 1 and self.samples[1][0] <= now - self.window:
            self.samples.popleft()
        then, done_then = self.samples[0]
        if self.min_rate > 0 and now - then >= self.window:
            rate = (done - done_then) / (now - then)
            if rate < self.min_rate:
                raise TimeoutError(
                    f"the server sent {rate:.0f} bytes/s over the last {now - then:.0f} s, below "
                    f"the minimum of {self.min_rate:g} bytes/s over {self.window:g} s (min_rate=,"
                    f" rate_window=)")


@dataclasses.dataclass(frozen=True)
class _Limits:
    """When a fetch is given up: stalled, slower than the rate rule, or past its deadline."""

    timeout: float
    deadline: float
    min_rate: float
    rate_window: float


def _check_limits(limits: _Limits) -> None:
    """Refuses limits that are not finite and positive (``min_rate=0`` turns its rule off).

    Raises:
        ValueError: Naming the argument.
    """
    for name, value in dataclasses.asdict(limits).items():
        unit, zero_ok = ("bytes/s", True) if name == "min_rate" else ("seconds", False)
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok)):
            raise ValueError(f"{name}= must be a finite number of {unit} "
                             f"{'>= 0' if zero_ok else '> 0'}, not {value!r}.")


def _fetch(origin: str, handle, algorithm: str, limits: _Limits) -> str:
    """Streams ``origin`` into an open file and returns the checksum of what was written.

    Raises:
        urllib.error.URLError: If the server cannot be reached or answers with an error.
        TimeoutError: If no data arrives for ``timeout`` s, the data arrives slower than the
            minimum rate of ``limits``, or the whole transfer takes longer than ``deadline`` s
            (checked between blocks, so it may overrun by ``timeout``).
    """
    timeout, deadline = limits.timeout, limits.deadline
    guard = _RateGuard(limits.min_rate, limits.rate_window)
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
            guard.check(done)
    if total is not None and done != total:
        raise ConnectionError(f"the server sent {done} of {total} bytes")
    return digest.hexdigest()


def _reason(err: BaseException) -> str:
    """One line saying why a fetch failed."""
    if isinstance(err, urllib.error.HTTPError):
        return f"the server answered HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"cannot reach the server ({err.reason})"
    return str(err) or type(err).__name__


def _download_into(handle, origin: str, algorithm: str, expected: str, what: str, hint: str,
                   limits: _Limits) -> None:
    """Streams ``origin`` into ``handle`` and checks its checksum, or says why it failed.

    Raises:
        ConnectionError: If the file cannot be fetched or its checksum does not match.
    """
    try:
        got = _fetch(origin, handle, algorithm, limits)
        if got != expected:
            raise ValueError(f"{algorithm} of the downloaded file is {got}, expected "
                             f"{expected} (a corrupted or different file)")
    except Exception as err:
        raise ConnectionError(
            f"Could not download {what} from {urls.redact_url(origin)}: "
            f"{urls.redact_text(_reason(err))}. Check the "
            f"connection and try again (a slow link may need a larger "
            f"timeout=/deadline=){hint}."
        ) from err


def fetch_verified(origin: str, target: pathlib.Path, algorithm: str, expected: str, what: str,
                   hint: str = "", timeout: float | None = None,
                   deadline: float | None = None, min_rate: float | None = None,
                   rate_window: float | None = None) -> pathlib.Path:
    """Fetches one file into the cache, verified, atomically and once across processes.

    The file is written to a temporary ``.<filename>.*.part`` file next to ``target``, checked,
    and only then renamed (atomically) to ``target`` (see :func:`xraykit.files.atomic_write`),
    so the final name never holds a partial or unverified file, even if the process is killed.
    A file lock makes concurrent fetches of the same file (two notebooks, two processes)
    download it once; temporary files left by a killed process are removed by the next fetch.
    A cached file whose checksum does not match is removed and fetched again.

    Args:
        origin: URL of the file.
        target: Final path in the cache.
        algorithm: ``"md5"`` or ``"sha256"``.
        expected: The expected hex digest.
        what: What is being fetched, for messages (e.g. ``"pneumoniamnist (28 px)"``).
        hint: What to do instead, appended to the error when the fetch fails.
        timeout: Seconds without data before giving up (default ``DOWNLOAD_TIMEOUT``).
        deadline: Seconds the whole fetch may take (default ``DOWNLOAD_DEADLINE``).
        min_rate: Bytes per second below which, on average over ``rate_window`` s, the fetch
            is given up (default ``DOWNLOAD_MIN_RATE``; 0 turns the rule off).
        rate_window: Seconds the rate is averaged over (default ``DOWNLOAD_RATE_WINDOW``).

    Returns:
        ``target``, holding the verified file.

    Raises:
        ValueError: If ``origin`` is not an http(s) URL.
        ConnectionError: If the file cannot be fetched (offline, server error, stalled, too
            slow, past the deadline, bad checksum).
        PermissionError: If the cache folder cannot be created or written.
        IsADirectoryError: If ``target`` is a folder.
    """
    import filelock

    timeout = DOWNLOAD_TIMEOUT if timeout is None else timeout
    deadline = DOWNLOAD_DEADLINE if deadline is None else deadline
    limits = _Limits(timeout, deadline, DOWNLOAD_MIN_RATE if min_rate is None else min_rate,
                     DOWNLOAD_RATE_WINDOW if rate_window is None else rate_window)
    _check_limits(limits)
    urls.check_url(origin, f"{what}: the download address")
    folder = target.parent
    if cached_state(target, algorithm, expected) == "ok":
        return target  # a verified cache needs no write access (a shared, read-only cache)
    files.check_writable(folder, "download cache",
                         f"set {CACHE_ENV} to a writable folder (e.g. "
                         f"{CACHE_ENV}=/tmp/xraykit-cache)", error=PermissionError)
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
        print(f"Downloading {what} from {urls.redact_url(origin)}")
        with files.atomic_write(target) as handle:
            _download_into(handle, origin, algorithm, expected, what, hint, limits)
    finally:
        lock.release()
    return target


def entry_path(folder: pathlib.Path, name: str, relative) -> pathlib.Path:
    """Where a file a registry entry names lives under ``folder``, checked to stay inside it.

    Args:
        folder: The cache folder (or a sample's folder in it).
        name: The dataset, for the message.
        relative: The file name the entry gives.

    Returns:
        ``folder / relative``.

    Raises:
        ValueError: If the name is empty, absolute, climbs out with ``..`` or leads out
            through a symbolic link; the message names the dataset.
    """
    return files.resolve_inside(folder, relative, f"dataset {name!r}: file {relative!r}")


def download(name: str, size: int = 28, url: str | None = None, *,
             timeout: float | None = None, deadline: float | None = None,
             min_rate: float | None = None, rate_window: float | None = None) -> pathlib.Path:
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
        min_rate: Bytes per second below which, averaged over ``rate_window`` s, the
            download is given up (default ``DOWNLOAD_MIN_RATE``).
        rate_window: Seconds the rate is averaged over (default ``DOWNLOAD_RATE_WINDOW``).

    Returns:
        Path of the verified file.

    Raises:
        ValueError: If the dataset is not directly downloadable, the size is unknown, the
            URL is not http(s), or the entry's file name leaves the cache folder.
        ConnectionError: If the file cannot be fetched (offline, server error, stalled, past
            the deadline, bad checksum).
        PermissionError: If the cache folder cannot be created or written.
        IsADirectoryError: If the cache entry for the file is a folder.
    """
    entry = file_entry(name, size)
    algorithm, expected = expected_hash(entry)
    hint = (f", or download the file elsewhere and pass it directly: "
            f"xraykit.datasets.load('/path/to/{entry['filename']}'), or set {DATA_ENV} to the "
            f"folder that holds it")
    target = entry_path(cache_folder(), name, entry.get("filename"))
    mirror = os.environ.get(MIRROR_URL_ENV)
    if mirror:
        urls.check_url(mirror, f"${MIRROR_URL_ENV}")
    if url is not None:
        origin = url
    else:
        origin = f"{mirror.rstrip('/')}/{name}/{entry['filename']}" if mirror else entry["url"]
    return fetch_verified(origin, target, algorithm, expected, f"{name} ({size} px)", hint,
                          timeout, deadline, min_rate, rate_window)


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
    entries = file_entries(name)
    if size is not None and entries:
        check_size(name, size, entries)
    status = {}
    for file_size, entry in sorted(entries.items()):
        if size is not None and file_size != int(size):
            continue
        algorithm, expected = expected_hash(entry)
        target = entry_path(cache_folder(), name, entry.get("filename"))
        status[file_size] = cached_state(target, algorithm, expected)
    return status
