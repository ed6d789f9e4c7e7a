"""Lesson 2's own code (its ``definition`` cells) agrees with xraykit.models.

The notebook writes a small CNN and a transfer-learning model with plain ``keras.layers`` and
``keras.applications``; ``xraykit.models.build_model`` (with ``set_trainable``) is what the rest
of the course calls. These tests build both for several settings and check they are the same
network: layer types in order, parameter counts, the same initial weights for one seed, and the
same predictions on real radiographs once the weights are shared. They also run the lesson's
batch-normalization census, whose results the lesson's prose relies on.
"""

import keras
import numpy as np
import pytest

from tests.conftest import one_backbone_off_tensorflow
from tests.lesson_code import lesson_definitions
from xraykit.models import BN_MOMENTUM, build_model, count_params, set_trainable


@pytest.fixture(scope="module")
def lesson():
    return lesson_definitions("02")


def _types(model):
    return [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize("width, depth, task, num_classes", [
    (8, 2, "binary", 1),
    (16, 3, "binary", 1),
    (4, 4, "multilabel", 14),
    (8, 3, "multiclass", 3),
])
def test_small_cnn_is_build_model_small_cnn(lesson, small_data, width, depth, task, num_classes):
    ours = lesson.build_small_cnn(small_data.image_shape, width=width, depth=depth, task=task,
                                  num_classes=num_classes, seed=3)
    theirs = build_model("small_cnn", small_data.image_shape, task=task,
                         num_classes=num_classes, width=width, depth=depth, seed=3)
    assert _types(ours) == _types(theirs)
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    assert count_params(ours) == count_params(theirs)
    bn = [layer for layer in ours.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bn) == depth and {layer.momentum for layer in bn} == {BN_MOMENTUM}
    # Same seed, same initial weights; and the same predictions on radiographs.
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b)
    x = small_data.x_val[:32]
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_small_cnn_predictions_agree_after_copying_trained_weights(lesson, small_data):
    ours = lesson.build_small_cnn(small_data.image_shape, width=8, depth=3, seed=0)
    ours.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    ours.fit(small_data.x_train, small_data.y_train, epochs=1, batch_size=64, verbose=0)
    theirs = build_model("small_cnn", small_data.image_shape, width=8, depth=3, seed=7)
    x = small_data.x_val
    assert not np.allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), atol=1e-3)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, application, family", one_backbone_off_tensorflow([
    ("mobilenetv3small", "MobileNetV3Small", "mobilenet_v3"),
    ("densenet121", "DenseNet121", "densenet"),
], "mobilenetv3small"))
def test_transfer_model_is_build_model_backbone(lesson, small_data, name, application, family):
    ours, backbone = lesson.build_transfer_model(
        small_data.image_shape, getattr(keras.applications, application),
        getattr(keras.applications, family).preprocess_input, weights=None, seed=0)
    theirs = build_model(name, small_data.image_shape, weights=None, seed=0)
    assert backbone.count_params() == theirs.get_layer("backbone").count_params()
    # Stage 1: frozen backbone, only the head trains.
    backbone.trainable = False
    set_trainable(theirs, backbone=False)
    assert count_params(ours) == count_params(theirs)
    assert count_params(ours)["trainable"] == theirs.get_layer("logits").count_params()
    # Stage 2: unfrozen, batch-norm layers kept frozen.
    backbone.trainable = True
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    set_trainable(theirs, backbone=True)
    assert count_params(ours) == count_params(theirs)
    # Same weights, same predictions: the grayscale-to-RGB step and preprocess_input agree with
    # xraykit's value-range layer on real radiographs.
    theirs.get_layer("backbone").set_weights(backbone.get_weights())
    theirs.get_layer("logits").set_weights(ours.get_layer("logits").get_weights())
    x = small_data.x_val[:16]
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)


