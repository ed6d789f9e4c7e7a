"""The processes of a distributed KerasTuner search: their roles, their commands, a local launch.

KerasTuner's own chief/worker mode: every process runs the *same* program; three environment
variables give it its role: ``KERASTUNER_TUNER_ID`` (``"chief"`` for the oracle server,
``"tuner0"``, ``"tuner1"``, ... for workers), ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT`` (where the chief listens, gRPC). The chief hands out trials and records
results; workers train. All processes must see the same ``directory`` (a shared disk across
machines). :func:`launch_distributed_search` starts a chief and N workers on this machine
(loopback) as subprocesses (``python -m xraykit tune --workers N``);
:func:`distributed_commands` gives the commands to start them by hand on several machines
(``python -m xraykit tune --commands N``).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

__all__ = [
    "DistributedRun", "distributed_commands", "free_port", "launch_distributed_search",
    "worker_env",
]


def free_port(host: str = "127.0.0.1") -> int:
    """Finds a free TCP port on ``host``.

    Args:
        host: Address to bind.

    Returns:
        A port number that was free a moment ago.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def worker_env(tuner_id: str, ip: str = "127.0.0.1", port: int = 8000) -> dict[str, str]:
    """The KerasTuner environment variables of one process of a distributed search.

    Args:
        tuner_id: ``"chief"`` or a worker id such as ``"tuner0"``.
        ip: Address of the chief.
        port: Port of the chief.

    Returns:
        ``{"KERASTUNER_TUNER_ID": ..., "KERASTUNER_ORACLE_IP": ...,
        "KERASTUNER_ORACLE_PORT": ...}``.
    """
    return {"KERASTUNER_TUNER_ID": str(tuner_id), "KERASTUNER_ORACLE_IP": str(ip),
            "KERASTUNER_ORACLE_PORT": str(int(port))}


def _command(target: str, args: Sequence[str], python: str, check: bool = True) -> list[str]:
    """``python script.py args``, or ``python -m module [subcommand] args``."""
    if str(target).endswith(".py"):
        if check and not pathlib.Path(target).is_file():
            raise FileNotFoundError(f"{target}: no such script.")
        return [python, str(target), *map(str, args)]
    return [python, "-m", *str(target).split(), *map(str, args)]


def distributed_commands(target: str = "xraykit tune", n_workers: int = 2,
                         ip: str = "127.0.0.1", port: int = 8000,
                         args: Sequence[str] = (), python: str = "python") -> list[str]:
    """Shell commands that start a distributed search by hand (one line per process).

    Run the chief first (anywhere reachable at ``ip:port``), then the workers, each on its own
    machine or GPU; every process needs the same ``--directory`` (a shared disk).
    ``python -m xraykit tune --commands N ...`` prints them.

    Args:
        target: A module run with ``-m``, optionally followed by its subcommand
            (``"xraykit tune"``; ``"xraykit.tuning"`` is its old spelling), or a ``.py``
            script that runs the search.
        n_workers: Number of workers.
        ip: The chief's address as the workers reach it.
        port: The chief's port.
        args: Arguments of the program (the same for every process).
        python: The Python executable to name.

    Returns:
        ``n_workers + 1`` command lines, chief first.
    """
    import shlex

    program = shlex.join(_command(target, args, python, check=False))
    return [" ".join(f"{k}={v}" for k, v in worker_env(tuner_id, ip, port).items()) + " " + program
            for tuner_id in ["chief"] + [f"tuner{i}" for i in range(n_workers)]]


@dataclasses.dataclass
class DistributedRun:
    """What :func:`launch_distributed_search` ran.

    Attributes:
        returncodes: Exit status per process id (``"chief"``, ``"tuner0"``, ...); the chief's is
            ``None`` when it had to be stopped after the workers finished.
        logs: Log file (stdout and stderr) per process id.
        seconds: Wall time of the whole search.
        port: The chief's port.
    """

    returncodes: dict[str, int | None]
    logs: dict[str, pathlib.Path]
    seconds: float
    port: int

    def log(self, tuner_id: str) -> str:
        """Returns the text of one process's log."""
        return self.logs[tuner_id].read_text(encoding="utf-8", errors="replace")


