"""The notebook harness: storage checks, execution results and the summary table."""

import os
import signal
import subprocess
import sys
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from xraykit import course


def _notebook(path, sources, tagged=True, executed=False):
    notebook = new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.cells = [new_code_cell(s) for s in sources]
    if tagged:
        notebook.cells[0].metadata["tags"] = ["parameters"]
    if executed:
        notebook.cells[0].execution_count = 1
        notebook.cells[0].outputs = [nbformat.v4.new_output("stream", text="hi\n")]
    nbformat.write(notebook, path)
    return path


def test_storage_problems(tmp_path):
    assert course.storage_problems(_notebook(tmp_path / "a.ipynb", ["x = 1"])) == []
    dirty = course.storage_problems(_notebook(tmp_path / "b.ipynb", ["x = 1"], executed=True))
    assert dirty == ["cell 0 has stored outputs", "cell 0 has an execution count"]
    untagged = course.storage_problems(_notebook(tmp_path / "c.ipynb", ["x = 1"], tagged=False))
    assert untagged == ["no cell tagged 'parameters'"]


def test_run_course_reports_each_notebook(tmp_path, capsys):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "01_ok.ipynb",
              ["import os\nPROFILE = os.environ['XRAYKIT_PROFILE']", "print('profile', PROFILE)"])
    _notebook(folder / "02_broken.ipynb", ["x = 1", "raise ValueError('lesson bug')"])
    runs = course.run_course(tmp_path / "out", profile="smoke", folder=folder)
    assert [(r.name, r.status) for r in runs] == [("01_ok.ipynb", "ok"),
                                                  ("02_broken.ipynb", "failed")]
    assert "ValueError: lesson bug" in runs[1].error
    executed = nbformat.read(tmp_path / "out" / "01_ok.ipynb", as_version=4)
    assert "profile smoke" in executed.cells[1].outputs[0]["text"]
    assert (tmp_path / "out" / "02_broken.html").exists()  # failures are kept for reading
    printed = capsys.readouterr().out
    assert "FAILED 02_broken.ipynb" in printed and "1 fail" in printed


def test_notebooks_are_found_in_the_package_else_the_checkout(tmp_path, monkeypatch):
    checkout = tmp_path / "repo"
    package = checkout / "xraykit"
    package.mkdir(parents=True)
    monkeypatch.setattr(course, "_PACKAGE", package)
    with pytest.raises(FileNotFoundError, match="point --notebooks"):
        course.find_notebooks()
    (checkout / "notebooks").mkdir()
    _notebook(checkout / "notebooks" / "00_a.ipynb", ["x = 1"])
    assert course.find_notebooks() == [checkout / "notebooks" / "00_a.ipynb"]
    (package / "notebooks").mkdir()  # a wheel ships them inside the package: those come first
    _notebook(package / "notebooks" / "00_a.ipynb", ["x = 1"])
    assert course.find_notebooks() == [package / "notebooks" / "00_a.ipynb"]


def test_kernel_runs_in_the_output_folder(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "00_write.ipynb", ["open('made.txt', 'w').write('x')"])
    run = course.run_notebook(folder / "00_write.ipynb", tmp_path / "out", html=False)
    assert run.status == "ok", run.error
    assert (tmp_path / "out" / "made.txt").exists() and not (folder / "made.txt").exists()


def test_stderr_of_cells_is_reported_and_the_kernel_log_kept_apart(tmp_path, capfd):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "00_noisy.ipynb",
              ["import sys", "print('quiet')", "print('a red block', file=sys.stderr)"])
    run = course.run_notebook(folder / "00_noisy.ipynb", tmp_path / "out", html=False)
    assert run.status == "ok", run.error
    assert run.stderr == ["cell 3: a red block"]
    assert "IPKernelApp" not in capfd.readouterr().err  # the kernel's notices go to its log
    assert (tmp_path / "out" / "00_noisy.kernel.log").is_file()


def test_a_kernel_crash_is_reported_with_the_crashing_frames(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "00_crash.ipynb",
              ["import ctypes", "def read_address_zero():\n    return ctypes.string_at(0)",
               "read_address_zero()", "print('never')"])
    run = course.run_notebook(folder / "00_crash.ipynb", tmp_path / "out", html=False)
    assert run.status == "failed"
    assert "DeadKernelError" in run.error and "00_crash.kernel.log" in run.error
    assert "Fatal Python error: Segmentation fault" in run.error, run.error
    assert "read_address_zero" in run.error  # the crashing thread's own frames are quoted
    assert (tmp_path / "out" / "00_crash.ipynb").is_file()  # written up to the crash


def _cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "xraykit", "course", *args],
                          capture_output=True, text=True, timeout=180, **kwargs)