def test_transfer_model_upsamples_small_images_only(lesson):
    small, _ = lesson.build_transfer_model((28, 28, 1), keras.applications.MobileNetV3Small,
                                           keras.applications.mobilenet_v3.preprocess_input)
    large, _ = lesson.build_transfer_model((64, 64, 1), keras.applications.MobileNetV3Small,
                                           keras.applications.mobilenet_v3.preprocess_input)
    assert small.get_layer("upsample").output.shape[1:3] == (32, 32)
    assert "upsample" not in [layer.name for layer in large.layers]


def test_normalization_census_backs_the_lessons_explanation(lesson):
    """The facts section 5 tells students to look for (checked here so the prose stays true)."""
    cnn = lesson.normalization_census(build_model("small_cnn", width=4, depth=2))
    assert cnn == {"batch_norm": 2, "bn_momenta": [BN_MOMENTUM], "layer_norm": 0}
    mobilenet = lesson.normalization_census(keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(32, 32, 3)))
    assert mobilenet["batch_norm"] > 10 and mobilenet["layer_norm"] == 0
    default = keras.layers.BatchNormalization().momentum
    assert all(m > default for m in mobilenet["bn_momenta"])  # longer memory than Keras' default
    convnext = lesson.normalization_census(keras.applications.ConvNeXtTiny(
        include_top=False, weights=None, input_shape=(32, 32, 3)))
    assert convnext["batch_norm"] == 0 and convnext["layer_norm"] > 10
    # Nested models are walked: a backbone inside a model is counted.
    nested = lesson.normalization_census(build_model("mobilenetv3small", weights=None))
    assert nested["batch_norm"] == mobilenet["batch_norm"]


# ---------------------------------------------------------------------------------------------
# Section 2: why He initialization (the derivation's two facts, checked on the lesson's code)
# ---------------------------------------------------------------------------------------------
def test_relu_keeps_half_of_a_symmetric_variable_s_second_moment():
    z = keras.random.normal((400_000,), stddev=2.0, seed=1)
    ratio = float(keras.ops.mean(keras.ops.relu(z) ** 2) / keras.ops.var(z))
    assert abs(ratio - 0.5) < 0.01


def test_keras_he_normal_has_variance_two_over_fan_in():
    kernel = keras.ops.convert_to_numpy(keras.initializers.HeNormal(seed=0)((400, 300)))
    assert abs(kernel.var() * 400 - 2.0) < 0.05          # truncation is corrected for by Keras
    conv = keras.ops.convert_to_numpy(keras.initializers.HeNormal(seed=0)((3, 3, 32, 64)))
    assert abs(conv.var() * 3 * 3 * 32 - 2.0) < 0.05      # fan-in: kernel area x channels in


def test_activation_rms_matches_the_derivation(lesson):
    """He keeps the activations' size through 20 ReLU layers; 1/n halves the variance per layer."""
    per_layer = {}
    for name in ("HeNormal", "LecunNormal", "GlorotUniform"):
        rms = lesson.activation_rms(getattr(keras.initializers, name), width=256, depth=20, seed=3)
        assert rms.shape == (20,) and np.all(np.isfinite(rms))
        per_layer[name] = np.exp(np.mean(np.diff(np.log(rms))))   # geometric mean factor per layer
    assert abs(per_layer["HeNormal"] - 1.0) < 0.05
    for name in ("LecunNormal", "GlorotUniform"):                # square layers: Glorot = 1/n
        assert abs(per_layer[name] - 2 ** -0.5) < 0.05, per_layer


# ---------------------------------------------------------------------------------------------
# Section 5: features extracted once, a linear probe on them
# ---------------------------------------------------------------------------------------------
def _tiny_extractor(seed):
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, kernel_initializer=keras.initializers.HeNormal(seed=seed))(inputs)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="tiny")


