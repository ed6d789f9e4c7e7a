"""The notebook harness: execute the course's notebooks headless and check they are stored clean.

``python -m xraykit course run`` (and ``make course``) executes every ``notebooks/*.ipynb`` in
order with nbclient under one profile, writes each executed notebook and its HTML to the
output folder, prints one line per notebook and a summary table. The tests use the same
functions with the ``smoke`` profile.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pathlib
import signal
import time

from xraykit import files

_PACKAGE = pathlib.Path(__file__).resolve().parent


def notebook_dir() -> pathlib.Path:
    """Finds the course notebooks: inside the installed package, else at the repository root.

    A wheel ships the notebooks as ``xraykit/notebooks``; a source checkout keeps them in
    ``notebooks/`` next to the package.

    Returns:
        The folder holding ``00_*.ipynb`` … ``08_*.ipynb``.

    Raises:
        FileNotFoundError: If neither place holds a notebook; the message says to pass
            ``--notebooks``.
    """
    for candidate in (_PACKAGE / "notebooks", _PACKAGE.parent / "notebooks"):
        if any(candidate.glob("[0-9][0-9]_*.ipynb")):
            return candidate
    raise FileNotFoundError(
        f"no course notebook found in {_PACKAGE / 'notebooks'} (installed package) nor in "
        f"{_PACKAGE.parent / 'notebooks'} (source checkout): point --notebooks (or the "
        "folder= argument) at the folder holding 00_xray_basics.ipynb."
    )


@dataclasses.dataclass
class NotebookRun:
    """The outcome of executing one notebook.

    Attributes:
        name: File name of the notebook.
        status: ``"ok"`` or ``"failed"``.
        seconds: Wall time of the execution.
        error: The failing cell's error (empty when ``ok``).
        output: Path of the executed notebook.
        stderr: What the cells wrote to standard error, one ``"cell N: text"`` entry per
            output (a student sees these as red blocks; the course aims for none).
        notes: How the lesson ran short of its real data: ``"phantoms"`` when it fell back to
            synthetic phantoms, ``"N skipped"`` when sections said they were skipped (see
            :func:`data_notes`).
    """

    name: str
    status: str
    seconds: float
    error: str = ""
    output: str = ""
    stderr: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


def find_notebooks(folder: str | os.PathLike | None = None,
                   only: list[str] | None = None) -> list[pathlib.Path]:
    """Lists the course notebooks in lesson order.

    Args:
        folder: Folder of the notebooks (default: :func:`notebook_dir`).
        only: Prefixes or names to keep, e.g. ``["00", "01"]``.

    Returns:
        Sorted paths.

    Raises:
        FileNotFoundError: If the folder holds no notebook (or none matches ``only``).
    """
    folder = pathlib.Path(folder) if folder else notebook_dir()
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) or p.stem == o for o in only)]
    if not paths:
        raise FileNotFoundError(f"{folder}: no course notebook found (filter: {only}).")
    return paths


def read_notebook_json(path: str | os.PathLike) -> dict:
    """Reads a notebook file as JSON, checking it is one.

    Args:
        path: A ``.ipynb`` file.

    Returns:
        The notebook as a dictionary.

    Raises:
        ValueError: If the file is not UTF-8, not JSON, or not a notebook (no ``cells`` list,
            no ``nbformat`` 4); one line naming the file and what to do.
    """
    todo = "restore it (git checkout -- <file>) or re-save it from JupyterLab"
    try:
        with open(path, encoding="utf-8") as handle:
            notebook = json.load(handle)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte {err.start}); {todo}.") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: "
                         f"{err.msg}); {todo}.") from None
    if (not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list)
            or notebook.get("nbformat") != 4
            or not all(isinstance(cell, dict) for cell in notebook["cells"])):
        raise ValueError(f"{path}: not a Jupyter notebook (nbformat 4 with a list of cells); "
                         f"{todo}.")
    return notebook


def storage_problems(path: str | os.PathLike) -> list[str]:
    """Checks a notebook is stored clean: no outputs, no execution counts, a parameters cell.

    Args:
        path: A ``.ipynb`` file.

    Returns:
        A list of problems, empty when the notebook is clean.

    Raises:
        ValueError: If the file is not a readable notebook (see :func:`read_notebook_json`).
    """
    notebook = read_notebook_json(path)
    problems = []
    cells = notebook.get("cells", [])
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"cell {index} has stored outputs")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {index} has an execution count")
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells):
        problems.append("no cell tagged 'parameters'")
    return problems


def _first_error(notebook) -> str:
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"{output.get('ename')}: {output.get('evalue')}"
    return ""


def stderr_outputs(notebook) -> list[str]:
    """What a notebook's cells wrote to standard error.

    Args:
        notebook: An executed ``nbformat`` notebook.

    Returns:
        One ``"cell N: text"`` entry per stderr stream output, N counting code cells from 1.
    """
    found = []
    code_cells = (cell for cell in notebook.cells if cell.cell_type == "code")
    for number, cell in enumerate(code_cells, start=1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                found.append(f"cell {number}: {output.get('text', '').strip()}")
    return found


#: Lines a lesson prints when it runs short of its real data (xraykit.datasets.course_data and
#: xraykit.samples.course_sample print them).
PHANTOM_MARK = "SYNTHETIC DATA:"
SKIPPED_MARK = "SKIPPED:"


def data_notes(notebook) -> list[str]:
    """How an executed lesson ran short of its real data, from what its cells printed.

    Args:
        notebook: An executed ``nbformat`` notebook.

    Returns:
        ``["phantoms"]`` when it fell back to synthetic phantoms, plus ``"N skipped"`` when N
        sections said they were skipped; empty when it ran on real data throughout.
    """
    phantoms, skipped = False, 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") != "stream" or output.get("name") != "stdout":
                continue
            for line in output.get("text", "").splitlines():
                phantoms |= line.startswith(PHANTOM_MARK)
                skipped += line.startswith(SKIPPED_MARK)
    return (["phantoms"] if phantoms else []) + ([f"{skipped} skipped"] if skipped else [])


def check_output_folder(out_dir: str | os.PathLike, sources: list[pathlib.Path]) -> None:
    """Refuses an output folder that would receive a notebook over its source.

    Args:
        out_dir: Where executed notebooks are written.
        sources: The notebooks to run.

    Raises:
        ValueError: If ``out_dir`` is the folder of one of ``sources`` (links followed).
    """
    out = pathlib.Path(out_dir).resolve()
    for source in sources:
        if pathlib.Path(source).resolve().parent == out:
            raise ValueError(f"--out {out_dir} is the folder of the source notebooks: running "
                             "would overwrite them with their outputs. Pass another folder "
                             "(e.g. --out build).")


def check_data(data: str | os.PathLike | None) -> None:
    """Checks that a data override exists (a missing one would silently mean phantoms).

    Raises:
        FileNotFoundError: If ``data`` is given and does not exist; the message names it.
    """
    if data is not None and not pathlib.Path(data).exists():
        raise FileNotFoundError(f"--data {data}: no such file or folder. Pass the folder (or "
                                ".npz) holding the course data, e.g. the shared data folder, or "
                                "leave --data out to download.")


def check_timeout(timeout) -> None:
    """Checks a per-cell timeout is a positive number of seconds.

    Raises:
        ValueError: If it is not a number above 0.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds per cell, not "
                         f"{timeout!r}.")


