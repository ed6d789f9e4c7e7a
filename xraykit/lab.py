"""The course in JupyterLab: one command that opens the notebooks in the course's environment.

``python -m xraykit course lab`` (and ``make lab``) starts JupyterLab on the course notebooks with
``XRAYKIT_PROFILE``, ``XRAYKIT_DATA`` and ``KERAS_BACKEND`` set for every kernel it starts; each
lesson's setup cell prints them (``xraykit.environment()``). From an installed wheel, whose
notebooks live inside the package, the notebooks are first copied to a working folder, so that
a student's edits never land in the installation.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys

from xraykit.profiles import PROFILE_ENV

DATA_ENV = "XRAYKIT_DATA"
BACKEND_ENV = "KERAS_BACKEND"
BACKENDS = ("tensorflow", "jax", "torch")


def lab_environment(profile: str = "auto", data: str | os.PathLike | None = None,
                    backend: str | None = None, base: dict | None = None) -> dict[str, str]:
    """The environment JupyterLab (and so every kernel) runs with.

    Args:
        profile: ``XRAYKIT_PROFILE``.
        data: ``XRAYKIT_DATA`` (made absolute); ``None`` keeps the current value, if any.
        backend: ``KERAS_BACKEND``; ``None`` keeps the current value, else ``tensorflow``.
        base: The environment to start from (default: this process's).

    Returns:
        The environment.

    Raises:
        FileNotFoundError: If ``data`` does not exist.
        ValueError: If ``backend`` is not a Keras backend.
    """
    env = dict(os.environ if base is None else base)
    env[PROFILE_ENV] = profile
    if data is not None:
        path = pathlib.Path(data).expanduser().resolve()
        if not path.exists():
            raise FileNotFoundError(f"--data {data}: no such folder or file; point it at the "
                                    "course's data folder (holding pneumoniamnist/) or an .npz.")
        env[DATA_ENV] = str(path)
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"--backend {backend!r}: choose one of {', '.join(BACKENDS)}.")
    env[BACKEND_ENV] = backend or env.get(BACKEND_ENV) or "tensorflow"
    return env


def course_folder(workdir: str | os.PathLike = "xraykit-course") -> pathlib.Path:
    """The folder to open: the checkout's ``notebooks/``, or a copy of an installed course.

    Args:
        workdir: Where to copy the notebooks of an installed wheel (kept if it exists, so a
            student's work is never overwritten).

    Returns:
        The folder holding the lesson notebooks.
    """
    from xraykit import course

    folder = course.notebook_dir()
    if folder.parent != pathlib.Path(__file__).resolve().parent:
        return folder  # a source checkout: notebooks/ next to the package
    target = pathlib.Path(workdir).resolve()
    if not target.exists():
        shutil.copytree(folder, target)
    return target


def lab_command(folder: str | os.PathLike, port: int | None = None, open_browser: bool = True,
                token: str | None = None) -> list[str]:
    """The command that starts JupyterLab on a folder.

    Args:
        folder: The folder JupyterLab shows.
        port: Its port (default: JupyterLab's, 8888 or the next free one).
        open_browser: Open a browser tab.
        token: The access token (default: a random one, printed in the URL).

    Returns:
        The argument list.
    """
    command = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={folder}"]
    if port is not None:
        command += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if not open_browser:
        command.append("--no-browser")
    if token is not None:
        command.append(f"--IdentityProvider.token={token}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI run as root; JupyterLab refuses it
    return command


def start_lab(folder: str | os.PathLike, env: dict[str, str], port: int | None = None,
              open_browser: bool = True, token: str | None = None,
              **popen) -> subprocess.Popen:
    """Starts JupyterLab in the background.

    Args:
        folder: The folder to show.
        env: Its environment (:func:`lab_environment`).
        port: Its port.
        open_browser: Open a browser tab.
        token: The access token.
        **popen: More ``subprocess.Popen`` arguments (``stdout=...``).

    Returns:
        The server's process; stop it with ``terminate()``.
    """
    return subprocess.Popen(lab_command(folder, port, open_browser, token), env=env,
                            cwd=str(folder), **popen)


def run_lab(profile: str = "auto", data: str | os.PathLike | None = None,
            backend: str | None = None, port: int | None = None,
            open_browser: bool = True) -> int:
    """Starts JupyterLab on the course and waits until it stops (Ctrl-C stops it).

    Args:
        profile: ``XRAYKIT_PROFILE``.
        data: ``XRAYKIT_DATA``.
        backend: ``KERAS_BACKEND``.
        port: The server's port.
        open_browser: Open a browser tab.

    Returns:
        JupyterLab's exit status.
    """
    env = lab_environment(profile, data, backend)
    folder = course_folder()
    print(f"JupyterLab on {folder}\n  {PROFILE_ENV}={env[PROFILE_ENV]}  "
          f"{DATA_ENV}={env.get(DATA_ENV, '(not set: lessons download)')}  "
          f"{BACKEND_ENV}={env[BACKEND_ENV]}\nEach lesson's first cell prints them. "
          "Stop with Ctrl-C.", flush=True)
    server = start_lab(folder, env, port, open_browser)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops JupyterLab too
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.terminate()
        server.wait(timeout=30)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt
