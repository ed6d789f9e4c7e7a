"""Grading a student's notebooks: execute them, judge each exercise, report a table and JSON.

``python -m xraykit course grade NOTEBOOK_OR_DIR`` executes each lesson notebook headless (smoke
profile by default) to the end, even past cells that raise, then runs the lesson's checks
(:mod:`xraykit.exercise_checks`) in the same kernel from a cell the grader appends, so a student
who edits or deletes the check cells still gets judged by the same checks. Per lesson and
exercise it reports whether the exercise was answered and whether it passed, with the check's
message; exercises without a check are listed as ``manual`` (a teacher reads them).
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile

from xraykit import exercise_checks, exercises, files

_GRADER_TAG = "xraykit-grader"


def _grader_cell(lesson: str, unchecked: tuple[int, ...]):
    import nbformat

    cell = nbformat.v4.new_code_cell(
        "from xraykit import exercise_checks as _xraykit_exercise_checks\n"
        f"_xraykit_exercise_checks.check_lesson({lesson!r}, globals(), {unchecked!r})")
    cell.metadata["tags"] = [_GRADER_TAG]
    return cell


def _grader_results(notebook) -> list[dict] | None:
    """The results the grader's cell displayed, or ``None`` when it did not run."""
    for cell in notebook.cells:
        if _GRADER_TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if exercise_checks.RESULT_MIME in data:
                return data[exercise_checks.RESULT_MIME]["results"]
    return None


