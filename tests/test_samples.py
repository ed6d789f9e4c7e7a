"""The real sample radiographs: registry pins, mirror, cache and verified download on loopback.

A loopback HTTP server serves a folder laid out like ../shared/data in place of the public URLs
(XRAYKIT_MIRROR_URL), so every sample downloads and verifies here without the network.
"""

import csv
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading

import pytest

from xraykit import datasets, downloads, samples

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIRRORED = ["nih-cxr14-sample", "chest-dicom-samples"]  # the samples ../shared/data holds


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(folder):
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """An empty download cache, no local mirror, and public URLs that cannot be reached."""
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    monkeypatch.delenv(samples.MIRROR_URL_ENV, raising=False)
    monkeypatch.setattr(downloads, "DOWNLOAD_TIMEOUT", 5)
    return tmp_path / "cache"


@pytest.fixture()
def mirror(shared_data, cache, monkeypatch):
    """../shared/data served on loopback as the sample mirror."""
    httpd, url = _serve(shared_data)
    monkeypatch.setenv(samples.MIRROR_URL_ENV, url)
    yield url
    httpd.shutdown()


def test_every_sample_file_is_pinned_to_a_commit_with_a_checksum():
    assert set(MIRRORED) | {"pydicom-chest-cr"} <= set(samples.sample_names())
    for name in samples.sample_names():
        for relative, entry in datasets.info(name)["sample_files"].items():
            algorithm, digest = datasets.expected_hash(entry)
            assert re.fullmatch(r"[0-9a-f]{32}|[0-9a-f]{64}", digest), (name, relative)
            if "url" in entry:
                assert re.match(r"https://raw\.githubusercontent\.com/[^/]+/[^/]+/[0-9a-f]{40}/",
                                entry["url"]), f"{name} {relative} is not pinned to a commit"
            else:
                assert entry["pydicom_testdata"] == relative


@pytest.mark.parametrize("name", MIRRORED)
def test_shared_data_is_a_byte_identical_mirror(name, shared_data, cache):
    folder = samples.local_sample(name, data=shared_data)
    assert folder == shared_data / datasets.info(name)["folder"]


@pytest.mark.parametrize("name", MIRRORED)
def test_every_sample_downloads_verifies_and_is_found_by_the_lessons(name, mirror, cache, capsys):
    folder = samples.course_sample(name)  # no DATA: cache, then download from the mirror
    assert folder == cache / "datasets" / "xraykit" / "samples" / datasets.info(name)["folder"]
    assert set(samples.verify_sample(name).values()) == {"ok"}
    assert "Downloading" in capsys.readouterr().out
    assert not list(folder.rglob("*.part"))
    assert samples.course_sample(name) == folder  # second time: from the cache, silently
    assert "Downloading" not in capsys.readouterr().out


def test_downloaded_nih_sample_loads_with_labels_matching_nih(mirror, shared_data):
    folder = samples.sample("nih-cxr14-sample")
    written = {row["image"]: row for row in csv.DictReader(open(folder / "labels.csv"))}
    shared = {row["image"]: row for row in csv.DictReader(open(
        shared_data / "nih_cxr14_sample" / "labels.csv"))}
    assert written.keys() == shared.keys() and len(written) == 64
    for image, row in written.items():
        for column in row:
            assert row[column] == shared[image][column], (image, column)
    assert "patient_id" not in next(iter(written.values()))  # no identifier in what we write
    data = datasets.load_folder(folder / "images", image_size=32,
                                labels_csv=folder / "labels.csv", label_columns=["pneumonia"])
    assert data.images.shape == (64, 32, 32, 1) and int(data.labels.sum()) == 16


def test_a_file_with_the_wrong_checksum_is_refused(shared_data, cache, tmp_path, monkeypatch):
    served = tmp_path / "served"
    shutil.copytree(shared_data / "dicom", served / "dicom")
    with open(served / "dicom" / "cr_mono2_8bit_jpeg_chest.dcm", "r+b") as handle:
        handle.seek(2000)
        handle.write(b"\x00" * 16)
    httpd, url = _serve(served)
    try:
        with pytest.raises(ConnectionError, match=r"cr_mono2_8bit_jpeg_chest\.dcm.*md5"):
            samples.download_sample("chest-dicom-samples", url=url)
    finally:
        httpd.shutdown()
    folder = cache / "datasets" / "xraykit" / "samples" / "dicom"
    assert (folder / "cr_mono1_10bit_chest_nometa.dcm").is_file()  # the good one is kept
    assert not (folder / "cr_mono2_8bit_jpeg_chest.dcm").exists()
    assert not list(folder.glob("*.part"))
    assert samples.local_sample("chest-dicom-samples") is None  # incomplete is not found


def test_offline_without_mirror_the_lesson_gets_none_and_one_line(cache, monkeypatch, capsys):
    monkeypatch.setenv(samples.MIRROR_URL_ENV, "http://127.0.0.1:9")  # nothing listens there
    assert samples.course_sample("chest-dicom-samples") is None
    out = capsys.readouterr().out
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1 and "XRAYKIT_DATA" in skipped[0] and "dicom/" in skipped[0]


def test_a_dataset_that_is_not_a_sample_is_refused():
    with pytest.raises(ValueError, match="not a sample.*nih-cxr14-sample"):
        samples.sample("pneumoniamnist")


def test_cli_downloads_and_verifies_a_sample(mirror, cache):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = functools.partial(subprocess.run, capture_output=True, text=True, env=env, timeout=120)
    fetched = run([sys.executable, "-m", "xraykit", "datasets", "download",
                   "chest-dicom-samples"])
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.strip().splitlines()[-1].endswith("samples/dicom")
    checked = run([sys.executable, "-m", "xraykit", "datasets", "verify", "chest-dicom-samples"])
    assert checked.returncode == 0 and "2 of 2 files ok" in checked.stdout
    (cache / "datasets" / "xraykit" / "samples" / "dicom" / "cr_mono2_8bit_jpeg_chest.dcm").unlink()
    missing = run([sys.executable, "-m", "xraykit", "datasets", "verify", "chest-dicom-samples"])
    assert missing.returncode == 1 and "cr_mono2_8bit_jpeg_chest.dcm: missing" in missing.stdout
