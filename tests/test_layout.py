"""The package's layout: data flows one way, and every module says what it owns."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "xraykit"

# Lower layers first (README's "Layout"); a module may import only modules listed before it, at
# module level or inside a function (a lazy import keeps keras out of `import xraykit`, it does not
# make an upward arrow right).
ORDER = [
    "checks", "pixels", "files", "urls",
    "tasks", "dicom", "images", "synthetic", "profiles",
    "registry", "downloads", "folder_stream", "folders", "datasets", "samples",
    "preprocessing", "affine", "augmentation",
    "autodiff", "models", "losses", "optimizers", "training", "runs", "regularization",
    "tuning", "distribute",
    "evaluation", "calibration", "explain", "inference", "export", "predict_files",
    "plotting", "widgets",
    "runtime", "course", "exercise_checks", "exercises", "grading", "lab", "site", "cli",
]


def _module_name(path: pathlib.Path) -> str:
    relative = path.relative_to(PACKAGE).with_suffix("")
    return relative.parts[0]


def _imports(path: pathlib.Path) -> set[str]:
    """The xraykit modules a file imports, anywhere in it (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "xraykit" and len(parts) > 1:
                found.add(parts[1])
    return found


# A __main__.py is an entry point (`python -m xraykit`, `python -m xraykit.tuning`): run, never
# imported, so it may call the command line on top.
MODULES = sorted(p for p in PACKAGE.rglob("*.py")
                 if p.name != "__main__.py" and (p.name != "__init__.py" or p.parent != PACKAGE))


def test_every_module_has_a_place_in_the_order():
    assert {_module_name(p) for p in MODULES} == set(ORDER)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_later_one(path):
    own = _module_name(path)
    later = {name for name in _imports(path)
             if name in ORDER and ORDER.index(name) > ORDER.index(own)}
    assert not later, f"{path.name} imports {sorted(later)}, which come after {own}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_says_what_it_owns(path):
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    assert docstring and len(docstring.splitlines()[0]) > 20


def test_imports_inside_functions_count(tmp_path):
    source = tmp_path / "module.py"
    source.write_text("import os\n\n\ndef f():\n    from xraykit.cli import main\n"
                      "    import xraykit.course as c\n    return main, c\n")
    assert _imports(source) == {"cli", "course"}
