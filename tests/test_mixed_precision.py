"""Every model factory trains under mixed_float16 and mixed_bfloat16 and reloads in a new process.

The gpu profiles run in mixed precision (bfloat16 on compute capability 8 and newer, float16 on a
T4). A CPU can check the code path: each family is built, compiled with the task metrics, trained
one step under each policy (float16 gets Keras' loss scaling), predicts float32 probabilities, and
is saved; a second process (no policy set, xraykit's loader) reloads every file and must predict
the same.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from xraykit.models import build_model, list_models, model_info
from xraykit.training import compile_model

# One eager step of each ImageNet backbone takes seconds under TensorFlow but many minutes under
# JAX or torch on a CPU (op-by-op dispatch of hundreds of layers); the gpu-smoke course checks the
# JAX mixed-precision path end to end.
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="every family's eager step runs under TensorFlow only")
POLICIES = ["mixed_float16", "mixed_bfloat16"]
ROOT = pathlib.Path(__file__).resolve().parents[1]
RELOAD = """
import json, sys
import keras
import numpy as np
from xraykit.inference import load_model
folder = sys.argv[1]
inputs = np.load(f"{folder}/inputs.npz")
out = {}
for name in json.load(open(f"{folder}/names.json")):
    model = load_model(f"{folder}/{name}.keras")
    out[name] = np.asarray(keras.ops.convert_to_numpy(model(inputs[name], training=False)))
np.savez(f"{folder}/reloaded.npz", **out)
"""


@pytest.fixture()
def policy_scope():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _step(name, policy):
    """One family under one policy: built, compiled, one step trained; its batch and model."""
    keras.mixed_precision.set_global_policy(policy)
    spec = model_info(name)
    side = spec.min_size if spec.kind == "backbone" else 16
    model = build_model(name, (side, side, 1), width=4, depth=2, weights=None)
    # Eager: one step of each family, without tracing or compiling a program it runs once.
    compile_model(model, task="binary", learning_rate=1e-3, run_eagerly=True)
    rng = np.random.default_rng(0)
    x = rng.random((4, side, side, 1), dtype=np.float32)
    y = np.array([[0], [1], [0], [1]], np.int32)
    logs = model.train_on_batch(x, y, return_dict=True)
    return model, x, logs


@pytest.mark.parametrize("policy", POLICIES)
def test_every_family_trains_one_step_and_reloads_in_a_fresh_process(policy, tmp_path,
                                                                      policy_scope):
    predictions, inputs, names = {}, {}, []
    for name in list_models():
        model, x, logs = _step(name, policy)
        key = f"{name}_{policy}"
        assert np.isfinite(logs["loss"]) and 0.0 <= logs["auc"] <= 1.0, (key, logs)
        assert {"auc", "specificity", "sensitivity"} <= set(logs), key
        # Loss scaling: Keras wraps the optimizer under float16 only (bfloat16 has float32's range).
        scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert scaled == (policy == "mixed_float16"), key
        assert model.layers[1].compute_dtype == policy.split("_")[1], key
        out = keras.ops.convert_to_numpy(model(x, training=False))
        assert out.dtype == np.float32 and np.all((out >= 0) & (out <= 1)), key
        model.save(tmp_path / f"{key}.keras")
        predictions[key], inputs[key] = out, x
        names.append(key)
    np.savez(tmp_path / "inputs.npz", **inputs)
    (tmp_path / "names.json").write_text(json.dumps(names))
    keras.mixed_precision.set_global_policy("float32")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                     os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", RELOAD, str(tmp_path)], capture_output=True,
                          text=True, timeout=900, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    reloaded = np.load(tmp_path / "reloaded.npz")
    for key in names:
        tolerance = 1e-2 if "float16" in key else 2e-2  # half-precision layers, reloaded as such
        np.testing.assert_allclose(reloaded[key], predictions[key], atol=tolerance, err_msg=key)