def test_extract_features_computes_once_then_reads_the_cache(lesson, small_data, tmp_path):
    extractor = _tiny_extractor(0)
    images = small_data.x_val[:32]
    first, path = lesson.extract_features(extractor, images, tmp_path)
    assert path.is_file() and first.shape == (32, 4)
    assert path.name.startswith("tiny_28px_") and not list(tmp_path.glob("*partial*"))

    def no_predict(*args, **kwargs):
        raise AssertionError("the cached features should have been read")

    extractor.predict = no_predict
    again, same_path = lesson.extract_features(extractor, images, tmp_path)
    assert same_path == path
    np.testing.assert_array_equal(again, first)
    # Other weights or other images: another file, computed afresh.
    _, other_weights = lesson.extract_features(_tiny_extractor(1), images, tmp_path)
    _, other_images = lesson.extract_features(_tiny_extractor(0), small_data.x_val[32:64], tmp_path)
    assert len({path, other_weights, other_images}) == 3


def test_features_of_a_mixed_precision_extractor_reload_as_float32(lesson, small_data, tmp_path):
    """The gpu profiles' bfloat16 features: np.save cannot keep bfloat16, so they are float32."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        extractor = _tiny_extractor(0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    first, path = lesson.extract_features(extractor, small_data.x_val[:8], tmp_path)
    again, _ = lesson.extract_features(extractor, small_data.x_val[:8], tmp_path)
    assert first.dtype == again.dtype == np.float32
    np.testing.assert_array_equal(again, first)
    assert np.sqrt(np.mean(again.astype("float64") ** 2)) > 0  # the lesson's next line


def test_train_probe_learns_informative_features(lesson):
    rng = np.random.default_rng(0)
    y = (rng.random((400, 1)) < 0.7).astype("float32")
    features = rng.normal(size=(400, 8)).astype("float32") + 2.0 * y   # every feature informative
    probe, history = lesson.train_probe(features[:300], y[:300], features[300:], y[300:],
                                        epochs=100, batch_size=64, seed=0)
    assert [layer.name for layer in probe.layers] == ["logits", "output"]
    assert max(history.history["val_auc"]) > 0.9


# ---------------------------------------------------------------------------------------------
# Section 5 end to end, ImageNet weights attempted: offline, then from a locally made weights file
# ---------------------------------------------------------------------------------------------
DRIVER = r'''
"""Runs lesson 2's section 5 (and its comparison helper) as the cpu profile does, at smoke sizes."""
import contextlib, dataclasses, hashlib, io, json, os, sys, urllib.error
import numpy as np
import keras
from keras.src.applications import mobilenet_v3
from keras.src.utils import file_utils
import xraykit
from xraykit.profiles import get_profile

# No network in either run: a download attempt fails at once, as it does offline.
def no_network(url, *args, **kwargs):
    raise urllib.error.URLError("no network in this test")
file_utils.urlretrieve = no_network

nb = json.load(open(sys.argv[1], encoding="utf-8"))
section, cells = None, []
for cell in nb["cells"]:
    text = "".join(cell["source"])
    if cell["cell_type"] == "markdown" and text.startswith("## "):
        section = text.split(".")[0]
    elif cell["cell_type"] == "code" and (section == "## 5" or "def paired_row" in text):
        cells.append(text)

SEED = 42
profile = dataclasses.replace(get_profile("smoke"), pretrained=True)   # the cpu branch, smoke sizes
DATA = os.environ.get("XRAYKIT_DATA") or None
data = xraykit.course_data("pneumoniamnist", profile, DATA, seed=SEED, split="selection")
cnn_scores = np.random.default_rng(0).random(len(data.y_val))          # stands in for section 4


def run_section():
    ns = {"__name__": "lesson_02_section_5", "profile": profile, "data": data, "DATA": DATA,
          "SEED": SEED, "SEEDS": [SEED], "EPOCHS": 1,
          "val_scores": {("small_cnn", SEED): cnn_scores}}
    exec("import os, time\nimport numpy as np\nimport keras\nimport pandas as pd\nimport xraykit\n"
         "from sklearn.metrics import roc_auc_score\nfrom xraykit.losses import class_weights\n"
         "from xraykit.models import build_model, count_params, set_trainable\n"
         "from xraykit.evaluation import predict_scores", ns)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for source in cells:
            exec(compile(source, "<lesson 02 section 5>", "exec"), ns)
    return ns, out.getvalue()


