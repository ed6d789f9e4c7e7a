"""Hostile and malformed registries: bounded YAML, entry checks, files kept inside the cache."""

import os

import pytest

from xraykit import downloads, files, registry, samples, urls

GOOD_FILE = {"filename": "x.npz", "url": "https://example.org/x.npz", "md5": "0" * 32}


def _entry(**changes):
    entry = {"title": "t", "task": "binary", "class_names": ["a", "b"], "access": "direct",
             "files": {28: dict(GOOD_FILE)}}
    entry.update(changes)
    return entry


def _write(tmp_path, text):
    path = tmp_path / "datasets.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_registry_passes_its_own_checks():
    assert registry.read_registry(registry.registry_path())


def test_aliases_are_refused(tmp_path):
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8))
    path = _write(tmp_path, "datasets:\n  x: 1\n" + laughs)
    with pytest.raises(ValueError, match=r"alias \*a is not allowed") as err:
        registry.read_registry(path)
    assert str(path) in str(err.value)


def test_oversized_registry_is_refused_before_parsing(tmp_path):
    path = _write(tmp_path, "# " + "x" * registry.MAX_REGISTRY_BYTES + "\n")
    with pytest.raises(ValueError, match="larger than"):
        registry.read_registry(path)


@pytest.mark.parametrize("text, named", [
    ("datasets: [1, 2", "not a valid registry document"),
    ("just text", "no 'datasets:' mapping"),
    ("datasets: {}", "no 'datasets:' mapping"),
    ("!!python/object/apply:os.system ['true']", "not a valid registry document"),
    ("datasets: " + "[" * 5000 + "]" * 5000, "nested too deeply|not a valid registry"),
])
def test_unsafe_or_broken_yaml_is_named(tmp_path, text, named):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match=named) as err:
        registry.read_registry(path)
    assert str(err.value).startswith(str(path))


def test_non_utf8_registry_is_named(tmp_path):
    path = tmp_path / "datasets.yaml"
    path.write_bytes(b"datasets:\n  x: \xff\xfe\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        registry.read_registry(path)


@pytest.mark.parametrize("entry, field", [
    ("not a mapping", "must be a mapping"),
    (_entry(title=None), "field 'title'"),
    (_entry(access="ftp"), "field 'access'"),
    (_entry(class_names="ab"), "field 'class_names'"),
    (_entry(files={}), "field 'files'"),
    (_entry(files={"big": GOOD_FILE}), "field 'files.big'"),
    (_entry(files={28: {**GOOD_FILE, "filename": "../../evil.npz"}}), "files.28.filename"),
    (_entry(files={28: {**GOOD_FILE, "filename": "/etc/passwd"}}), "files.28.filename"),
    (_entry(files={28: {**GOOD_FILE, "filename": ""}}), "a file name is required"),
    (_entry(files={28: {**GOOD_FILE, "url": "file:///etc/passwd"}}), "files.28.url"),
    (_entry(files={28: {**GOOD_FILE, "md5": "xyz"}}), "files.28.md5"),
    (_entry(files={28: {"filename": "x.npz", "url": "https://e.org/x"}}), "no checksum"),
    (_entry(access="sample", folder="../out", sample_files={"a.png": GOOD_FILE}),
     "field 'folder'"),
    (_entry(access="sample", folder="s", sample_files={"../a.png": GOOD_FILE}),
     "'sample_files' \\(file name\\)"),
])
def test_malformed_entry_names_the_dataset_and_the_field(entry, field):
    with pytest.raises(ValueError, match=field) as err:
        registry.check_entry("evilset", entry, "reg.yaml")
    assert "reg.yaml" in str(err.value) and "'evilset'" in str(err.value)


@pytest.mark.parametrize("name", ["", ".", "..", "a/../../b", "/abs", "C:\\x", "a\\..\\b",
                                  "a\x00b", None, 3])
def test_check_relative_refuses_names_that_leave_the_folder(name):
    with pytest.raises(ValueError, match="the entry"):
        files.check_relative(name, "the entry")


def test_a_link_out_of_the_cache_is_refused(tmp_path):
    cache, outside = tmp_path / "cache", tmp_path / "outside"
    cache.mkdir()
    outside.mkdir()
    os.symlink(outside, cache / "link")
    assert files.resolve_inside(cache, "sub/ok.npz", "w") == cache / "sub" / "ok.npz"
    with pytest.raises(ValueError, match="leads outside"):
        files.resolve_inside(cache, "link/x.npz", "dataset 'x'")


@pytest.fixture()
def hostile(monkeypatch, tmp_path):
    """A registry that bypasses read_registry's checks: the use-time checks must hold."""
    entries = {}
    monkeypatch.setattr(registry, "registry", lambda: entries)
    monkeypatch.setenv(downloads.CACHE_ENV, str(tmp_path / "cache"))
    return entries


def test_download_never_writes_outside_the_cache(hostile, tmp_path):
    hostile["evil"] = _entry(files={28: {**GOOD_FILE, "filename": "../../../escaped.npz"}})
    with pytest.raises(ValueError, match="dataset 'evil'"):
        downloads.download("evil", 28)
    with pytest.raises(ValueError, match="dataset 'evil'"):
        downloads.verify("evil")
    assert not list(tmp_path.rglob("escaped.npz"))


def test_sample_files_never_leave_the_cache(hostile, tmp_path):
    hostile["evil"] = _entry(access="sample", folder="s",
                             sample_files={"../../../escaped.png": GOOD_FILE})
    with pytest.raises(ValueError, match="dataset 'evil'"):
        samples.download_sample("evil")
    hostile["evil"] = _entry(access="sample", folder="/tmp", sample_files={"a.png": GOOD_FILE})
    with pytest.raises(ValueError, match="dataset 'evil'"):
        samples.verify_sample("evil")
    assert not list(tmp_path.rglob("escaped.png"))


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://host/x", "/local/path", "",
                                 "https://", "javascript:alert(1)"])
def test_only_http_urls_are_fetched(hostile, url):
    hostile["ok"] = _entry()
    with pytest.raises(ValueError, match="not an http:// or https:// URL|a URL is required"):
        downloads.download("ok", 28, url=url)


def test_mirror_variable_must_be_a_web_address(hostile, monkeypatch):
    hostile["ok"] = _entry()
    monkeypatch.setenv(downloads.MIRROR_URL_ENV, "file:///srv/mirror")
    with pytest.raises(ValueError, match=r"\$XRAYKIT_MIRROR_URL"):
        downloads.download("ok", 28)


@pytest.mark.parametrize("url, shown", [
    ("https://user:s3cret@host.org/f.npz", "https://***@host.org/f.npz"),
    ("https://host.org/f.npz?token=s3cret&download=1",
     "https://host.org/f.npz?token=***&download=***"),
    ("http://host.org:8080/f?s3cret", "http://host.org:8080/f?***"),
    ("https://host.org/f.npz#s3cret", "https://host.org/f.npz"),
    ("https://host.org/f.npz", "https://host.org/f.npz"),
])
def test_redaction(url, shown):
    assert urls.redact_url(url) == shown
    assert urls.redact_text(f"failed: {url} (x)") == f"failed: {shown} (x)"