def _tail(path: pathlib.Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


class _Processes:
    """The chief and workers of a search on this machine, each with its log; stopped together."""

    def __init__(self, command: list[str], env: dict[str, str], ip: str, port: int,
                 log_dir: pathlib.Path):
        self.command, self.env, self.ip, self.port, self.log_dir = command, env, ip, port, log_dir
        self.running: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, pathlib.Path] = {}
        self._handles = []

    def start(self, tuner_id: str) -> None:
        """Starts one process with its role in the environment and its output in a log."""
        self.logs[tuner_id] = self.log_dir / f"{tuner_id}.log"
        handle = open(self.logs[tuner_id], "w", encoding="utf-8")
        self._handles.append(handle)
        env = dict(self.env, **worker_env(tuner_id, self.ip, self.port))
        self.running[tuner_id] = subprocess.Popen(self.command, env=env, stdout=handle,
                                                  stderr=subprocess.STDOUT)

    def failure(self, tuner_id: str, what: str) -> str:
        """``what``, then the end of the process's log."""
        return f"{what}; end of {self.logs[tuner_id]}:\n{_tail(self.logs[tuner_id])}"

    def wait_for_workers(self, workers: list[str], timeout: float | None) -> dict[str, int]:
        """Waits until every worker exited 0; raises when one fails or the chief dies early."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        returncodes, pending = {}, set(workers)
        while pending:
            for tuner_id in sorted(pending):
                code = self.running[tuner_id].poll()
                if code is None:
                    continue
                pending.discard(tuner_id)
                returncodes[tuner_id] = code
                if code != 0:
                    raise RuntimeError(self.failure(tuner_id,
                                                     f"Worker {tuner_id} failed (exit {code})"))
            chief_code = self.running["chief"].poll()
            if chief_code not in (None, 0):
                raise RuntimeError(self.failure("chief", f"The chief exited with {chief_code} "
                                                         "before the workers finished"))
            if deadline is not None and time.perf_counter() > deadline:
                raise TimeoutError(f"Workers still running after {timeout} s; logs in "
                                   f"{self.log_dir}.")
            time.sleep(0.2)
        return returncodes

    def stop_all(self) -> None:
        """Stops what still runs (terminate, then kill after 10 s) and closes the logs."""
        for process in self.running.values():
            if process.poll() is None:
                process.terminate()
        for process in self.running.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        for handle in self._handles:
            handle.close()


def launch_distributed_search(target: str = "xraykit tune", n_workers: int = 2,
                              args: Sequence[str] = (), port: int | None = None,
                              ip: str = "127.0.0.1", log_dir: str | os.PathLike | None = None,
                              env: Mapping[str, str] | None = None,
                              clear: str | os.PathLike | None = None,
                              timeout: float | None = 600.0, chief_grace: float = 30.0,
                              python: str | None = None) -> DistributedRun:
    """Starts a KerasTuner chief and ``n_workers`` workers on this machine and waits for them.

    Each process runs the same program (``python -m <module> [subcommand] args`` or ``python
    script.py args``) with its own ``KERASTUNER_TUNER_ID`` and the chief's address. The chief
    serves the oracle over gRPC; the workers ask it for trials until the budget is spent.
    ``python -m xraykit tune --workers N ...`` runs it.

    Args:
        target: Module name with its subcommand (``"xraykit tune"``; ``"xraykit.tuning"`` is
            its old spelling) or path of a ``.py`` script.
        n_workers: Number of workers.
        args: Command-line arguments for the program (the same for all processes).
        port: Port of the chief (default: a free one).
        ip: Address of the chief (loopback here).
        log_dir: Folder for ``chief.log``, ``tuner0.log``, ... (default: a temporary folder).
        env: Extra environment variables for every process (e.g. ``KERAS_BACKEND``).
        clear: A search folder (``<directory>/<project_name>``) to delete before starting, so
            that no process resumes an old search.
        timeout: Seconds to wait for the workers.
        chief_grace: Seconds the chief gets to exit after the last worker (KerasTuner's chief
            polls every 20 s); it is then stopped (its results are already on disk).
        python: Python executable (default: this one).

    Returns:
        A :class:`DistributedRun` with exit codes and log paths.

    Raises:
        ValueError: If ``n_workers < 1``.
        RuntimeError: If a worker fails or the chief dies early (with the log's tail).
        TimeoutError: If the workers do not finish in ``timeout`` seconds (all are stopped).
    """
    import tempfile

    if n_workers < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers}.")
    port = int(port or free_port(ip))
    log_dir = pathlib.Path(log_dir or tempfile.mkdtemp(prefix="xraykit_distributed_"))
    log_dir.mkdir(parents=True, exist_ok=True)
    if clear is not None and pathlib.Path(clear).exists():
        shutil.rmtree(clear)
    base_env = dict(os.environ)
    base_env.update({k: str(v) for k, v in (env or {}).items()})
    base_env.setdefault("PYTHONUNBUFFERED", "1")
    processes = _Processes(_command(target, args, python or sys.executable), base_env, ip, port,
                           log_dir)
    start = time.perf_counter()
    try:
        workers = [f"tuner{i}" for i in range(n_workers)]
        for tuner_id in ["chief", *workers]:
            processes.start(tuner_id)
        returncodes: dict[str, int | None] = processes.wait_for_workers(workers, timeout)
        try:
            returncodes["chief"] = processes.running["chief"].wait(chief_grace)
        except subprocess.TimeoutExpired:
            returncodes["chief"] = None  # stopped below; the oracle state is on disk already
    finally:
        processes.stop_all()
    if returncodes.get("chief") not in (None, 0):
        raise RuntimeError(processes.failure(
            "chief", f"The chief failed (exit {returncodes['chief']})"))
    return DistributedRun(returncodes, processes.logs, time.perf_counter() - start, port)
