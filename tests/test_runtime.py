"""The lesson runtime: quiet Keras start, version floor, precision by device, one setup cell."""

import json
import logging
import os
import pathlib
import re
import subprocess
import sys

import pytest

from xraykit import course, runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("capability, policy", [
    (None, "float32"),             # CPU
    ((7, 5), "mixed_float16"),     # T4, Colab's free GPU: no bfloat16
    ((7, 0), "mixed_float16"),     # V100
    ((8, 0), "mixed_bfloat16"),    # A100
    ((8, 9), "mixed_bfloat16"),    # L4
    ((9, 0), "mixed_bfloat16"),    # H100
])
def test_precision_policy_follows_compute_capability(capability, policy):
    assert runtime.policy_for(capability) == policy


def test_this_machine_gets_a_policy_for_its_device():
    assert runtime.mixed_precision_policy() == runtime.policy_for(runtime.gpu_compute_capability())


@pytest.mark.parametrize("version", ["3.13.2", "3.9.0", "2.15.0"])
def test_old_keras_is_refused_with_the_upgrade_command(version):
    with pytest.raises(RuntimeError) as err:
        runtime.check_keras_version(version)
    message = str(err.value)
    assert version in message and 'pip install -U "keras>=3.14"' in message
    assert "restart" in message.lower()


@pytest.mark.parametrize("version", ["3.14.0", "3.15.1", "3.16.0.dev2026112400", "4.0.0"])
def test_new_enough_keras_passes(version):
    runtime.check_keras_version(version)


def test_installed_keras_meets_the_floor():
    runtime.check_keras_version()


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_quiet_start_prints_nothing_on_stderr(backend):
    # keras.utils.set_random_seed seeds TensorFlow too when it is installed, whatever the backend,
    # and so imports it: its start-up lines must stay out of a JAX lesson as well.
    script = ("import sys, numpy as np, xraykit\n"
              "keras = xraykit.quiet_start()\n"
              "keras.utils.set_random_seed(0)\n"
              "model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])\n"
              "model.compile(loss='mse')\n"
              "model.fit(np.zeros((8, 3)), np.zeros((8, 1)), epochs=1, verbose=0)\n"
              "print(keras.backend.backend())\n"
              "print('python stderr still works', file=sys.stderr)\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    env["KERAS_BACKEND"] = backend
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120, check=True)
    assert done.stdout.strip() == backend
    assert done.stderr.strip() == "python stderr still works"