def _one_line(result, *named, status=1):
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in named:
        assert text in lines[0], lines[0]


def test_output_folder_equal_to_the_notebooks_is_refused(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    source = _notebook(folder / "00_a.ipynb", ["x = 1"])
    before = source.read_bytes()
    with pytest.raises(ValueError, match="overwrite them"):
        course.run_course(folder, profile="smoke", folder=folder)
    with pytest.raises(ValueError, match="overwrite them"):
        course.run_notebook(source, folder / "." / "", html=False)
    link = tmp_path / "link"
    link.symlink_to(folder)
    _one_line(_cli("run", "--notebooks", str(folder), "--out", str(link)), "overwrite them")
    assert source.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["00_a.ipynb"]


def test_missing_data_folder_is_an_error_not_phantoms(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "00_a.ipynb", ["x = 1"])
    missing = tmp_path / "no_such_data"
    _one_line(_cli("run", "--notebooks", str(folder), "--out", str(tmp_path / "out"),
                   "--data", str(missing)), f"--data {missing}: no such file or folder")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["0", "-5", "nan", "soon"])
def test_timeout_must_be_positive(value, tmp_path):
    result = _cli("run", "--timeout", value, "--out", str(tmp_path))
    _one_line(result, "--timeout", status=2)
    with pytest.raises(ValueError, match="positive number of seconds"):
        course.run_course(tmp_path / "out", timeout=0, folder=tmp_path)


def test_check_honours_only(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "00_clean.ipynb", ["x = 1"])
    _notebook(folder / "01_dirty.ipynb", ["x = 1"], executed=True)
    result = _cli("check", "--notebooks", str(folder), "--only", "00")
    assert result.returncode == 0 and "00_clean.ipynb: clean" in result.stdout
    assert "01_dirty" not in result.stdout


@pytest.mark.parametrize("content, named", [
    (b"{not json", "not valid JSON (line 1"),
    (b"\xff\xfe{}", "not UTF-8 text"),
    (b'{"cells": "no"}', "not a Jupyter notebook"),
    (b"[1, 2]", "not a Jupyter notebook"),
])
@pytest.mark.parametrize("action", ["run", "check"])
def test_unreadable_notebook_is_named_in_one_line(tmp_path, content, named, action):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "00_fine.ipynb", ["x = 1"])
    (folder / "01_bad.ipynb").write_bytes(content)
    _one_line(_cli(action, "--notebooks", str(folder), "--out", str(tmp_path / "out"),
                   "--profile", "smoke"), f"{folder / '01_bad.ipynb'}: {named}")
    assert not (tmp_path / "out" / "00_fine.ipynb").exists()  # checked before anything runs


def test_phantoms_and_skipped_sections_show_in_the_summary(tmp_path, capsys):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "00_real.ipynb", ["print('loaded')"])
    _notebook(folder / "01_short.ipynb", [
        f"print('{course.PHANTOM_MARK} offline')",
        f"print('{course.SKIPPED_MARK} one')\nprint('{course.SKIPPED_MARK} two')"])
    runs = course.run_course(tmp_path / "out", profile="smoke", folder=folder)
    assert [r.notes for r in runs] == [[], ["phantoms", "2 skipped"]]
    table = course.summary_table(runs)
    assert "01_short.ipynb  ok" in table and "phantoms, 2 skipped" in table
    assert "1 short of real data" in table.splitlines()[-1]


def test_sigint_stops_the_run_with_130_and_no_traceback(tmp_path):
    folder, out = tmp_path / "notebooks", tmp_path / "out"
    folder.mkdir()
    _notebook(folder / "00_slow.ipynb", [
        "import os, time\nopen('kernel.pid', 'w').write(str(os.getpid()))\ntime.sleep(120)"])
    process = subprocess.Popen(
        [sys.executable, "-m", "xraykit", "course", "run", "--notebooks", str(folder), "--out",
         str(out), "--profile", "smoke"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    pid_file = out / "kernel.pid"
    deadline = time.monotonic() + 120
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pid_file.exists(), "the kernel never started"
    kernel = int(pid_file.read_text())
    started = time.monotonic()
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - started < 10
    assert process.returncode == 130 and "Traceback" not in stderr
    assert stderr.strip() == "error: interrupted."
    assert not (out / "00_slow.ipynb").exists()  # nothing under a final name
    for _ in range(100):  # the kernel notices its parent is gone
        if not _alive(kernel):
            break
        time.sleep(0.1)
    assert not _alive(kernel), "the kernel outlived the interrupted run"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:  # a zombie has exited
        return handle.read().split(") ")[1][0] != "Z"
