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
             "n_boot", "width")
    for field in sizes:
        assert getattr(gpu_smoke, field) == getattr(smoke, field), field
    for field in ("image_size", "batch_size", "quick", "pretrained"):
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
    registered = datasets.info("pneumoniamnist")["files"]
    assert info.returncode == 0
    for entry in registered.values():  # every size's file name and checksum is shown
        assert entry["filename"] in info.stdout and entry["md5"] in info.stdout
    verify = _cli("datasets", "verify", "pneumoniamnist", "--size", "28")
    assert verify.returncode == 1 and "28 px: missing" in verify.stdout
    unknown = _cli("datasets", "info", "nope")
    assert unknown.returncode == 1 and "Unknown dataset" in unknown.stderr


def _one_line_error(result, *named, status=1):
    """The CLI failed (status 1: the work; 2: the arguments) with one line naming the problem."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
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
    (["tune", "--profile", "huge", "--workers", "2"], ["Unknown profile 'huge'"]),
    (["tune", "--profile", "smoke", "--space", "huge"], ["Unknown search space 'huge'", "tiny"]),
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
                    f"download cache {blocker}/datasets/xraykit cannot be created or written",
                    "XRAYKIT_CACHE")


@pytest.mark.parametrize("args, named", [
    (["tune", "--kind", "grid"], ["invalid choice: 'grid'", "`python -m xraykit tune --help`"]),
    (["tune", "--workers", "0"], ["--workers: must be at least 1, not 0"]),
    (["tune", "--workers", "2", "--commands", "2"], ["not allowed with argument"]),
    (["data-parallel", "--devices", "two"], ["'two' is not a whole number"]),
    (["datasets", "fetch"], ["invalid choice: 'fetch'", "`python -m xraykit datasets --help`"]),
])
def test_cli_bad_arguments_give_one_line_and_status_2(args, named):
    _one_line_error(_cli(*args), *named, status=2)


def test_old_entry_points_forward_to_the_command_line():
    result = subprocess.run([sys.executable, "-m", "xraykit.distribute", "--devices", "0"],
                            capture_output=True, text=True, timeout=120)
    _one_line_error(result, "--devices: must be at least 1", "python -m xraykit data-parallel",
                    status=2)
    pytest.importorskip("keras_tuner")
    result = subprocess.run([sys.executable, "-m", "xraykit.tuning", "--kind", "grid"],
                            capture_output=True, text=True, timeout=120)
    # xraykit.tuning imports Keras before it forwards: TensorFlow's start-up lines come first.
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: argument --kind: invalid choice: 'grid'"), last
    assert "`python -m xraykit tune --help`" in last


def test_cli_prints_the_commands_of_a_distributed_search(capsys):
    from xraykit import cli, distribute

    args = ["--space", "tiny", "--directory", "/shared/search", "--trials", "4"]
    assert cli.main(["tune", *args, "--commands", "2", "--ip", "10.0.0.5", "--port", "8123"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [
        "KERASTUNER_TUNER_ID=chief", "KERASTUNER_TUNER_ID=tuner0", "KERASTUNER_TUNER_ID=tuner1"]
    for line in lines:
        assert "KERASTUNER_ORACLE_IP=10.0.0.5 KERASTUNER_ORACLE_PORT=8123 python -m xraykit tune " \
            in line
        assert "--space tiny" in line and "--directory /shared/search" in line
        assert "--trials 4" in line and "--commands" not in line and "--port" not in line
    # The same lines from Python; the old module spelling (lesson 6) still gives its own.
    assert distribute.distributed_commands(n_workers=2, ip="10.0.0.5", port=8123, args=[]) == [
        line.split(" --kind")[0] for line in lines]
    old = distribute.distributed_commands("xraykit.tuning", 1, port=8123, args=args)
    assert old[1].endswith("python -m xraykit.tuning --space tiny --directory /shared/search "
                           "--trials 4")
