"""Run profiles and the command line."""

import subprocess
import sys

import pytest

from xraykit import datasets, profiles
from xraykit.profiles import PROFILES, get_profile


def test_profiles(monkeypatch):
    assert get_profile("smoke").image_size == 28 and get_profile("smoke").epochs == 1
    assert get_profile("cpu").max_train is None
    monkeypatch.setenv("XRAYKIT_PROFILE", "smoke")
    assert get_profile() is PROFILES["smoke"]
    monkeypatch.setenv("XRAYKIT_PROFILE", "auto")
    assert get_profile().name == ("gpu" if profiles.gpu_available() else "cpu")
    with pytest.raises(ValueError, match="XRAYKIT_PROFILE"):
        get_profile("huge")


@pytest.mark.parametrize("has_gpu, name", [(True, "gpu"), (False, "cpu")])
def test_auto_profile_follows_the_device(has_gpu, name, monkeypatch):
    monkeypatch.setattr(profiles, "gpu_available", lambda: has_gpu)
    assert get_profile("auto").name == name
    assert get_profile(" AUTO ").name == name


def test_pretrained_weights_are_tried_everywhere_but_smoke():
    """The cpu profile tries ImageNet weights (lesson 2's linear probe); smoke never downloads."""
    assert {name: p.pretrained for name, p in PROFILES.items()} == {
        "smoke": False, "cpu": True, "gpu": True, "gpu-smoke": True}


def test_gpu_smoke_takes_every_gpu_choice_at_smoke_sizes():
    gpu, smoke, gpu_smoke = (get_profile(n) for n in ("gpu", "smoke", "gpu-smoke"))
    sizes = ("max_train", "max_val", "max_test", "epochs", "tuner_trials", "tuner_epochs",
             "n_boot")
    for field in sizes:
        assert getattr(gpu_smoke, field) == getattr(smoke, field), field
    for field in ("image_size", "batch_size", "width", "quick", "pretrained"):
        assert getattr(gpu_smoke, field) == getattr(gpu, field), field
    assert gpu_smoke.seeds > 1 and gpu.seeds > 1 and smoke.seeds == 1
    assert gpu_smoke.precision == "mixed_bfloat16" and gpu.precision == "auto"
    assert get_profile("GPU_SMOKE") is gpu_smoke


def test_precision_follows_the_profile_and_the_override(monkeypatch):
    from xraykit import runtime

    monkeypatch.delenv("XRAYKIT_PRECISION", raising=False)
    assert runtime.precision_policy("smoke") == "float32"
    assert runtime.precision_policy("gpu-smoke") == "mixed_bfloat16"
    assert runtime.precision_policy("gpu") == runtime.mixed_precision_policy()
    monkeypatch.setenv("XRAYKIT_PRECISION", "mixed_float16")
    assert get_profile("smoke").precision == "mixed_float16"
    assert runtime.precision_policy("gpu-smoke") == "mixed_float16"
    monkeypatch.setenv("XRAYKIT_PRECISION", "float8")
    with pytest.raises(ValueError, match="XRAYKIT_PRECISION='float8'"):
        get_profile("smoke")
    with pytest.raises(ValueError, match="precision must be one of"):
        profiles.Profile("odd", 28, None, None, None, 1, 8, 1, 1, precision="half")


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


def _one_line_error(result, *named):
    """The CLI failed with exactly one readable line on stderr that names the problem."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in named:
        assert text in lines[0], lines[0]


@pytest.mark.parametrize("args, named", [
    (["datasets", "download", "nope"], ["Unknown dataset 'nope'", "pneumoniamnist"]),
    (["datasets", "download", "pneumoniamnist", "--size", "32"], ["no 32 px file", "28, 64"]),
    (["datasets", "verify", "pneumoniamnist", "--size", "32"], ["no 32 px file"]),
    (["course", "run", "--profile", "huge", "--only", "00"], ["Unknown profile 'huge'"]),
])
def test_cli_bad_names_give_one_line(args, named, tmp_path, monkeypatch):
    monkeypatch.setenv("XRAYKIT_CACHE", str(tmp_path))
    _one_line_error(_cli(*args), *named)


@pytest.mark.parametrize("action", ["verify", "download"])
def test_cli_cache_entry_that_is_a_folder(action, tmp_path, monkeypatch):
    monkeypatch.setenv("XRAYKIT_CACHE", str(tmp_path))
    entry = tmp_path / "datasets" / "xraykit" / "pneumoniamnist.npz"
    entry.mkdir(parents=True)
    _one_line_error(_cli("datasets", action, "pneumoniamnist", "--size", "28"),
                    f"{entry}: this cache entry is a folder", "rm -r")


@pytest.mark.parametrize("action", ["check", "run"])
def test_cli_missing_course_folder(action, tmp_path):
    missing = tmp_path / "no_notebooks"
    _one_line_error(_cli("course", action, "--notebooks", str(missing), "--profile", "smoke"),
                    f"{missing}: no course notebook found")


def test_cli_download_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("XRAYKIT_CACHE", str(tmp_path))
    url = "http://127.0.0.1:9/pneumoniamnist.npz"  # discard port: connection refused
    _one_line_error(_cli("datasets", "download", "pneumoniamnist", "--url", url),
                    "Could not download pneumoniamnist (28 px)", url, "load('/path/to/")
    assert not (tmp_path / "datasets" / "xraykit" / "pneumoniamnist.npz").exists()


def test_cli_unwritable_cache(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XRAYKIT_CACHE", str(blocker))
    _one_line_error(_cli("datasets", "download", "pneumoniamnist"),
                    f"{blocker}/datasets/xraykit: cannot write the download cache", "XRAYKIT_CACHE")