class _Interruption:
    """Ctrl+C while a notebook runs: its kernel is killed at once and the run stops.

    nbclient answers SIGINT by shutting the kernel down and reporting a failed cell, after which
    a course would go on to the next notebook; this handler, installed in nbclient's event loop
    once the kernel has started (its ``on_notebook_start`` hook), records the interruption so
    that :func:`run_notebook` raises ``KeyboardInterrupt`` instead.
    """

    def __init__(self):
        self.seen = False
        self.client = None

    def on_notebook_start(self, **_) -> None:
        """Takes over SIGINT in the running event loop (nbclient's on_notebook_start hook)."""
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._stop)
        except (RuntimeError, NotImplementedError):  # not the main thread, or Windows
            pass

    def _stop(self) -> None:
        self.seen = True
        if self.client is not None and self.client.km is not None:
            asyncio.ensure_future(self.client.km.shutdown_kernel(now=True))


def _kernel_last_words(log: pathlib.Path, lines: int = 12) -> str:
    """What a dead kernel's log says about its end, indented under a heading; ``""`` if nothing.

    After a native crash, ``PYTHONFAULTHANDLER`` has written ``Fatal Python error: …`` and every
    thread's stack: the fatal line and the crashing thread's innermost frames are quoted.
    Otherwise (a backend's fatal message, an out-of-memory kill) the log's last lines are. Quoting
    them keeps the cause in the run's report after the folder is gone (a CI machine's temporary
    files).
    """
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    found = [line for line in text.splitlines() if line.strip()]
    fatal = next((i for i, line in enumerate(found) if line.startswith("Fatal Python error")), None)
    current = next((i for i, line in enumerate(found) if line.startswith("Current thread")), None)
    if fatal is not None and current is not None:
        kept = [found[fatal], *found[current:current + lines]]
    else:
        kept = found[-lines:]
    if not kept:
        return ""
    return "; the kernel log ends:" + "".join(f"\n    | {line}" for line in kept)


