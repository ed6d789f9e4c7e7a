"""Verified downloads against a local HTTP server on loopback (no network needed)."""

import hashlib
import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from xraykit import datasets, downloads, registry

PAYLOAD = b"xraykit test payload " * 4096
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}
    hits: dict = {}
    half_sent = threading.Event()  # /hang.npz sent its first half and now waits for `release`
    release = threading.Event()

    def do_GET(self):  # noqa: N802 - http.server naming
        path = self.path.split("?")[0]
        body, declared = self.routes.get(path, (None, None))
        if body is None:
            self.send_error(404)
            return
        self.hits[path] = self.hits.get(path, 0) + 1
        self.send_response(200)
        self.send_header("Content-Length", str(declared or len(body)))
        self.end_headers()
        try:
            if path == "/hang.npz":  # half the file, then silence
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.half_sent.set()
                self.release.wait(30)
            elif path in ("/slow.npz", "/trickle.npz"):
                step, pause = (8192, 0.05) if path == "/slow.npz" else (1, 0.5)
                for start in range(0, len(body), step):
                    self.wfile.write(body[start:start + step])
                    self.wfile.flush()
                    time.sleep(pause)
            else:
                self.wfile.write(body)  # a declared length above len(body) makes a truncated file
        except OSError:  # the client gave up or was killed
            pass

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    _Handler.routes = {
        "/good.npz": (PAYLOAD, None),
        "/corrupt.npz": (PAYLOAD[:-10] + b"0123456789", None),
        "/truncated.npz": (PAYLOAD[: len(PAYLOAD) // 2], len(PAYLOAD)),
        "/hang.npz": (PAYLOAD, None),
        "/slow.npz": (PAYLOAD, None),
        "/trickle.npz": (PAYLOAD, None),
    }
    _Handler.hits = {}
    _Handler.half_sent.clear()
    _Handler.release.clear()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    _Handler.release.set()
    httpd.shutdown()


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(downloads.CACHE_ENV, str(tmp_path))
    return tmp_path / "datasets" / "xraykit"


@pytest.fixture()
def test_registry(monkeypatch, server):
    entries = {"testset": {
        "title": "test", "task": "binary", "class_names": ["a", "b"], "access": "direct",
        "files": {28: {"filename": "testset.npz", "url": f"{server}/good.npz", "md5": MD5}},
    }}
    monkeypatch.setattr(registry, "registry", lambda: entries)
    return entries


def test_good_download_is_cached_and_verified(test_registry, cache):
    path = downloads.download("testset", size=28)
    assert path == cache / "testset.npz"
    assert path.read_bytes() == PAYLOAD
    assert downloads.verify("testset") == {28: "ok"}


def test_cached_file_with_wrong_checksum_is_replaced(test_registry, cache, capsys):
    cache.mkdir(parents=True)
    (cache / "testset.npz").write_bytes(b"stale or tampered")
    assert downloads.verify("testset") == {28: "checksum mismatch"}
    path = downloads.download("testset", size=28)
    assert path.read_bytes() == PAYLOAD
    assert "fails its md5 check" in capsys.readouterr().out


@pytest.mark.parametrize("route", ["corrupt.npz", "truncated.npz", "missing.npz"])
def test_bad_download_leaves_nothing_in_cache(test_registry, cache, server, route):
    with pytest.raises(ConnectionError, match="Could not download testset") as err:
        downloads.download("testset", size=28, url=f"{server}/{route}")
    assert route in str(err.value)
    assert not (cache / "testset.npz").exists()
    assert not list(cache.glob("*.part"))
    assert downloads.verify("testset") == {28: "missing"}


def test_offline_error_names_url_and_local_file_option(test_registry, cache):
    url = "http://127.0.0.1:9/testset.npz"  # discard port: connection refused
    with pytest.raises(ConnectionError) as err:
        downloads.download("testset", size=28, url=url)
    message = str(err.value)
    assert url in message and "load('/path/to/testset.npz')" in message


def test_shared_rebuild_is_rejected_as_official_cached_file(pneumonia_npz, cache, server):
    """The shared PneumoniaMNIST copy is a faithful rebuild whose MD5 is not the official one."""
    cache.mkdir(parents=True)
    official = cache / "pneumoniamnist.npz"
    shutil.copyfile(pneumonia_npz, official)
    assert downloads.verify("pneumoniamnist", size=28) == {28: "checksum mismatch"}
    with pytest.raises(ConnectionError):
        downloads.download("pneumoniamnist", size=28, url=f"{server}/missing.npz")
    assert not official.exists()
    # As an explicitly given local file it loads fine.
    assert len(datasets.load(pneumonia_npz).x_train) == 4708


def test_manual_dataset_explains_how_to_get_it():
    with pytest.raises(ValueError, match="cannot be downloaded automatically"):
        downloads.download("rsna-pneumonia")
    with pytest.raises(ValueError, match="no 32 px file"):
        downloads.download("pneumoniamnist", size=32)


def test_verified_cache_is_used_without_the_network(test_registry, cache):
    downloads.download("testset", size=28)
    path = downloads.download("testset", size=28, url="http://127.0.0.1:9/unreachable.npz")
    assert path.read_bytes() == PAYLOAD


# A download in another process, started with the test registry; with a "go" file it waits for
# that file before downloading, so that two processes start their downloads together.
_CHILD = """
import os, sys, time
import keras  # imported before the download starts, so both children race on the download
from xraykit import downloads, registry
url, md5, go = sys.argv[1:4]
registry.registry = lambda: {"testset": {"title": "t", "task": "binary", "class_names": ["a", "b"],
    "access": "direct", "files": {28: {"filename": "testset.npz", "url": url, "md5": md5}}}}
if go != "-":
    open(f"{go}.ready.{os.getpid()}", "w").close()
    while not os.path.exists(go):
        time.sleep(0.02)
print("RESULT", downloads.download("testset", size=28))
"""


def _child(url, cache_root, go="-"):
    env = {**os.environ, downloads.CACHE_ENV: str(cache_root)}
    return subprocess.Popen([sys.executable, "-c", _CHILD, url, MD5, str(go)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, seconds=60):
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


def test_sigkill_mid_download_leaves_no_final_file(test_registry, cache, server):
    child = _child(f"{server}/hang.npz", cache.parent.parent)
    try:
        _wait_for(lambda: _Handler.half_sent.is_set() and list(cache.glob(".testset.npz.*.part")))
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        child.kill()
    assert child.returncode == -signal.SIGKILL
    assert not (cache / "testset.npz").exists()
    assert list(cache.glob(".testset.npz.*.part"))  # the killed process's partial file
    path = downloads.download("testset", size=28)
    assert path == cache / "testset.npz" and path.read_bytes() == PAYLOAD
    assert not list(cache.glob("*.part"))  # the stale partial file was cleaned up


def test_two_processes_fetch_the_file_once(test_registry, cache, server, tmp_path):
    go = tmp_path / "go"
    children = [_child(f"{server}/slow.npz", cache.parent.parent, go) for _ in range(2)]
    try:
        _wait_for(lambda: len(list(tmp_path.glob("go.ready.*"))) == 2, seconds=120)
        go.touch()
        results = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            child.kill()
    for child, (out, err) in zip(children, results):
        assert child.returncode == 0, err[-2000:]
        assert f"RESULT {cache / 'testset.npz'}" in out
    assert (cache / "testset.npz").read_bytes() == PAYLOAD
    assert _Handler.hits == {"/slow.npz": 1}
    assert not list(cache.glob("*.part"))


def test_trickling_server_hits_the_total_deadline(test_registry, cache, server):
    url = f"{server}/trickle.npz"
    started = time.monotonic()
    with pytest.raises(ConnectionError) as err:
        downloads.download("testset", size=28, url=url, timeout=2, deadline=2)
    assert time.monotonic() - started < 15
    message = str(err.value)
    assert url in message and "2 s deadline" in message and "deadline=" in message
    assert not (cache / "testset.npz").exists() and not list(cache.glob("*.part"))


def test_stalled_server_hits_the_stall_timeout(test_registry, cache, server):
    url = f"{server}/hang.npz"
    with pytest.raises(ConnectionError, match="no data arrived for 1 s") as err:
        downloads.download("testset", size=28, url=url, timeout=1)
    assert url in str(err.value)
    assert not (cache / "testset.npz").exists() and not list(cache.glob("*.part"))


def test_missing_cache_folder_is_created(test_registry, tmp_path, monkeypatch):
    root = tmp_path / "new" / "deeper"
    monkeypatch.setenv(downloads.CACHE_ENV, str(root))
    path = downloads.download("testset", size=28)
    assert path == root / "datasets" / "xraykit" / "testset.npz"
    assert path.read_bytes() == PAYLOAD


def test_unwritable_cache_folder_is_an_error_naming_it(test_registry, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(downloads.CACHE_ENV, str(blocker / "sub"))
    with pytest.raises(PermissionError) as err:
        downloads.download("testset", size=28)
    assert not isinstance(err.value, ConnectionError)
    assert str(blocker / "sub" / "datasets" / "xraykit") in str(err.value)
    assert downloads.CACHE_ENV in str(err.value)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root ignores folder permissions")
def test_read_only_cache_folder_is_an_error_naming_it(test_registry, cache):
    cache.mkdir(parents=True)
    cache.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match=str(cache)):
            downloads.download("testset", size=28)
    finally:
        cache.chmod(0o700)


def test_cache_entry_that_is_a_folder_is_named(test_registry, cache):
    (cache / "testset.npz").mkdir(parents=True)
    with pytest.raises(IsADirectoryError, match="testset.npz: this cache entry is a folder"):
        downloads.download("testset", size=28)
    with pytest.raises(IsADirectoryError, match="rm -r"):
        downloads.verify("testset")


def test_trickling_server_is_given_up_by_the_minimum_rate(test_registry, cache, server):
    """1 byte every 0.5 s: far below 1000 bytes/s over a 1 s window, long before the deadline."""
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="below the minimum of 1000 bytes/s over 1 s"):
        downloads.download("testset", size=28, url=f"{server}/trickle.npz", timeout=5,
                           deadline=600, min_rate=1000, rate_window=1)
    assert time.monotonic() - started < 10
    assert not (cache / "testset.npz").exists() and not list(cache.glob("*.part"))


def test_a_slow_but_steady_server_passes_the_minimum_rate(test_registry, cache, server):
    """8 kB every 0.05 s (~160 kB/s) stays above the rule's 1000 bytes/s."""
    path = downloads.download("testset", size=28, url=f"{server}/slow.npz", min_rate=1000,
                              rate_window=0.2)
    assert path.read_bytes() == PAYLOAD


def test_credentials_and_tokens_never_reach_a_message(test_registry, cache, server, capsys):
    secret_url = server.replace("http://", "http://alice:pa55word@") + "/missing.npz?token=T0K3N"
    with pytest.raises(ConnectionError) as err:
        downloads.download("testset", size=28, url=secret_url)
    shown = str(err.value) + capsys.readouterr().out
    assert "pa55word" not in shown and "T0K3N" not in shown and "alice" not in shown
    assert "http://***@127.0.0.1" in shown and "/missing.npz?token=***" in shown


def test_cli_error_lines_are_redacted(tmp_path):
    url = "http://bob:hunter2@127.0.0.1:9/pneumoniamnist.npz?sig=ABC123"
    result = subprocess.run(
        [sys.executable, "-m", "xraykit", "datasets", "download", "pneumoniamnist", "--url", url],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, downloads.CACHE_ENV: str(tmp_path)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert "ABC123" not in result.stderr + result.stdout
    assert "sig=***" in result.stderr


@pytest.mark.parametrize("limits, named", [
    ({"timeout": 0}, "timeout= must be a finite number of seconds > 0"),
    ({"deadline": float("nan")}, "deadline="), ({"rate_window": -1}, "rate_window="),
    ({"min_rate": -5}, "min_rate= must be a finite number of bytes/s >= 0"),
])
def test_download_limits_are_checked(test_registry, cache, limits, named):
    with pytest.raises(ValueError, match=named):
        downloads.download("testset", size=28, **limits)
