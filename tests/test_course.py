"""The notebook harness: storage checks, execution results and the summary table."""

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
