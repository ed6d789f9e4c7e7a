"""The student edition and the exercise checks: derived from the instructor notebooks, consistent.

Nothing here executes a notebook (tests/test_grading.py does).
"""

import json
import re
import subprocess
import sys

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from xraykit import course, exercise_checks, exercises

NOTEBOOKS = course.find_notebooks()


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    exercises.write_student_edition(out)
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_edition_has_no_solutions_and_an_answer_cell_per_exercise(path, student_dir):
    lesson = exercises.lesson_of(path)
    instructor = nbformat.read(path, as_version=4)
    student = nbformat.read(student_dir / path.name, as_version=4)
    numbers = [e.number for e in exercises.find_exercises(instructor, lesson)]
    assert numbers, f"{path.name} has no exercise"
    assert not any(exercises.is_solution_cell(c) for c in student.cells)
    text = "\n".join("".join(c.source) for c in student.cells)
    assert "<details>" not in text
    assert course.storage_problems(student_dir / path.name) == []
    for number in numbers:
        index = next(i for i, c in enumerate(student.cells)
                     if c.cell_type == "markdown" and c.source.startswith(f"**{number}.**"))
        answer = student.cells[index + 1]
        assert exercises.STUDENT_TAG in answer.metadata["tags"], f"exercise {number}"
        check = exercise_checks.find_check(lesson, number)
        variable = check.variable if check else exercise_checks.answer_variable(lesson, number)
        assert re.search(rf"^{variable} = None$", answer.source, re.M), answer.source
        following = student.cells[index + 2] if index + 2 < len(student.cells) else None
        has_check_cell = following is not None and exercises.CHECK_TAG in following.metadata.get(
            "tags", [])
        assert has_check_cell == (check is not None), f"{path.name} exercise {number}"
    # Everything before the exercises is the instructor's lesson, unchanged.
    start = next(i for i, c in enumerate(instructor.cells) if "## Exercises" in c.source)
    assert [c.source for c in student.cells[:start]] == [c.source for c in instructor.cells[:start]]


@pytest.mark.parametrize("check", exercise_checks.CHECKS,
                         ids=lambda c: f"{c.lesson}.{c.number}")
def test_every_check_reads_a_variable_its_solution_defines(check):
    """So that the instructor edition passes as stored (test_grading runs two lessons)."""
    (path,) = course.find_notebooks(only=[check.lesson])
    cells = nbformat.read(path, as_version=4).cells
    found = exercises.find_exercises({"cells": cells}, check.lesson)
    assert check.number in [e.number for e in found]
    first = next(i for i, c in enumerate(cells) if "## Exercises" in c.source)
    start = next(i for i, c in enumerate(cells) if i >= first and (
        c.source.startswith(f"**{check.number}.**") or f"\n**{check.number}.**" in c.source))
    solution = cells[start + 1]
    assert exercises.is_solution_cell(solution), f"exercise {check.number} has no solution cell"
    defines = rf"^\s*{check.variable}\s*=|^def {check.variable}\(|^\s*{check.variable}, "
    assert re.search(defines, solution.source, re.M), \
        f"lesson {check.lesson} exercise {check.number}'s solution does not set {check.variable}"


def test_a_lesson_of_every_checked_lesson_has_a_check():
    checked = {c.lesson for c in exercise_checks.CHECKS}
    assert {"00", "01", "02", "03", "04", "06", "07"} <= checked


def _two_exercise_notebook():
    notebook = new_notebook()
    notebook.cells = [
        new_markdown_cell("# Lesson 9 — Test"),
        new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        new_markdown_cell("## Summary\nShort.\n\n## Exercises\n\n**1.** Why?\n\n<details>"
                          "<summary>Answer</summary>\n\nBecause.\n</details>\n\n**2.** Compute."),
        new_code_cell("y = 2", metadata={"tags": ["solution"],
                                         "jupyter": {"source_hidden": True,
                                                     "outputs_hidden": True}}),
        new_markdown_cell("## References\n- a book"),
    ]
    return notebook


def test_exercises_sharing_a_cell_are_split_and_answers_removed():
    instructor = _two_exercise_notebook()
    found = exercises.find_exercises(instructor, "99")
    assert [(e.number, e.has_answer, e.has_solution_cell) for e in found] == [
        (1, True, False), (2, False, True)]
    student = exercises.student_notebook(instructor, "99")
    sources = [c.source for c in student.cells]
    assert sources[2] == "## Summary\nShort.\n\n## Exercises"
    assert sources[3] == "**1.** Why?" and "answer_99_1 = None" in sources[4]
    assert sources[5] == "**2.** Compute." and "answer_99_2 = None" in sources[6]
    assert sources[7].startswith("## References") and len(sources) == 8
    assert "Because" not in "".join(sources) and "y = 2" not in sources
    assert instructor.cells[3].source == "y = 2"  # the instructor notebook is left as it was


def test_student_edition_refuses_to_overwrite_the_instructor_notebooks():
    with pytest.raises(ValueError, match="overwrite the solutions"):
        exercises.write_student_edition(NOTEBOOKS[0].parent, only=["00"])


def test_a_notebook_name_without_lesson_number_is_refused():
    with pytest.raises(ValueError, match="04_optimizers.ipynb"):
        exercises.lesson_of("optimizers.ipynb")


def test_a_check_passes_fails_and_reports_an_empty_answer():
    check = exercise_checks.find_check("01", 2)
    namespace = {"patient_ids": np.array([0, 0, 1, 2, 2]), "validated": None}
    assert exercise_checks.run_check(check, namespace)["status"] == "not answered"
    namespace["validated"] = [2, 0, 1]
    assert exercise_checks.run_check(check, namespace)["status"] == "passed"
    namespace["validated"] = [0, 1, 1]
    failed = exercise_checks.run_check(check, namespace)
    assert failed["status"] == "failed" and "twice or never" in failed["message"]
    assert exercise_checks.run_check(check, {"validated": [0]})["message"].startswith(
        "run the lesson's cells above first (patient_ids")


def test_a_check_that_needs_absent_samples_is_skipped():
    check = exercise_checks.find_check("00", 1)
    result = exercise_checks.run_check(check, {"ours": np.zeros((2, 2)), "DICOMS": None})
    assert result["status"] == "skipped" and "DICOM samples" in result["message"]


def test_cli_writes_the_student_edition_and_says_what_is_missing(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "xraykit", "course", *args],
                              capture_output=True, text=True, timeout=120)

    missing = cli("student")
    assert missing.returncode == 2 and "needs --out" in missing.stderr
    done = cli("student", "--out", str(tmp_path), "--only", "00")
    assert done.returncode == 0, done.stderr
    notebook = json.loads((tmp_path / "00_xray_basics.ipynb").read_text())
    assert any("exercise_checks.check_exercise('00', 1" in "".join(c["source"])
               for c in notebook["cells"])
    bad = cli("grade", str(tmp_path / "nothing.ipynb"))
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no such notebook" in bad.stderr
