"""Export and quantization: a SavedModel served by a fresh process without Keras matches the model.

The export is run in a subprocess that cannot import keras or xraykit (they are blocked there),
on real radiographs; the int8 copy is compared with the float model on the same images, and what
a user saves (the int8 model) is reloaded in a fresh process.
"""

import pathlib
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

from xraykit import evaluation, export
from xraykit.images import read_images
from xraykit.models import build_model

SIDE = 64


@pytest.fixture(scope="module")
def nih_images(nih_dir):
    paths = sorted((nih_dir / "images").glob("*.png"))[:12]
    images, _, _ = read_images(paths, SIDE)
    return images[..., None]


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_model("small_cnn", (SIDE, SIDE, 1), task="multilabel", num_classes=3, width=4,
                       depth=2, seed=0)


def test_saved_model_served_without_keras_matches_the_model(model, nih_images, tmp_path):
    path = export.export_model(model, tmp_path / "served")
    served = export.serve_exported(path, nih_images, batch_size=5)  # a last, shorter batch too
    expected = model.predict(nih_images, verbose=0)
    assert served.outputs.shape == expected.shape == (len(nih_images), 3)
    np.testing.assert_allclose(served.outputs, expected, atol=1e-5)
    assert served.runtime == "tensorflow" and set(served.blocked) == {"keras", "xraykit"}
    assert served.images_per_second > 0
    files = [p for p in path.rglob("*") if p.is_file()]
    assert export.size_on_disk(path) == sum(p.stat().st_size for p in files)


def test_export_replaces_an_old_export_and_leaves_no_partial_folder(model, nih_images, tmp_path,
                                                                    monkeypatch):
    path = export.export_model(model, tmp_path / "served")
    other = build_model("small_cnn", (SIDE, SIDE, 1), task="multilabel", num_classes=3, width=4,
                        depth=2, seed=1)
    export.export_model(other, path)  # over the first one
    np.testing.assert_allclose(export.serve_exported(path, nih_images[:4]).outputs,
                               other.predict(nih_images[:4], verbose=0), atol=1e-5)

    def broken(target, **kwargs):
        pathlib.Path(target).mkdir()
        (pathlib.Path(target) / "half").write_text("x")
        raise OSError("disk full")

    monkeypatch.setattr(model, "export", broken)
    with pytest.raises(OSError, match="disk full"):
        export.export_model(model, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served"]  # the old export, only
    np.testing.assert_allclose(export.serve_exported(path, nih_images[:4]).outputs,
                               other.predict(nih_images[:4], verbose=0), atol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "torch",
                    reason="the ONNX export traces the model under torch only")
def test_onnx_export_under_torch_warns_nothing(model, nih_images, tmp_path):
    model(nih_images[:2])  # Keras exports to ONNX only a model that has been called
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            export.export_model(model, path, format="onnx")
            assert path.stat().st_size > 0
        except RuntimeError as err:  # traced, then refused: the `onnx` package is not installed
            assert "onnx" in str(err) and not path.exists()
    # What a notebook shows: Python's default filters hide a DeprecationWarning raised inside a
    # library (torch's note on its legacy exporter); PyTorch's TracerWarnings were shown.
    shown = [f"{w.category.__name__}: {w.message}" for w in caught
             if not issubclass(w.category, DeprecationWarning)]
    assert shown == []


def test_serving_errors_name_the_export(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such export"):
        export.serve_exported(tmp_path / "missing", np.zeros((1, 8, 8, 1)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuntimeError, match=r"empty: serving with tensorflow failed"):
        export.serve_exported(tmp_path / "empty", np.zeros((1, 8, 8, 1)))
    with pytest.raises(ValueError, match="format 'torch'"):
        export.export_model(None, tmp_path / "x", format="torch")


def test_int8_copy_agrees_with_the_float_model_and_reloads_in_a_fresh_process(model, nih_images,
                                                                             tmp_path):
    before = model.predict(nih_images, verbose=0)
    quantized, names = export.quantized_copy(model)
    assert names == ["logits"] and export.quantized_layers(model) == []
    np.testing.assert_array_equal(model.predict(nih_images, verbose=0), before)  # untouched
    after = quantized.predict(nih_images, verbose=0)
    assert 0 < np.abs(after - before).max() < 0.02  # int8 weights: close, not identical
    # Paired on the same images, the AUC of a label barely moves.
    labels = (before[:, 0] > np.median(before[:, 0])).astype(int)
    d = evaluation.paired_bootstrap_ci(labels, after[:, 0], before[:, 0], n_boot=200, seed=0)
    assert abs(d["value"]) <= 0.1
    quantized.save(tmp_path / "int8.keras")
    np.save(tmp_path / "x.npy", nih_images)
    program = ("import sys, numpy as np, keras; m = keras.saving.load_model(sys.argv[1]); "
               "np.save(sys.argv[3], m.predict(np.load(sys.argv[2]), verbose=0))")
    subprocess.run([sys.executable, "-c", program, str(tmp_path / "int8.keras"),
                    str(tmp_path / "x.npy"), str(tmp_path / "y.npy")], check=True,
                   capture_output=True)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), after, atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_int8_copy_of_a_mixed_precision_model_computes_in_float32(policy, nih_images):
    """Keras refuses int8 on float16 layers (a T4's policy): the copy is built in float32."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        mixed = build_model("small_cnn", (SIDE, SIDE, 1), task="multilabel", num_classes=3,
                            width=4, depth=2, seed=0)
        quantized, names = export.quantized_copy(mixed)
        assert keras.config.dtype_policy().name == policy  # the user's policy is back
    finally:
        keras.config.set_dtype_policy(previous)
    assert names == ["logits"] and mixed.get_layer("logits").compute_dtype != "float32"
    assert {layer.compute_dtype for layer in quantized.layers} == {"float32"}
    before = mixed.predict(nih_images, verbose=0)
    after = quantized.predict(nih_images, verbose=0)
    assert after.dtype == np.float32 and 0 < np.abs(after - before).max() < 0.05


def test_quantizing_a_model_without_dense_layers_is_refused():
    inputs = keras.Input((8, 8, 1))
    conv_only = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    with pytest.raises(ValueError, match="no layer that keras quantizes"):
        export.quantized_copy(conv_only)