def run_notebook(path: str | os.PathLike, out_dir: str | os.PathLike, profile: str = "smoke",
                 data: str | os.PathLike | None = None, backend: str | None = None,
                 timeout: int = 1800, html: bool = True,
                 allow_errors: bool = False) -> NotebookRun:
    """Executes one notebook headless and writes it (and its HTML) to ``out_dir``.

    The kernel inherits ``XRAYKIT_PROFILE``, ``XRAYKIT_DATA`` and ``KERAS_BACKEND`` from the
    arguments, which the notebook's ``parameters`` cell reads, and ``XRAYKIT_STATIC_WIDGETS=1``
    (unless set otherwise) so that widgets render as static figures in the saved output. A
    failed notebook is still written, up to the failing cell, so the error can be read in
    context. The kernel runs in ``out_dir``, so whatever a lesson writes lands there (never
    inside an installed package); the kernel process's own stderr goes to
    ``out_dir/<notebook>.kernel.log``.

    Args:
        path: The notebook.
        out_dir: Folder for the executed notebook and its HTML.
        profile: ``smoke``, ``cpu``, ``gpu`` or ``auto``.
        data: Folder or ``.npz`` for ``XRAYKIT_DATA`` (``None`` keeps the current setting).
        backend: ``KERAS_BACKEND`` for the kernel (``None`` keeps the current setting).
        timeout: Seconds allowed per cell.
        html: Also write an HTML rendering.
        allow_errors: Go on after a cell that raises (the grader runs students' notebooks to
            the end); the errors stay in the executed notebook's outputs.

    Returns:
        A :class:`NotebookRun`.

    Raises:
        ValueError: If ``path`` is not a readable notebook, ``out_dir`` is its folder, or
            ``timeout`` is not positive.
        FileNotFoundError: If ``data`` is given and does not exist.
        KeyboardInterrupt: On Ctrl+C (SIGINT): the kernel is killed and nothing is written.
    """
    import nbclient
    import nbformat

    path = pathlib.Path(path)
    out_dir = pathlib.Path(out_dir)
    check_timeout(timeout)
    check_data(data)
    check_output_folder(out_dir, [path])
    read_notebook_json(path)  # one line naming the file when it is not a notebook
    notebook = nbformat.read(path, as_version=4)
    out_dir.mkdir(parents=True, exist_ok=True)
    saved_env = dict(os.environ)
    os.environ["XRAYKIT_PROFILE"] = profile
    if data is not None:
        os.environ["XRAYKIT_DATA"] = str(pathlib.Path(data).resolve())
    if backend is not None:
        os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # No browser shows live widgets in a headless run: draw their static figures instead.
    os.environ.setdefault("XRAYKIT_STATIC_WIDGETS", "1")
    # A native crash of the kernel (a segfault in a backend) prints every thread's Python stack
    # into the kernel log, which a failed run quotes.
    os.environ.setdefault("PYTHONFAULTHANDLER", "1")
    start = time.perf_counter()
    status, error = "ok", ""
    # The kernel process's own stderr (jupyter_client's start-up notices, a native crash) goes to
    # a log beside the executed notebook instead of interleaving with the run's table.
    kernel_log = out_dir / f"{path.stem}.kernel.log"
    interruption = _Interruption()
    try:
        with open(kernel_log, "w", encoding="utf-8") as log:
            interruption.client = nbclient.NotebookClient(
                notebook, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                resources={"metadata": {"path": str(out_dir)}},
                on_notebook_start=interruption.on_notebook_start)
            interruption.client.execute(stderr=log)
    except nbclient.exceptions.CellExecutionError as err:
        status, error = "failed", _first_error(notebook) or str(err).strip().splitlines()[-1]
    except Exception as err:  # kernel died, timeout
        status, error = "failed", (f"{type(err).__name__}: {err} (kernel log: {kernel_log})"
                                   f"{_kernel_last_words(kernel_log)}")
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
    if interruption.seen:
        raise KeyboardInterrupt
    seconds = time.perf_counter() - start
    output = out_dir / path.name
    with files.atomic_write(output, "w", encoding="utf-8") as handle:
        nbformat.write(notebook, handle)
    if html:
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_notebook_node(notebook)
        with files.atomic_write(output.with_suffix(".html"), "w", encoding="utf-8") as handle:
            handle.write(body)
    return NotebookRun(path.name, status, seconds, error, str(output), stderr_outputs(notebook),
                       data_notes(notebook))


