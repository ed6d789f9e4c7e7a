"""Scale-out with existing engines: distributed tuning and data-parallel training.

Two independent tools, both thin wrappers over the engines that do the work:

* **Distributed hyperparameter search** with KerasTuner's own chief/worker mode. Every
  process runs the *same* program; three environment variables give it its role:
  ``KERASTUNER_TUNER_ID`` (``"chief"`` for the oracle server, ``"tuner0"``, ``"tuner1"``, ... for
  workers), ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` (where the chief listens,
  gRPC). The chief hands out trials and records results; workers train. All processes must see
  the same ``directory`` (a shared disk across machines). :func:`launch_distributed_search`
  starts a chief and N workers on this machine (loopback) as subprocesses;
  :func:`distributed_commands` prints the commands to start them by hand on several machines.

* **Data-parallel training** over several devices of one machine: each batch is split across
  the devices, gradients are averaged. :func:`data_parallel_scope` hides the backend's engine:
  ``keras.distribution.DataParallel`` under JAX, ``tf.distribute.MirroredStrategy`` under
  TensorFlow. Build, compile and fit the model inside the scope. On a CPU you can try it with
  virtual devices: call :func:`virtual_cpu_devices` before the backend starts.

:func:`data_parallel_check` trains a tiny model data-parallel on virtual CPU devices and
reports where its variables live: ``python -m xraykit data-parallel --devices 2`` (old spelling:
``python -m xraykit.distribute --devices 2``). ``python -m xraykit tune --workers 2`` runs a
distributed search on this machine.
"""

from __future__ import annotations

import contextlib
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
    "DistributedRun", "data_parallel_check", "data_parallel_scope", "distributed_commands",
    "distribution_strategy", "free_port", "launch_distributed_search", "num_replicas",
    "virtual_cpu_devices", "worker_env",
]


# --------------------------------------------------------------------------------------------
# Distributed hyperparameter search (KerasTuner chief/worker)
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# Data-parallel training on several devices
# --------------------------------------------------------------------------------------------
def virtual_cpu_devices(n: int = 2) -> int:
    """Splits the CPU into ``n`` virtual devices, to try multi-device training without GPUs.

    Must run before the backend initializes its devices (first thing in a fresh process,
    before any model or tensor is created). Under JAX it sets ``jax_num_cpu_devices`` (and
    ``XLA_FLAGS=--xla_force_host_platform_device_count=n`` for older JAX); under TensorFlow it
    sets ``n`` logical CPU devices.

    Args:
        n: Number of devices.

    Returns:
        Number of devices the backend now sees.

    Raises:
        RuntimeError: If the backend was already initialized with another device count.
    """
    import keras

    backend = keras.backend.backend()
    previous_flags = os.environ.get("XLA_FLAGS")
    if backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_force_host_platform_device_count" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
        import jax

        try:
            jax.config.update("jax_num_cpu_devices", int(n))
        except (AttributeError, RuntimeError, ValueError):
            pass  # older JAX (uses XLA_FLAGS) or backend already started (checked below)
        count = len(keras.distribution.list_devices("cpu"))
    elif backend == "tensorflow":
        import tensorflow as tf

        cpus = tf.config.list_physical_devices("CPU")
        try:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(int(n))])
        except RuntimeError:
            pass  # already initialized; checked below
        count = len(keras.distribution.list_devices("cpu"))
    else:
        raise NotImplementedError(f"virtual_cpu_devices supports jax and tensorflow, not "
                                  f"{backend}.")
    if count != n:
        if previous_flags is None:  # leave the environment as it was
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = previous_flags
        raise RuntimeError(
            f"The {backend} backend sees {count} CPU device(s), not {n}: call "
            "virtual_cpu_devices() first thing in a fresh process (before building any model), "
            "or restart the kernel.")
    return count


def _devices(devices):
    """The given devices, else Keras' list: all GPUs (or TPUs), else all CPU devices."""
    import keras

    return list(devices) if devices is not None else keras.distribution.list_devices()