def test_after_quiet_start_keras_loads_a_model_with_xraykit_objects_in_a_fresh_process(tmp_path):
    import keras

    from xraykit.losses import WeightedBinaryCrossentropy
    from xraykit.preprocessing import PerImageStandardize
    from xraykit.training import Specificity

    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Dense(1, activation="sigmoid")(
        keras.layers.Flatten()(PerImageStandardize()(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile(loss=WeightedBinaryCrossentropy(2.0, 0.5), metrics=[Specificity()])
    path = tmp_path / "saved.keras"
    model.save(path)
    script = ("import sys, xraykit\n"
              "keras = xraykit.quiet_start()\n"
              "model = keras.saving.load_model(sys.argv[1])\n"
              "print(type(model.loss).__name__, model.loss.positive_weight,\n"
              "      type(model.layers[1]).__name__)\n")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["WeightedBinaryCrossentropy", "2.0", "PerImageStandardize"]


def test_every_lesson_has_the_same_setup_cell():
    setups = set()
    for path in course.find_notebooks():
        cells = json.loads(path.read_text())["cells"]
        setup = next(c for c in cells if c["cell_type"] == "code")
        setups.add("".join(setup["source"]))
    assert len(setups) == 1
    (setup,) = setups
    assert setup.count("%pip install") == 1 and "@v" in setup  # one pinned reference
    assert "xraykit.quiet_start()" in setup and "xraykit.environment()" in setup


def test_setup_cell_runs_where_no_google_package_exists():
    """Outside Colab a plain pip environment may have no ``google`` package at all."""
    (path, *_) = course.find_notebooks()
    cells = json.loads(path.read_text())["cells"]
    setup = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
    python = re.sub(r"%pip .*", "pass", setup)  # IPython magic, only reached in Colab
    script = "import sys\nsys.modules['google'] = None  # importing google now fails\n" + python
    env = dict(os.environ, KERAS_BACKEND="jax")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_retracing_notice_is_hidden_and_other_tensorflow_warnings_are_not(caplog):
    logger = logging.getLogger("tensorflow")
    runtime.hide_retracing_notice()
    runtime.hide_retracing_notice()
    try:
        with caplog.at_level(logging.WARNING, logger="tensorflow"):
            logger.warning("5 out of the last 5 calls to <function f> triggered tf.function "
                           "retracing. Tracing is expensive.")
            logger.warning("some other TensorFlow warning")
        assert [r.getMessage() for r in caplog.records] == ["some other TensorFlow warning"]
        assert sum(isinstance(f, runtime._RetracingNoticeFilter) for f in logger.filters) == 1
    finally:
        for f in list(logger.filters):
            logger.removeFilter(f)


@pytest.mark.parametrize("start", [True, False])
def test_quiet_start_hides_torchs_0d_transpose_warning(start):
    """Keras' torch count_nonzero (inside RandAugment) warns on every call without the filter."""
    pytest.importorskip("torch")
    code = ("import numpy as np\n"
            + ("from xraykit import runtime; runtime.quiet_start('torch')\n" if start else "")
            + "import keras\n"
            "layer = keras.layers.RandAugment(value_range=(0, 1), num_ops=2, factor=0.5, seed=1)\n"
            "layer(np.random.default_rng(0).random((4, 28, 28, 3), dtype=np.float32))\n")
    env = dict(os.environ, KERAS_BACKEND="torch", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert ("Tensor.T is deprecated" in result.stderr) is not start


_COMPILE_TWICE = """
import pathlib, sys, numpy as np, xraykit
keras = xraykit.quiet_start()
folder = xraykit.runtime.use_compilation_cache()
print(folder)

def fit_a_new_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3),
                              keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((16, 8, 8, 1)), np.zeros((16, 1)), epochs=1, verbose=0)
    return sorted(p.name for p in pathlib.Path(folder).iterdir())

first = fit_a_new_model()
print(len(first), fit_a_new_model() == first)
"""


def _fresh_jax(script, tmp_path, **env_changes):
    env = {k: v for k, v in os.environ.items()
           if k not in ("KERAS_BACKEND", runtime.JAX_CACHE_ENV)}
    env.update(KERAS_BACKEND="jax", XRAYKIT_CACHE=str(tmp_path / "cache"),
               PYTHONPATH=ROOT + os.pathsep + env.get("PYTHONPATH", ""),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", **env_changes)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def test_jax_compiles_a_rebuilt_model_from_the_cache(tmp_path):
    """The second, identical model adds no compiled program: each one is read from the cache."""
    folder, entries, unchanged = _fresh_jax(_COMPILE_TWICE, tmp_path)
    assert pathlib.Path(folder) == tmp_path / "cache" / "xraykit" / "jax_compilation_cache"
    assert int(entries) >= 1 and unchanged == "True"
    # The user's own cache folder wins, and the same programs are found there in a new process.
    mine = tmp_path / "mine"
    first = _fresh_jax(_COMPILE_TWICE, tmp_path, JAX_COMPILATION_CACHE_DIR=str(mine))
    assert first[0] == str(mine) and int(first[1]) >= 1
    assert _fresh_jax(_COMPILE_TWICE, tmp_path, JAX_COMPILATION_CACHE_DIR=str(mine))[1:] == [
        first[1], "True"]


def test_no_compilation_cache_under_tensorflow():
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("checks the TensorFlow side")
    assert runtime.use_compilation_cache() is None
