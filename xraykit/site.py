"""The course website: a static site built with Sphinx and MyST-NB from executed notebooks.

``python -m xraykit course site --executed build`` (and ``make site``) takes the notebooks that
``course run --out build`` executed (their outputs and figures are not computed again), gives
every figure an alt text (the cell's first comment line, else the figure's title, else the
section it belongs to), shows solution cells collapsed, writes a landing page with the lessons
table, and builds the HTML (navigation, prev/next links and search come from the Furo theme and
Sphinx). The site is built in a hidden folder beside ``--out`` and renamed into place at the end.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

from xraykit import exercises

_TITLE = re.compile(r"""(?:suptitle|set_title|title)\s*(?:=|\()\s*f?(["'])(.+?)\1""")
_HEADING = re.compile(r"^#{1,3}\s+(.+)$", re.M)

_CONF = '''"""Sphinx configuration of the xraykit course site (written by xraykit.site)."""
project = "xraykit"
html_title = "xraykit: deep learning for chest X-rays"
extensions = ["myst_nb"]
nb_execution_mode = "off"          # the notebooks were executed by `course run`
myst_enable_extensions = ["dollarmath", "amsmath"]
html_theme = "furo"
html_copy_source = False
html_show_sourcelink = False
exclude_patterns = ["_build"]
suppress_warnings = ["myst.xref_missing", "myst.header", "mystnb.unknown_mime_type",
                     "misc.highlighting_failure"]
'''


def _text(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _has_figure(cell) -> bool:
    return any(mime.startswith("image/") for output in cell.get("outputs", [])
               for mime in output.get("data", {}))


def _without_placeholders(text: str) -> str:
    """An f-string's literal text: ``{...}`` fields, escapes and what they leave empty removed."""
    text = re.sub(r"\{[^{}]*\}", "", text).replace("\\n", " ")
    text = re.sub(r"\(\s*[x×,:=\s]*\)", "", text)
    text = " ".join(text.split()).strip(" ,:=(")
    return text if sum(c.isalpha() for c in text) >= 3 else ""


def figure_alt_text(cell, section: str, lesson: str) -> str:
    """The alt text of a cell's figures.

    Args:
        cell: A code cell with an image output.
        section: The heading of the section the cell belongs to.
        lesson: The lesson's title.

    Returns:
        The cell's first comment line, else the first figure title in its code, else a
        sentence naming the section; at most 200 characters.
    """
    source = _text(cell)
    comment = next((line.lstrip("# ").strip() for line in source.splitlines()
                    if line.startswith("#") and line.lstrip("# ").strip()), "")
    comment = re.sub(r"^Solution[.:]?\s*", "", comment)
    title = _TITLE.search(source)
    title_text = _without_placeholders(title.group(2)) if title else ""
    description = comment or title_text
    if description:
        text = f"Figure: {description} ({section})"
    else:
        text = f"Figure of the section {section!r} of {lesson}"
    return text if len(text) <= 200 else text[:197] + "..."


def prepare_notebook(notebook, lesson_title: str):
    """Readies an executed notebook for the site: alt texts, solutions collapsed.

    Args:
        notebook: An executed ``nbformat`` notebook (modified in place).
        lesson_title: The lesson's title, for alt texts without a better source.

    Returns:
        The number of cells with figures.
    """
    section, figures = lesson_title, 0
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            headings = _HEADING.findall(_text(cell))
            section = headings[-1].strip() if headings else section
            continue
        if exercises.is_solution_cell(cell):
            tags = cell.metadata.setdefault("tags", [])
            tags += [tag for tag in ("hide-input", "hide-output") if tag not in tags]
        if _has_figure(cell):
            figures += 1
            mystnb = cell.metadata.setdefault("mystnb", {})
            mystnb.setdefault("image", {})["alt"] = figure_alt_text(cell, section, lesson_title)
    return figures


def lesson_summary(notebook) -> tuple[str, str]:
    """A lesson's title and one-line description, from its first markdown cell.

    Args:
        notebook: A course notebook.

    Returns:
        ``(title, description)``; the description is the first paragraph after the title.
    """
    first = next((_text(c) for c in notebook.cells if c.cell_type == "markdown"), "")
    lines = first.strip().splitlines()
    title = lines[0].lstrip("# ").strip() if lines else "Lesson"
    paragraph = []
    for line in lines[1:]:
        if not line.strip():
            if paragraph:
                break
            continue
        paragraph.append(line.strip())
    return title, " ".join(paragraph)


def landing_page(lessons: list[tuple[str, str, str]], profile: str | None) -> str:
    """The MyST source of the landing page.

    Args:
        lessons: ``(document name, title, description)`` per lesson, in order.
        profile: The profile the notebooks ran in, said on the page (``None``: not said).

    Returns:
        Markdown with the lessons table and the (hidden) table of contents.
    """
    ran = (f" The outputs come from a run in the **{profile}** profile: a student's run on "
           "another machine or profile gives other numbers." if profile else "")
    rows = "\n".join(f"| [{title}]({name}.ipynb) | {description.replace('|', '/')} |"
                     for name, title, description in lessons)
    toc = "\n".join(name for name, _, _ in lessons)
    return f"""# xraykit: deep learning for chest X-rays

A Keras 3 course in notebooks, with every lesson's code, outputs and figures.{ran}
Open the notebooks in JupyterLab with `make lab` to run them yourself.

| lesson | what it teaches |
|---|---|
{rows}

```{{toctree}}
:hidden:
:maxdepth: 1
:caption: Lessons

{toc}
```
"""


def build_site(executed: str | os.PathLike, out_dir: str | os.PathLike = "build/site",
               profile: str | None = None) -> pathlib.Path:
    """Builds the course website from executed notebooks.

    Args:
        executed: Folder of executed lesson notebooks (``course run --out`` writes them).
        out_dir: Folder of the finished site (replaced when the build succeeds).
        profile: The profile they ran in, stated on the landing page.

    Returns:
        The site's ``index.html``.

    Raises:
        FileNotFoundError: If ``executed`` holds no lesson notebook.
        ValueError: If a notebook there has no outputs (it was not executed).
        RuntimeError: If Sphinx fails; the message holds the end of its log.
    """
    import nbformat

    from xraykit import course

    paths = course.find_notebooks(executed)
    out_dir = pathlib.Path(out_dir).resolve()
    staging = out_dir.parent / f".{out_dir.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        source = staging / "source"
        source.mkdir(parents=True)
        lessons = []
        for path in paths:
            notebook = nbformat.read(path, as_version=4)
            if not any(c.get("outputs") for c in notebook.cells if c.cell_type == "code"):
                raise ValueError(f"{path}: no outputs; the site shows executed notebooks: run "
                                 f"`python -m xraykit course run --out {path.parent}` first.")
            title, description = lesson_summary(notebook)
            prepare_notebook(notebook, title)
            nbformat.write(notebook, source / path.name)
            lessons.append((path.stem, title, description))
        (source / "index.md").write_text(landing_page(lessons, profile), encoding="utf-8")
        (source / "conf.py").write_text(_CONF, encoding="utf-8")
        _sphinx(source, staging / "html")
        _replace_folder(staging / "html", out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir / "index.html"


def _sphinx(source: pathlib.Path, html: pathlib.Path) -> None:
    done = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", str(source),
                           str(html)], capture_output=True, text=True)
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"Sphinx could not build the site: {tail}")


def _replace_folder(new: pathlib.Path, final: pathlib.Path) -> None:
    """Puts a finished folder under its final name, the old one moved aside first."""
    old = final.parent / f".{final.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)