def distribution_strategy(devices: Sequence[str] | None = None):
    """The backend's data-parallel engine over all (or the given) devices.

    Args:
        devices: Device names (default: all GPUs, else all CPU devices).

    Returns:
        ``keras.distribution.DataParallel`` under JAX; ``tf.distribute.MirroredStrategy``
        under TensorFlow.

    Raises:
        NotImplementedError: Under another backend (use torch's own DDP there).
    """
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        return keras.distribution.DataParallel(devices=_devices(devices))
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy(devices=_devices(devices))
    raise NotImplementedError(
        f"data-parallel training here covers the jax and tensorflow backends, not {backend}; "
        "with torch use torch.nn.parallel.DistributedDataParallel.")


def num_replicas(strategy) -> int:
    """Number of devices a strategy from :func:`distribution_strategy` splits batches over."""
    if hasattr(strategy, "num_replicas_in_sync"):
        return int(strategy.num_replicas_in_sync)
    return int(len(strategy.device_mesh.devices.flatten()))


@contextlib.contextmanager
def data_parallel_scope(devices: Sequence[str] | None = None):
    """A scope in which models are built, compiled and trained data-parallel.

    Example::

        with data_parallel_scope() as strategy:
            model = build_model("small_cnn")
            compile_model(model)
            model.fit(x, y, batch_size=64 * num_replicas(strategy))

    The global batch is split evenly across devices: make it a multiple of
    :func:`num_replicas`.

    Args:
        devices: Device names (default: all GPUs, else all CPU devices).

    Yields:
        The strategy of :func:`distribution_strategy`.
    """
    strategy = distribution_strategy(devices)
    with strategy.scope():
        yield strategy


def data_parallel_check(n_devices: int = 2, steps: int = 4, batch_size: int = 32,
                        seed: int = 0) -> dict:
    """Trains a tiny CNN data-parallel on ``n_devices`` virtual CPU devices; returns a report.

    What ``python -m xraykit data-parallel`` runs. Call it first thing in a fresh process (see
    :func:`virtual_cpu_devices`).

    Args:
        n_devices: Virtual CPU devices to split the CPU into.
        steps: Batches per epoch (two epochs on synthetic phantoms).
        batch_size: Global batch size (split across the devices).
        seed: Seed of the data and the weights.

    Returns:
        ``{"backend", "strategy", "replicas", "variable_devices", "loss", "weights_changed",
        "weights_total"}``: the strategy's class name, the devices a kernel lives on, the loss
        per epoch and how many weight arrays training changed.

    Raises:
        RuntimeError: If the backend already started with another device count.
    """
    virtual_cpu_devices(n_devices)
    import keras
    import numpy as np

    from xraykit import models
    from xraykit.synthetic import phantoms

    keras.utils.set_random_seed(seed)
    x, y, _ = phantoms(batch_size * steps, image_size=28, seed=seed)
    y = np.asarray(y).reshape(len(y), -1)[:, :1].astype("float32")
    with data_parallel_scope() as strategy:
        model = models.build_model("small_cnn", input_shape=(28, 28, 1), width=8, depth=2,
                                   seed=seed)
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="binary_crossentropy")
        before = [np.array(w) for w in model.get_weights()]
        history = model.fit(x, y, batch_size=batch_size, epochs=2, verbose=0, shuffle=False)
        after = model.get_weights()
        kernel = model.trainable_variables[0].value
        if keras.backend.backend() == "tensorflow":  # a MirroredVariable: one copy per device
            per_replica = [str(v.device) for v in getattr(kernel, "values", [kernel])]
        else:  # a jax.Array, replicated over the mesh
            per_replica = sorted(str(d) for d in kernel.sharding.device_set)
    changed = sum(not np.allclose(a, b) for a, b in zip(before, after))
    return {
        "backend": keras.backend.backend(),
        "strategy": type(strategy).__name__,
        "replicas": num_replicas(strategy),
        "variable_devices": per_replica,
        "loss": [float(v) for v in history.history["loss"]],
        "weights_changed": int(changed),
        "weights_total": len(before),
    }


if __name__ == "__main__":  # pragma: no cover  (old spelling of `python -m xraykit data-parallel`)
    from xraykit.cli import main as _cli_main  # an entry point: run, never imported

    sys.exit(_cli_main(["data-parallel", *sys.argv[1:]]))