def summary(ns, printed):
    return {"weights": ns["WEIGHTS"], "printed": printed, "rows": list(ns["tl_table"].index),
            "features": sorted(p.name for p in ns["FEATURE_CACHE"].glob("*.npy"))}


report = {"offline": summary(*run_section())}

# A weights file made here, under the exact name and folder keras.applications reads from its cache.
model_name = "small_224_1.0_float"
file_name = f"weights_mobilenet_v3_{model_name}_no_top_v2.h5"
path = os.path.join(os.environ["KERAS_HOME"], "models", file_name)
keras.utils.set_random_seed(123)
made = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(64, 64, 3))
made.save(path)   # the legacy .h5 layout that load_weights reads
# Keras checks a cached file against the MD5 it ships (and, when the check fails and the download
# fails too, deletes the file): register this file's own MD5 in that table. Everything else (file
# name, $KERAS_HOME/models, get_file's cache hit, load_weights) is Keras' own path.
expected = mobilenet_v3.WEIGHTS_HASHES[model_name]
assert len(expected[1]) == 32, "Keras now ships another hash kind: update this test"
with open(path, "rb") as f:
    mobilenet_v3.WEIGHTS_HASHES[model_name] = (expected[0], hashlib.md5(f.read()).hexdigest())
loaded, printed = run_section()
report["local"] = summary(loaded, printed)
report["local"]["file_kept"] = os.path.isfile(path)
report["local"]["same_as_file"] = all(
    np.array_equal(a, b) for a, b in zip(loaded["frozen_weights"], made.get_weights()))
print("REPORT " + json.dumps(report))
'''


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="runs section 5 twice in a subprocess (minutes under JAX); the weights "
                           "file path is Keras' own on every backend, and CI runs the section "
                           "under JAX in the gpu-smoke course")
def test_transfer_section_runs_offline_and_from_a_local_weights_file(tmp_path):
    """Section 5 under the cpu profile's branch, offline, then with a weights file in the cache.

    Offline the lesson says so in one line and goes on with random weights; with the file under
    the name and folder ``keras.applications`` reads, it loads it and runs end to end.
    """
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import SHARED_DATA
    from xraykit import course

    root = course.notebook_dir().parent
    (tmp_path / "keras_home" / "models").mkdir(parents=True)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras_home"),   # read when keras is imported
           "XRAYKIT_CACHE": str(tmp_path / "cache"), "XRAYKIT_MIRROR_URL": "http://127.0.0.1:9",
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    if SHARED_DATA.is_dir():   # real radiographs, else phantoms: the path runs either way
        env["XRAYKIT_DATA"] = str(SHARED_DATA)
    run = subprocess.run([sys.executable, str(driver), str(course.find_notebooks(only=["02"])[0])],
                         capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.split("REPORT ", 1)[1])
    rows = ["linear probe vs small_cnn", "fine-tuned vs linear probe", "fine-tuned vs small_cnn"]

    offline = report["offline"]
    assert offline["weights"] is None and offline["rows"] == rows
    skipped = [line for line in offline["printed"].splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1 and "mobilenetv3small" in skipped[0] and "random weights" in skipped[0]
    assert len(offline["features"]) == 3                      # train, val, test, cached

    local = report["local"]
    assert local["weights"] == "imagenet" and local["rows"] == rows
    assert "SKIPPED" not in local["printed"] and "Downloading data from" not in local["printed"]
    assert local["same_as_file"] and local["file_kept"]   # the file's weights, from the cache
    assert len(local["features"]) == 6                    # other weights: three new feature files
