"""A lesson's exercises: finding them and their solutions, and writing the student edition.

The instructor edition is the course as stored in ``notebooks/``: after ``## Exercises`` every
exercise starts a line with ``**N.**``; it is followed either by a solution cell (a code cell
tagged ``solution`` or collapsed with ``jupyter.source_hidden``) or by a ``<details>`` answer.
The student edition (``python -m xraykit course student``) is derived from it: solution cells and
``<details>`` answers are removed, and each exercise gets an answer cell for the student and,
where :mod:`xraykit.exercise_checks` has a check for it, a check cell.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import pathlib
import re

from xraykit import files

_EXERCISE = re.compile(r"^\*\*(\d+)\.\*\*", re.M)
_DETAILS = re.compile(r"\n*<details>.*?</details>[ \t]*", re.S)
#: Marks the cells the student edition adds, so that a second pass (or the grader) knows them.
STUDENT_TAG = "student-answer"
CHECK_TAG = "exercise-check"


@dataclasses.dataclass
class Exercise:
    """One ``**N.**`` exercise of a lesson.

    Attributes:
        lesson: The lesson's two-digit prefix, e.g. ``"04"``.
        number: The exercise's number in the lesson.
        text: The exercise's markdown, without its ``<details>`` answer.
        has_solution_cell: Whether a solution cell follows it.
        has_answer: Whether it carries a ``<details>`` answer.
    """

    lesson: str
    number: int
    text: str
    has_solution_cell: bool = False
    has_answer: bool = False


def lesson_of(path: str | os.PathLike) -> str:
    """The lesson prefix of a notebook's file name (``"04"`` for ``04_optimizers.ipynb``).

    Args:
        path: A course notebook.

    Returns:
        Its two-digit prefix.

    Raises:
        ValueError: If the name does not start with two digits and an underscore.
    """
    name = pathlib.Path(path).name
    if not re.match(r"^\d\d_", name):
        raise ValueError(f"{name}: a course notebook's name starts with its lesson number and an "
                         "underscore, like 04_optimizers.ipynb; rename it.")
    return name[:2]


def is_solution_cell(cell) -> bool:
    """Whether a cell is an exercise's solution (tagged ``solution``, or a collapsed code cell).

    Args:
        cell: A notebook cell (``nbformat`` node or dict).

    Returns:
        ``True`` for a solution cell.
    """
    if cell.get("cell_type") != "code":
        return False
    meta = cell.get("metadata", {})
    return "solution" in meta.get("tags", []) or bool(meta.get("jupyter", {}).get("source_hidden"))


def _exercise_start(cells) -> int | None:
    for index, cell in enumerate(cells):
        if cell.get("cell_type") == "markdown" and "## Exercises" in _source(cell):
            return index
    return None


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _is_references(cell) -> bool:
    return cell.get("cell_type") == "markdown" and _source(cell).lstrip().startswith("## Refer")


def _split_exercises(text: str) -> tuple[str, list[tuple[int, str]]]:
    """A markdown cell's text before its first exercise, and each ``(number, text)`` after."""
    matches = list(_EXERCISE.finditer(text))
    if not matches:
        return text, []
    parts = []
    for match, following in zip(matches, matches[1:] + [None]):
        end = following.start() if following else len(text)
        parts.append((int(match.group(1)), text[match.start():end]))
    return text[:matches[0].start()], parts


def find_exercises(notebook, lesson: str) -> list[Exercise]:
    """Lists a notebook's exercises in order.

    Args:
        notebook: An ``nbformat`` notebook (or its dict).
        lesson: The lesson prefix (see :func:`lesson_of`).

    Returns:
        One :class:`Exercise` per ``**N.**`` after ``## Exercises`` (none without that heading).
    """
    cells = notebook["cells"]
    start = _exercise_start(cells)
    if start is None:
        return []
    found: list[Exercise] = []
    for index in range(start, len(cells)):
        cell = cells[index]
        if _is_references(cell):
            break
        if is_solution_cell(cell) and found:
            found[-1].has_solution_cell = True
        if cell.get("cell_type") != "markdown":
            continue
        _, parts = _split_exercises(_source(cell))
        if not parts and found and "<details>" in _source(cell):
            found[-1].has_answer = True
        for number, text in parts:
            found.append(Exercise(lesson, number, _DETAILS.sub("", text).rstrip(),
                                  has_answer="<details>" in text))
    return found


def _markdown(text: str):
    import nbformat

    return nbformat.v4.new_markdown_cell(text)


def _code(text: str, tag: str):
    import nbformat

    cell = nbformat.v4.new_code_cell(text)
    cell.metadata["tags"] = [tag]
    return cell


