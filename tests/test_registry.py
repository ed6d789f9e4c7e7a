"""Schema of every datasets.yaml entry."""

import re

import pytest

from xraykit import registry

REQUIRED = {"title", "task", "class_names", "access", "license", "citation", "homepage"}
TASKS = {"binary", "multilabel", "multiclass"}
HEX = {"md5": re.compile(r"^[0-9a-f]{32}$"), "sha256": re.compile(r"^[0-9a-f]{64}$")}


def test_registry_lists_the_required_datasets():
    names = set(registry.list_datasets())
    assert {"pneumoniamnist", "chestmnist", "nih-chestxray14", "guangzhou-pneumonia",
            "montgomery-tb", "shenzhen-tb", "rsna-pneumonia", "synthetic"} <= names


@pytest.mark.parametrize("name", registry.list_datasets())
def test_entry_schema(name):
    entry = registry.info(name)
    assert REQUIRED <= set(entry), f"{name} lacks {REQUIRED - set(entry)}"
    assert entry["access"] in {"direct", "manual", "generated", "sample"}
    if entry["access"] == "sample" and entry["task"] == "unlabelled":  # example files, no labels
        assert entry["class_names"] == [] and "labels" not in entry
    else:
        assert entry["task"] in TASKS
        assert len(entry["class_names"]) >= 2
        assert all(isinstance(c, str) for c in entry["class_names"])
    if entry["access"] == "sample":
        assert entry["folder"] and entry["sample_files"]
        for file_entry in entry["sample_files"].values():
            assert file_entry.get("url", "https://").startswith("https://")
            assert set(entry.get("labels", {}).get("columns", [])) <= set(file_entry.get("row", {}))
    assert entry["homepage"].startswith("https://")
    if entry["access"] == "manual":
        assert len(entry.get("instructions", "")) > 40
    if entry["access"] == "direct":
        assert entry["files"], f"{name} is direct but lists no file"
        for size, file_entry in entry["files"].items():
            assert int(size) > 0
            assert file_entry["url"].startswith("https://")
            checksums = [a for a in HEX if a in file_entry]
            assert checksums, f"{name} {size} px has no checksum"
            for algorithm in checksums:
                assert HEX[algorithm].match(file_entry[algorithm])


def test_medmnist_checksums_match_the_medmnist_package():
    """The MD5s are the ones medmnist 3.0.2's info.py publishes (see design.md)."""
    expected = {
        ("pneumoniamnist", 28): "28209eda62fecd6e6a2d98b1501bb15f",
        ("pneumoniamnist", 224): "d6a3c71de1b945ea11211b03746c1fe1",
        ("chestmnist", 28): "02c8a6516a18b556561a56cbdd36c4a8",
        ("chestmnist", 224): "45bd33e6f06c3e8cdb481c74a89152aa",
    }
    for (name, size), md5 in expected.items():
        assert registry.info(name)["files"][size]["md5"] == md5


def test_unknown_dataset_names_the_registered_ones():
    with pytest.raises(KeyError, match="pneumoniamnist"):
        registry.info("not-a-dataset")
