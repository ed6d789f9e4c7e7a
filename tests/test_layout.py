"""The package's layout: data flows one way, and every module says what it owns."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "xraykit"

# Lower layers first (README's "Layout"); a module may import, at module level, only modules
# listed before it. Imports inside functions are free (lazy, to keep keras out of `import xraykit`).
ORDER = [
    "tasks", "images", "dicom", "synthetic", "profiles", "datasets", "samples",
    "keras_objects", "preprocessing", "affine", "augmentation",
    "autodiff", "models", "losses", "optimizers", "training", "regularization",
    "tuning", "distribute",
    "evaluation", "calibration", "explain", "inference",
    "plotting", "widgets",
    "runtime", "course", "cli",
]


def _module_name(path: pathlib.Path) -> str:
    relative = path.relative_to(PACKAGE).with_suffix("")
    return relative.parts[0]


def _top_level_imports(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.parse(path.read_text()).body:
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


MODULES = sorted(p for p in PACKAGE.rglob("*.py")
                 if p.name not in ("__init__.py", "__main__.py") or p.parent != PACKAGE)


def test_every_module_has_a_place_in_the_order():
    assert {_module_name(p) for p in MODULES} == set(ORDER)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_later_one(path):
    own = _module_name(path)
    later = {name for name in _top_level_imports(path)
             if name in ORDER and ORDER.index(name) > ORDER.index(own)}
    assert not later, f"{path.name} imports {sorted(later)}, which come after {own}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_says_what_it_owns(path):
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    assert docstring and len(docstring.splitlines()[0]) > 20
