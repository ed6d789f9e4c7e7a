"""Run profiles and the command line."""

import subprocess
import sys

import pytest

from xraykit import datasets
from xraykit.profiles import PROFILES, get_profile


def test_profiles(monkeypatch):
    assert get_profile("smoke").image_size == 28 and get_profile("smoke").epochs == 1
    assert get_profile("cpu").max_train is None
    monkeypatch.setenv("XRAYKIT_PROFILE", "smoke")
    assert get_profile() is PROFILES["smoke"]
    monkeypatch.setenv("XRAYKIT_PROFILE", "auto")
    assert get_profile().name == "cpu"  # no GPU on the test machines
    with pytest.raises(ValueError, match="XRAYKIT_PROFILE"):
        get_profile("huge")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "xraykit", *args], capture_output=True,
                          text=True, timeout=120)


def test_cli_lists_every_dataset():
    result = _cli("datasets", "list")
    assert result.returncode == 0
    for name in datasets.list_datasets():
        assert name in result.stdout


def test_cli_info_verify_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("XRAYKIT_CACHE", str(tmp_path))
    info = _cli("datasets", "info", "pneumoniamnist")
    assert info.returncode == 0 and "28209eda62fecd6e6a2d98b1501bb15f" in info.stdout
    verify = _cli("datasets", "verify", "pneumoniamnist", "--size", "28")
    assert verify.returncode == 1 and "28 px: missing" in verify.stdout
    unknown = _cli("datasets", "info", "nope")
    assert unknown.returncode == 1 and "Unknown dataset" in unknown.stderr
