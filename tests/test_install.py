"""The built wheel, installed into a fresh virtual environment, runs the CLI and a lesson.

This proves the declared dependencies are enough (no package of the development environment
leaks in) and that the notebook harness finds the notebooks shipped inside the wheel. The
environment gets the wheel with its ``notebooks`` extra and JAX's CPU wheel as the backend,
at the versions pinned in requirements.txt; pip fetches them from the package index (or its
cache). Marked ``install``: ``make test-install`` runs it.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.install, pytest.mark.real_data]

ROOT = pathlib.Path(__file__).resolve().parents[1]
PIP_TIMEOUT = 900  # seconds: a cold pip cache downloads jaxlib and scipy


def _run(command, cwd, env, timeout=PIP_TIMEOUT):
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{' '.join(map(str, command))} exited {done.returncode}\n"
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


def _pins(folder: pathlib.Path) -> tuple[pathlib.Path, str]:
    """requirements.txt's ``==`` pins as a constraints file, and the pinned JAX requirement."""
    pins = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text()
            .splitlines()]
    pins = [line for line in pins if "==" in line]
    jax = next((line for line in pins if re.match(r"jax(\[cpu\])?==", line)), "jax[cpu]")
    # A constraints file takes no extras: "jax[cpu]==0.10.2" becomes "jax==0.10.2".
    constraints = folder / "constraints.txt"
    constraints.write_text("\n".join(re.sub(r"\[.*?\]", "", line) for line in pins) + "\n")
    return constraints, jax


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A virtual environment holding the built wheel and its declared dependencies only."""
    folder = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "KERAS_BACKEND")}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir",
          folder / "dist", ROOT], cwd=folder, env=env)
    (wheel,) = (folder / "dist").glob("xraykit-*.whl")
    venv = folder / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=folder, env=env)
    python = venv / "bin" / "python"
    constraints, jax = _pins(folder)
    _run([python, "-m", "pip", "install", "--quiet", "--constraint", constraints,
          f"{wheel}[notebooks]", jax], cwd=folder, env=env)
    env.update(KERAS_BACKEND="jax", XRAYKIT_CACHE=str(folder / "cache"),
               VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return folder, python, env


def test_the_wheel_ships_the_registry_and_the_course(installed):
    folder, python, env = installed
    script = ("import json, xraykit, xraykit.course, xraykit.datasets\n"
              "print(json.dumps([xraykit.__file__, str(xraykit.datasets.registry_path()),\n"
              "                  [p.name for p in xraykit.course.find_notebooks()]]))\n")
    package, registry, notebooks = json.loads(
        _run([python, "-c", script], cwd=folder, env=env).stdout)
    site = str(folder / "venv")
    assert package.startswith(site), f"xraykit imported from {package}, not the installed wheel"
    assert registry.startswith(site) and registry.endswith("xraykit/datasets.yaml")
    shipped = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks == shipped
    _run([python, "-m", "pip", "check"], cwd=folder, env=env)


def test_installed_cli_lists_datasets_and_checks_the_course(installed):
    folder, python, env = installed
    listed = _run([python, "-m", "xraykit", "datasets", "list"], cwd=folder, env=env).stdout
    names = [line.split()[0] for line in listed.splitlines() if line.strip()]
    assert {"pneumoniamnist", "chestmnist", "synthetic"} <= set(names), listed
    checked = _run([python, "-m", "xraykit", "course", "check"], cwd=folder, env=env).stdout
    assert "00_xray_basics.ipynb: clean" in checked, checked


def test_installed_harness_runs_lesson_00(installed, shared_data):
    folder, python, env = installed
    out = folder / "course-out"
    done = _run([python, "-m", "xraykit", "course", "run", "--profile", "smoke", "--only", "00",
                 "--backend", "jax", "--data", shared_data, "--out", out], cwd=folder, env=env,
                timeout=600)
    assert re.search(r"^OK\s+00_xray_basics\.ipynb", done.stdout, re.M), done.stdout
    executed = json.loads((out / "00_xray_basics.ipynb").read_text())
    outputs = [o for c in executed["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "lesson 00 drew no figure"
    assert not list((folder / "venv").rglob("xraykit/notebooks/*.html")), (
        "the harness wrote into the installed package")
