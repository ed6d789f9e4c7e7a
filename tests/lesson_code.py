"""The code a lesson teaches, taken from its notebook so that tests check it against xraykit.

A lesson tags the code cells that only define things (imports, functions, classes, layer stacks
built by a function) with ``definition``. :func:`lesson_definitions` runs those cells, and only
those, in a fresh namespace: a test then calls the notebook's own function and compares it with
the xraykit helper that packages the same idea, so the two cannot drift apart unnoticed.
"""

import json
import types

from xraykit import course

DEFINITION_TAG = "definition"


def definition_cells(lesson: str) -> list[str]:
    """Returns the source of the cells tagged ``definition`` in a lesson's notebook.

    Args:
        lesson: The notebook's prefix, e.g. ``"01"``.

    Returns:
        The cells' sources in notebook order.

    Raises:
        LookupError: If the lesson has no notebook or no cell with the tag.
    """
    paths = course.find_notebooks(only=[lesson])
    if len(paths) != 1:
        raise LookupError(f"no single notebook for lesson {lesson!r}: {paths}")
    cells = json.loads(paths[0].read_text(encoding="utf-8"))["cells"]
    sources = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"
               and DEFINITION_TAG in cell.get("metadata", {}).get("tags", [])]
    if not sources:
        raise LookupError(f"{paths[0].name} has no code cell tagged {DEFINITION_TAG!r}")
    return sources


def lesson_definitions(lesson: str) -> types.SimpleNamespace:
    """Runs a lesson's ``definition`` cells and returns what they define.

    Args:
        lesson: The notebook's prefix, e.g. ``"01"``.

    Returns:
        A namespace with every name the cells bound (``ns.zscore``, ``ns.build_small_cnn``...).
    """
    namespace: dict = {"__name__": f"lesson_{lesson}"}
    for number, source in enumerate(definition_cells(lesson)):
        exec(compile(source, f"<lesson {lesson} definition cell {number}>", "exec"), namespace)
    namespace.pop("__builtins__", None)
    return types.SimpleNamespace(**namespace)