def _cell_errors(notebook) -> list[str]:
    found = []
    for number, cell in enumerate((c for c in notebook.cells if c.cell_type == "code"), 1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {number}: {output.get('ename')}: {output.get('evalue')}")
    return found


def _rows(lesson: str, found: list, results: list[dict] | None, error: str) -> list[dict]:
    by_number = {r["exercise"]: r for r in results or []}
    rows = []
    for exercise in found:
        result = by_number.get(exercise.number)
        if exercise_checks.find_check(lesson, exercise.number) is None:
            answered = (result or {}).get("answered", "unknown")
            rows.append({"exercise": exercise.number,
                         "answered": None if answered == "unknown" else answered,
                         "result": "manual", "message": "not checked automatically"})
            continue
        if result is None:
            rows.append({"exercise": exercise.number, "answered": False, "result": "failed",
                         "message": f"the check did not run ({error or 'notebook failed'})"})
            continue
        status = result["status"]
        rows.append({"exercise": exercise.number,
                     "answered": status != exercise_checks.NOT_ANSWERED,
                     "result": {exercise_checks.NOT_ANSWERED: "failed"}.get(status, status),
                     "message": result["message"]})
    return rows


def grade_notebook(path: str | os.PathLike, out_dir: str | os.PathLike,
                   profile: str = "smoke", data: str | os.PathLike | None = None,
                   backend: str | None = None, timeout: int = 600) -> dict:
    """Executes one lesson notebook and judges its checked exercises.

    Args:
        path: The student's (or the instructor's) notebook, named like ``04_optimizers.ipynb``.
        out_dir: Folder for the executed notebook (with the grader's cell at the end).
        profile: Run profile of the execution.
        data: ``XRAYKIT_DATA`` for the kernel.
        backend: ``KERAS_BACKEND`` for the kernel.
        timeout: Seconds allowed per cell.

    Returns:
        ``{"lesson", "notebook", "status", "seconds", "errors", "exercises": [...]}``, one
        exercise row ``{"exercise", "answered", "result", "message"}`` per ``**N.**``.

    Raises:
        ValueError: If the file name has no lesson prefix.
    """
    import nbformat

    from xraykit import course

    path = pathlib.Path(path)
    lesson = exercises.lesson_of(path)
    notebook = nbformat.read(path, as_version=4)
    found = exercises.find_exercises(notebook, lesson)
    unchecked = tuple(e.number for e in found
                      if exercise_checks.find_check(lesson, e.number) is None)
    notebook.cells.append(_grader_cell(lesson, unchecked))
    with tempfile.TemporaryDirectory(prefix="xraykit-grade-") as staging:
        staged = pathlib.Path(staging) / path.name
        nbformat.write(notebook, staged)
        run = course.run_notebook(staged, out_dir, profile, data, backend, timeout, html=False,
                                  allow_errors=True)
    executed = nbformat.read(run.output, as_version=4)
    errors = _cell_errors(executed)
    results = _grader_results(executed)
    return {"lesson": lesson, "notebook": path.name,
            "status": run.status if results is not None else "failed",
            "seconds": round(run.seconds, 1), "errors": errors,
            "exercises": _rows(lesson, found, results, run.error)}


def grade(target: str | os.PathLike, out_dir: str | os.PathLike = "build/graded",
          profile: str = "smoke", data: str | os.PathLike | None = None,
          backend: str | None = None, only: list[str] | None = None,
          timeout: int = 600) -> list[dict]:
    """Grades one notebook or every lesson notebook of a folder, printing a line per lesson.

    Args:
        target: A ``NN_*.ipynb`` file or a folder of them.
        out_dir: Folder for the executed notebooks.
        profile: Run profile.
        data: ``XRAYKIT_DATA`` for the kernels.
        backend: ``KERAS_BACKEND`` for the kernels.
        only: Lesson prefixes to grade in a folder.
        timeout: Seconds allowed per cell.

    Returns:
        One report per notebook (see :func:`grade_notebook`).

    Raises:
        FileNotFoundError: If ``target`` does not exist or holds no lesson notebook.
    """
    from xraykit import course

    target = pathlib.Path(target)
    if not target.exists():
        raise FileNotFoundError(f"{target}: no such notebook or folder; pass a student's "
                                "NN_*.ipynb or the folder holding them.")
    paths = [target] if target.is_file() else course.find_notebooks(target, only)
    reports = []
    for path in paths:
        report = grade_notebook(path, out_dir, profile, data, backend, timeout)
        counts = _counts(report)
        print(f"graded {report['notebook']:36} {report['seconds']:7.1f} s  "
              f"{counts['passed']} passed, {counts['failed']} failed, "
              f"{counts['manual']} to read", flush=True)
        reports.append(report)
    return reports


def _counts(report: dict) -> dict:
    results = [row["result"] for row in report["exercises"]]
    return {key: results.count(key) for key in ("passed", "failed", "skipped", "manual")}


def grades_table(reports: list[dict]) -> str:
    """Formats grading reports as a plain-text table, one row per exercise.

    Args:
        reports: Results of :func:`grade`.

    Returns:
        The table, with a total line.
    """
    lines = [f"{'lesson':6}  {'exercise':8}  {'answered':8}  {'result':7}  message", "-" * 72]
    for report in reports:
        for row in report["exercises"]:
            answered = {True: "yes", False: "no", None: "-"}[row["answered"]]
            lines.append(f"{report['lesson']:6}  {row['exercise']:>8}  {answered:8}  "
                         f"{row['result']:7}  {row['message']}")
        for error in report["errors"]:
            lines.append(f"{report['lesson']:6}  {'':8}  {'':8}  {'error':7}  {error}")
    totals = {key: sum(_counts(r)[key] for r in reports) for key in ("passed", "failed",
                                                                       "skipped", "manual")}
    lines.append("-" * 72)
    lines.append(f"total: {totals['passed']} passed, {totals['failed']} failed, "
                 f"{totals['skipped']} skipped, {totals['manual']} to read by hand")
    return "\n".join(lines)


def write_json(reports: list[dict], path: str | os.PathLike) -> pathlib.Path:
    """Writes grading reports as JSON (for a gradebook), atomically.

    Args:
        reports: Results of :func:`grade`.
        path: The ``.json`` file.

    Returns:
        The path written.
    """
    path = pathlib.Path(path)
    with files.atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump({"lessons": reports}, handle, indent=2)
    return path
