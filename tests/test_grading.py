"""Grading: the instructor edition passes, an empty or a wrong student answer fails.

Two fast lessons (00 and 03) keep this within the CI budget; tests/test_exercises.py checks
statically that every lesson's solution defines what its checks read.
"""

import json
import subprocess
import sys

import keras
import nbformat
import pytest

from xraykit import course, exercise_checks, exercises, grading

LESSONS = ["00", "03"]

pytestmark = [pytest.mark.notebooks, pytest.mark.real_data]


@pytest.fixture(autouse=True)
def _tensorflow_only():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("grading executes notebooks under the tensorflow backend")


def _checked(report):
    return [row for row in report["exercises"] if row["result"] != "manual"]


def test_the_instructor_edition_passes_every_check(shared_data, tmp_path):
    reports = grading.grade(course.notebook_dir(), tmp_path, "smoke", shared_data,
                            "tensorflow", only=LESSONS)
    assert [r["lesson"] for r in reports] == LESSONS
    for report in reports:
        assert report["status"] == "ok" and report["errors"] == [], report
        checked = _checked(report)
        assert len(checked) == len(exercise_checks.lesson_checks(report["lesson"])) >= 1
        assert all(row["result"] == "passed" and row["answered"] for row in checked), checked
        manual = [row for row in report["exercises"] if row["result"] == "manual"]
        assert all(row["answered"] is None for row in manual)  # no answer variables here
    table = grading.grades_table(reports)
    assert "0 failed" in table and "passed" in table


def test_an_unanswered_student_edition_fails_every_checkable_exercise(shared_data, tmp_path):
    student = tmp_path / "student"
    exercises.write_student_edition(student, only=LESSONS)
    done = subprocess.run(
        [sys.executable, "-m", "xraykit", "course", "grade", str(student), "--data",
         str(shared_data), "--backend", "tensorflow", "--out", str(tmp_path / "graded"),
         "--json", str(tmp_path / "grades.json")],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "not answered yet" in done.stdout and "0 passed" in done.stdout
    reports = json.loads((tmp_path / "grades.json").read_text())["lessons"]
    assert [r["lesson"] for r in reports] == LESSONS
    for report in reports:
        assert report["errors"] == [], report["errors"]  # runs top to bottom
        checked = _checked(report)
        assert checked and all(row["result"] == "failed" and row["answered"] is False
                               for row in checked), checked
        manual = [row for row in report["exercises"] if row["result"] == "manual"]
        assert manual and all(row["answered"] is False for row in manual)
    executed = nbformat.read(tmp_path / "graded" / "00_xray_basics.ipynb", as_version=4)
    check_cells = [c for c in executed.cells if exercises.CHECK_TAG in c.metadata.get("tags", [])]
    shown = check_cells[0].outputs[0]["data"]["text/plain"]
    assert "not answered yet" in shown  # the student's own check cell says so, without raising


def test_a_wrong_answer_fails_with_the_checks_message(shared_data, tmp_path):
    """The solution, then an inverted image: answered, and judged wrong in a real run."""
    (path,) = course.find_notebooks(only=["00"])
    instructor = nbformat.read(path, as_version=4)
    solution = next(c.source for c in instructor.cells if exercises.is_solution_cell(c))
    student = exercises.student_notebook(instructor, "00")
    answer = next(c for c in student.cells if "ours = None" in c.source)
    answer.source = solution + "\nours = 1 - ours  # forgot that MONOCHROME1 is inverted already"
    wrong = tmp_path / "student" / path.name
    wrong.parent.mkdir()
    nbformat.write(student, wrong)
    report = grading.grade_notebook(wrong, tmp_path / "graded", "smoke", shared_data, "tensorflow")
    row = report["exercises"][0]
    assert row["answered"] and row["result"] == "failed" and "differs" in row["message"], row