def answer_cell_source(exercise: Exercise) -> str:
    """The code of the cell a student writes an exercise's answer in.

    Args:
        exercise: The exercise.

    Returns:
        Python source that sets the answer variable to ``None`` (not answered yet).
    """
    from xraykit import exercise_checks

    check = exercise_checks.find_check(exercise.lesson, exercise.number)
    if check is None:
        name = exercise_checks.answer_variable(exercise.lesson, exercise.number)
        if exercise.has_answer and not exercise.has_solution_cell:
            task = f"set {name} to your answer in words (a string)"
        elif exercise.has_answer:
            task = f"write the code, then set {name} to your answer in words (a string)"
        else:
            task = f"write the code, and set {name} to its result"
        return f"# Your answer here: {task}.\n# A teacher reads it: not checked automatically.\n" \
               f"{name} = None"
    return f"# Your answer here. {check.asks}\n{check.variable} = None"


def check_cell_source(exercise: Exercise) -> str:
    """The code of the cell that checks an exercise's answer (prints; never raises).

    Args:
        exercise: An exercise that :mod:`xraykit.exercise_checks` can check.

    Returns:
        Python source.
    """
    return (f"# Check your answer to exercise {exercise.number}: run this cell after yours.\n"
            "from xraykit import exercise_checks\n"
            f"exercise_checks.check_exercise({exercise.lesson!r}, {exercise.number}, globals())")


def student_cells(exercise: Exercise) -> list:
    """The cells of one exercise in the student edition: its text, an answer cell, a check.

    Args:
        exercise: The exercise.

    Returns:
        ``nbformat`` cells.
    """
    from xraykit import exercise_checks

    cells = [_markdown(exercise.text), _code(answer_cell_source(exercise), STUDENT_TAG)]
    if exercise_checks.find_check(exercise.lesson, exercise.number) is not None:
        cells.append(_code(check_cell_source(exercise), CHECK_TAG))
    return cells


def student_notebook(notebook, lesson: str):
    """Derives the student edition of one lesson from its instructor edition.

    Args:
        notebook: The instructor notebook (``nbformat``); not modified.
        lesson: Its lesson prefix.

    Returns:
        A new notebook: no solution cells, no ``<details>`` answers, one answer cell (and a check
        cell where one exists) after each exercise; outputs cleared.

    Raises:
        ValueError: If the notebook has an ``## Exercises`` heading but no ``**N.**`` exercise.
    """
    result = copy.deepcopy(notebook)
    cells = result.cells
    start = _exercise_start(cells)
    kept = list(cells if start is None else cells[:start])
    if start is not None:
        found = find_exercises(notebook, lesson)
        if not found:
            raise ValueError(f"lesson {lesson}: an '## Exercises' heading but no exercise "
                             "numbered **1.**, **2.** ...: number them so that each gets an "
                             "answer cell.")
        after_references = False
        for cell in cells[start:]:
            after_references = after_references or _is_references(cell)
            if after_references:
                kept.append(cell)
                continue
            if is_solution_cell(cell):
                continue
            if cell.cell_type != "markdown":
                kept.append(cell)
                continue
            before, parts = _split_exercises(_source(cell))
            before = _DETAILS.sub("", before).strip()
            if before:
                kept.append(_markdown(before))
            for _ in parts:
                kept.extend(student_cells(found.pop(0)))
    for cell in kept:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    result.cells = kept
    return result


def write_student_edition(out_dir: str | os.PathLike,
                          folder: str | os.PathLike | None = None,
                          only: list[str] | None = None) -> list[pathlib.Path]:
    """Writes the student edition of the course notebooks.

    Args:
        out_dir: Folder for the student notebooks (created; files are replaced atomically).
        folder: Folder of the instructor notebooks (default: the course's).
        only: Lesson prefixes to write (default: all).

    Returns:
        The written notebooks.

    Raises:
        ValueError: If ``out_dir`` is the instructor notebooks' own folder.
    """
    import nbformat

    from xraykit import course

    paths = course.find_notebooks(folder, only)
    out_dir = pathlib.Path(out_dir)
    if out_dir.resolve() == paths[0].parent.resolve():
        raise ValueError(f"--out {out_dir} is the instructor notebooks' folder: the student "
                         "edition would overwrite the solutions; choose another folder.")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        student = student_notebook(notebook, lesson_of(path))
        target = out_dir / path.name
        with files.atomic_write(target, "w", encoding="utf-8") as handle:
            nbformat.write(student, handle)
        written.append(target)
    return written
