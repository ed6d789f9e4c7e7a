"""Scale-out with existing engines: distributed tuning and data-parallel training.

Two independent tools, both thin wrappers over the engines that do the work:

* :mod:`xraykit.distribute.launch`: a **distributed hyperparameter search** with KerasTuner's
  own chief/worker mode: :func:`launch_distributed_search` starts a chief and N workers on this
  machine, :func:`distributed_commands` gives the commands to start them by hand on several
  machines (``python -m xraykit tune --workers N`` / ``--commands N``);
* :mod:`xraykit.distribute.data_parallel`: **data-parallel training** over the devices of one
  machine: :func:`data_parallel_scope` (``keras.distribution.DataParallel`` under JAX,
  ``tf.distribute.MirroredStrategy`` under TensorFlow), :func:`virtual_cpu_devices` to try it on
  a CPU, :func:`data_parallel_check` (``python -m xraykit data-parallel --devices 2``; the old
  spelling ``python -m xraykit.distribute --devices 2`` still works).
"""

from xraykit.distribute.data_parallel import (
    data_parallel_check,
    data_parallel_scope,
    distribution_strategy,
    num_replicas,
    virtual_cpu_devices,
)
from xraykit.distribute.launch import (
    DistributedRun,
    distributed_commands,
    free_port,
    launch_distributed_search,
    worker_env,
)

__all__ = [
    "DistributedRun", "data_parallel_check", "data_parallel_scope", "distributed_commands",
    "distribution_strategy", "free_port", "launch_distributed_search", "num_replicas",
    "virtual_cpu_devices", "worker_env",
]
