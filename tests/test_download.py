"""Verified downloads against a local HTTP server on loopback (no network needed)."""

import hashlib
import http.server
import shutil
import threading

import pytest

from xraykit import datasets

PAYLOAD = b"xraykit test payload " * 4096
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):  # noqa: N802 - http.server naming
        body, declared = self.routes.get(self.path.split("?")[0], (None, None))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(declared or len(body)))
        self.end_headers()
        self.wfile.write(body)  # a declared length above len(body) makes a truncated download

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    _Handler.routes = {
        "/good.npz": (PAYLOAD, None),
        "/corrupt.npz": (PAYLOAD[:-10] + b"0123456789", None),
        "/truncated.npz": (PAYLOAD[: len(PAYLOAD) // 2], len(PAYLOAD)),
    }
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path))
    return tmp_path / "datasets" / "xraykit"


@pytest.fixture()
def test_registry(monkeypatch, server):
    entries = {"testset": {
        "title": "test", "task": "binary", "class_names": ["a", "b"], "access": "direct",
        "files": {28: {"filename": "testset.npz", "url": f"{server}/good.npz", "md5": MD5}},
    }}
    monkeypatch.setattr(datasets, "registry", lambda: entries)
    return entries


def test_good_download_is_cached_and_verified(test_registry, cache):
    path = datasets.download("testset", size=28)
    assert path == cache / "testset.npz"
    assert path.read_bytes() == PAYLOAD
    assert datasets.verify("testset") == {28: "ok"}


def test_cached_file_with_wrong_checksum_is_replaced(test_registry, cache, capsys):
    cache.mkdir(parents=True)
    (cache / "testset.npz").write_bytes(b"stale or tampered")
    assert datasets.verify("testset") == {28: "checksum mismatch"}
    path = datasets.download("testset", size=28)
    assert path.read_bytes() == PAYLOAD
    assert "fails its md5 check" in capsys.readouterr().out


@pytest.mark.parametrize("route", ["corrupt.npz", "truncated.npz", "missing.npz"])
def test_bad_download_leaves_nothing_in_cache(test_registry, cache, server, route):
    with pytest.raises(ConnectionError, match="Could not download testset") as err:
        datasets.download("testset", size=28, url=f"{server}/{route}")
    assert route in str(err.value)
    assert not (cache / "testset.npz").exists()
    assert datasets.verify("testset") == {28: "missing"}


def test_offline_error_names_url_and_local_file_option(test_registry, cache):
    url = "http://127.0.0.1:9/testset.npz"  # discard port: connection refused
    with pytest.raises(ConnectionError) as err:
        datasets.download("testset", size=28, url=url)
    message = str(err.value)
    assert url in message and "load('/path/to/testset.npz')" in message


def test_shared_rebuild_is_rejected_as_official_cached_file(pneumonia_npz, cache, server):
    """The shared PneumoniaMNIST copy is a faithful rebuild whose MD5 is not the official one."""
    cache.mkdir(parents=True)
    official = cache / "pneumoniamnist.npz"
    shutil.copyfile(pneumonia_npz, official)
    assert datasets.verify("pneumoniamnist", size=28) == {28: "checksum mismatch"}
    with pytest.raises(ConnectionError):
        datasets.download("pneumoniamnist", size=28, url=f"{server}/missing.npz")
    assert not official.exists()
    # As an explicitly given local file it loads fine.
    assert len(datasets.load(pneumonia_npz).x_train) == 4708


def test_manual_dataset_explains_how_to_get_it():
    with pytest.raises(ValueError, match="cannot be downloaded automatically"):
        datasets.download("rsna-pneumonia")
    with pytest.raises(ValueError, match="no 32 px file"):
        datasets.download("pneumoniamnist", size=32)


def test_verified_cache_is_used_without_the_network(test_registry, cache):
    datasets.download("testset", size=28)
    path = datasets.download("testset", size=28, url="http://127.0.0.1:9/unreachable.npz")
    assert path.read_bytes() == PAYLOAD