def run_course(out_dir: str | os.PathLike = "build", profile: str = "auto",
               data: str | os.PathLike | None = None, only: list[str] | None = None,
               backend: str | None = None, timeout: int = 1800,
               folder: str | os.PathLike | None = None) -> list[NotebookRun]:
    """Executes the course notebooks in order, printing a line each and a summary table.

    Args:
        out_dir: Folder for executed notebooks and HTML.
        profile: Run profile for every notebook.
        data: Data override (``XRAYKIT_DATA``).
        only: Notebook prefixes to run (default: all).
        backend: Keras backend for the kernels.
        timeout: Seconds allowed per cell.
        folder: Folder of the notebooks.

    Returns:
        One :class:`NotebookRun` per notebook.

    Raises:
        FileNotFoundError: If no notebook is found, or ``data`` does not exist.
        ValueError: If ``out_dir`` is the notebooks' folder, ``timeout`` is not positive, or a
            notebook is not readable (all checked before the first notebook runs).
    """
    check_timeout(timeout)
    check_data(data)
    runs = []
    paths = find_notebooks(folder, only)
    check_output_folder(out_dir, paths)
    for path in paths:
        read_notebook_json(path)
    print(f"Running {len(paths)} notebook(s), profile {profile}, output in {out_dir}/")
    for path in paths:
        run = run_notebook(path, out_dir, profile, data, backend, timeout)
        runs.append(run)
        detail = f"  {run.error}" if run.error else ""
        if run.stderr:
            detail += f"  ({len(run.stderr)} stderr output(s) in the executed notebook)"
        if run.notes:
            detail += f"  ({', '.join(run.notes)})"
        print(f"{run.status.upper():6} {run.name:40} {run.seconds:8.1f} s{detail}", flush=True)
    print(summary_table(runs))
    return runs


def summary_table(runs: list[NotebookRun]) -> str:
    """Formats runs as a plain-text table: status, seconds and data (real, phantoms, skipped).

    Args:
        runs: Results of :func:`run_notebook`.

    Returns:
        The table.
    """
    width = max([len(r.name) for r in runs] + [8])
    rule = "-" * (width + 30)
    lines = [f"{'notebook':{width}}  {'status':6}  {'seconds':>8}  data", rule]
    lines += [f"{r.name:{width}}  {r.status:6}  {r.seconds:8.1f}  {', '.join(r.notes) or 'real'}"
              for r in runs]
    failed = sum(r.status != "ok" for r in runs)
    short = sum(bool(r.notes) for r in runs)
    lines.append(rule)
    lines.append(f"{'total':{width}}  {f'{failed} fail' if failed else 'ok':6}  "
                 f"{sum(r.seconds for r in runs):8.1f}  "
                 f"{f'{short} short of real data' if short else 'real'}")
    return "\n".join(lines)
