"""Bad inputs to xraykit.inference get clear errors: arrays, paths, stored model settings."""

import json
import pathlib
import re
import shutil
import zipfile

import numpy as np
import pytest

from xraykit.images import UnreadableFileWarning
from xraykit.inference import InferenceConfig, load_model, model_config, predict, save_model
from xraykit.models import build_model


@pytest.fixture(scope="module")
def model():
    return build_model("small_cnn", (16, 16, 1), width=4, depth=1)


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    return save_model(model, tmp_path_factory.mktemp("saved") / "m.keras",
                      class_names=["normal", "pneumonia"], threshold=0.3, temperature=1.5)


GOOD = np.full((2, 16, 16), 0.5, np.float32)


@pytest.mark.parametrize("bad, error, words", [
    (np.zeros((0, 16, 16), np.float32), ValueError, r"empty \(shape \(0, 16, 16\)\)"),
    (np.array([]), ValueError, r"empty \(shape \(0,\)\)"),
    ([], ValueError, "empty list"),
    (np.where(np.eye(16) > 0, np.nan, 0.5), ValueError,
     r"16 NaN/inf value\(s\) \(first at index \(0, 0, 0, 0\)"),
    (np.where(np.eye(16) > 0, np.inf, 0.5), ValueError, "NaN/inf"),
    (np.array([None] * 4).reshape(2, 2), TypeError, "Python objects"),
    (GOOD.astype(np.complex64) + 0.5j, TypeError, "complex numbers"),
    (GOOD > 0.3, TypeError, r"booleans \(a mask\?\)"),
    (np.array([["a.png", "b.png"]]), TypeError, "strings.*list of paths"),
    (np.full(16, 0.5), ValueError, r"shape \(16,\) \(1 dimension"),
    (np.full((1, 2, 16, 16, 1), 0.5), ValueError, r"shape \(1, 2, 16, 16, 1\)"),
    (np.full((2, 16, 16, 4), 0.5), ValueError, "4 channels.*x\\[..., :3\\]"),
    (np.full((2, 16, 16, 2), 0.5), ValueError, "2 channels"),
    ([np.zeros((16, 16)), np.zeros((20, 20))], ValueError, "different shapes"),
    (GOOD * 300, ValueError, r"\[0, 1\].*spans \[150, 150\]"),
])
def test_bad_arrays_are_refused_with_a_clear_message(model, bad, error, words):
    with pytest.raises(error, match=words) as info:
        predict(model, bad)
    assert "path_or_array" in str(info.value)  # names the argument


def test_bad_paths_and_arguments(model, saved, tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.png"))):
        predict(model, tmp_path / "nope.png")
    with pytest.raises(FileNotFoundError, match="nope.png: no such file"):
        predict(model, [tmp_path / "nope.png"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: no image file in this folder .*\.png, .*\.dcm"):
        predict(model, tmp_path / "empty")
    with pytest.raises(TypeError, match=r"mix file paths.*item 1 is of type int"):
        predict(model, [str(saved), 5])
    with pytest.raises(FileNotFoundError, match=r"nomodel.keras: no such model file"):
        predict(tmp_path / "nomodel.keras", GOOD)
    with pytest.raises(TypeError, match="model must be a keras.Model or the path"):
        predict(None, GOOD)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        predict(model, GOOD, batch_size=0)
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"junk.keras: not a .keras archive"):
        predict(tmp_path / "junk.keras", GOOD)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"could be read \(first: .*bad.png"), \
            pytest.warns(UnreadableFileWarning, match="bad.png"):
        predict(model, [tmp_path / "bad.png"])


@pytest.mark.parametrize("overrides, error, words", [
    ({"threshold": 1.5}, ValueError, "'threshold' must be a probability in \\[0, 1\\]"),
    ({"threshold": float("nan")}, ValueError, "'threshold'"),
    ({"temperature": float("inf")}, ValueError, "'temperature' must be a finite number > 0"),
    ({"temperature": 0}, ValueError, "'temperature'"),
    ({"class_names": "ab"}, TypeError, "'class_names' must be a list of strings"),
    ({"class_names": ["a", "b", "c"]}, ValueError,
     r"'class_names' has 3 name\(s\) but the model has 1 output"),
    ({"image_size": 0}, ValueError, "'image_size' must be a positive whole number"),
    ({"image_size": 32}, ValueError, "'image_size' is 32 but the model takes 16x16"),
    ({"image_size": "16"}, TypeError, "'image_size'"),
    ({"resize_mode": "stretch"}, ValueError, "'resize_mode' must be 'pad' or 'crop'"),
])
def test_bad_settings_in_predict_and_save_model(model, tmp_path, overrides, error, words):
    with pytest.raises(error, match="predict: argument " + words):
        predict(model, GOOD, **overrides)
    with pytest.raises(error, match=r"save_model\(.*m\.keras\): argument " + words):
        save_model(model, tmp_path / "m.keras", **overrides)
    assert list(tmp_path.iterdir()) == []  # nothing written when the settings are bad


def _with_entry(saved, tmp_path, text, name="edited.keras"):
    """A copy of the saved model whose stored settings (archive entry) are ``text``."""
    target = tmp_path / name
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.infolist():
            if item.filename != "xraykit.json":
                dst.writestr(item, src.read(item))
        if text is not None:
            dst.writestr("xraykit.json", text)
    return target


def _stored(saved, **changes):
    values = json.loads(zipfile.ZipFile(saved).read("xraykit.json"))
    return json.dumps({**values, **changes})


@pytest.mark.parametrize("changes, words", [
    ({"threshold": 1.5}, "'threshold' must be a probability in \\[0, 1\\], got 1.5"),
    ({"threshold": "high"}, "'threshold' must be a probability in \\[0, 1\\], got 'high'"),
    ({"threshold": True}, "'threshold'"),
    ({"temperature": -1}, "'temperature' must be a finite number > 0"),
    ({"class_names": "pneumonia"}, "'class_names' must be a list of strings"),
    ({"class_names": [0, 1]}, "'class_names' must be a list of strings"),
    ({"class_names": ["a", "b", "c"]}, r"'class_names' has 3 name\(s\) but the model has 1"),
    ({"image_size": 0}, "'image_size' must be a positive whole number"),
    ({"image_size": 28.5}, "'image_size' must be a positive whole number"),
    ({"image_size": 64}, "'image_size' is 64 but the model takes 16x16"),
    ({"channels": 3}, "'channels' is 3 but the model takes 1-channel"),
    ({"resize_mode": "stretch"}, "'resize_mode' must be 'pad' or 'crop'"),
    ({"task": "regression"}, "'task' must be one of"),
    ({"task": "multiclass", "class_names": ["a"]}, None),  # 1 output: accepted, names fit
    ({"format": "xraykit-inference-9"}, "'format' is 'xraykit-inference-9'"),
])
def test_stored_settings_are_checked_when_read(saved, tmp_path, changes, words):
    path = _with_entry(saved, tmp_path, _stored(saved, **changes))
    if words is None:
        assert model_config(load_model(path)).class_names == ["a"]
        return
    with pytest.raises(ValueError, match=r"edited.keras \(entry xraykit.json\): field " + words):
        load_model(path)


def test_corrupt_or_wrong_typed_settings_name_the_file(saved, tmp_path):
    infinite = _stored(saved).replace('"temperature": 1.5', '"temperature": Infinity')
    with pytest.raises(ValueError, match=r"entry xraykit.json\): field 'temperature'.*inf"):
        load_model(_with_entry(saved, tmp_path, infinite))
    with pytest.raises(ValueError, match=r"edited.keras \(entry xraykit.json\): not valid JSON"):
        load_model(_with_entry(saved, tmp_path, "{not json"))
    with pytest.raises(ValueError, match=r"expected a JSON object.*found a list"):
        load_model(_with_entry(saved, tmp_path, "[1, 2]"))

    # Without the archive entry the sidecar is read, and checked the same way.
    bare = _with_entry(saved, tmp_path, None, name="bare.keras")
    sidecar = tmp_path / "bare.keras.json"
    sidecar.write_text('{"threshold": "x"')
    with pytest.raises(ValueError, match=r"bare.keras.json: not valid JSON"):
        load_model(bare)
    sidecar.write_text('{"threshold": 2}')
    with pytest.raises(ValueError, match=r"bare.keras.json: field 'threshold'.*got 2"):
        load_model(bare)
    # A sidecar that gives only some fields: the rest comes from the model, not a guess.
    sidecar.write_text('{"threshold": 0.25}')
    config = model_config(load_model(bare))
    assert (config.threshold, config.image_size, config.temperature) == (0.25, 16, 1.0)


def test_valid_settings_round_trip_and_nothing_is_left_half_written(model, saved, tmp_path):
    config = model_config(load_model(saved))
    assert (config.threshold, config.temperature, config.class_names, config.image_size) == \
        (0.3, 1.5, ["normal", "pneumonia"], 16)
    assert json.loads(saved.with_name("m.keras.json").read_text())["threshold"] == 0.3
    assert sorted(p.name for p in saved.parent.iterdir()) == ["m.keras", "m.keras.json"]
    with pytest.raises(ValueError, match="InferenceConfig: field 'threshold'"):
        InferenceConfig.from_dict({"threshold": -0.1})

    # A save that fails half-way leaves the previous file untouched and no temporary file.
    target = tmp_path / "keep.keras"
    shutil.copy(saved, target)
    before = target.read_bytes()

    class Broken:
        inputs, outputs, layers = model.inputs, model.outputs, model.layers

        def save(self, path):
            path.write_bytes(b"partial")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_model(Broken(), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.keras"]


def test_prediction_prints_one_line_per_image(model, saved):
    result = predict(saved, GOOD)
    text = str(result)
    lines = text.splitlines()
    assert len(lines) == 2 and lines[0].startswith("image 0: p(pneumonia) = ")
    p = float(re.search(r"= ([0-9.]+)", lines[0]).group(1))
    assert p == pytest.approx(float(result.probabilities[0, 0]), abs=1e-4)
    assert lines[0].endswith(f"-> {'pneumonia' if p >= 0.3 else 'normal'} (threshold 0.3)")


def test_a_list_may_name_folders_and_files_as_the_predict_command_does(model, tmp_path):
    from PIL import Image

    folder = tmp_path / "folder"
    (folder / "deeper").mkdir(parents=True)
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    for path in (folder / "b.png", folder / "deeper" / "a.png", tmp_path / "single.png"):
        Image.fromarray(pixels).save(path)
    prediction = predict(model, [folder, tmp_path / "single.png"], image_size=16)
    names = [pathlib.Path(p).name for p in prediction.paths]
    assert names == ["b.png", "a.png", "single.png"]  # each folder sorted, then in the order given
    alone = predict(model, tmp_path / "single.png", image_size=16)
    np.testing.assert_allclose(prediction.probabilities[2], alone.probabilities[0], atol=1e-6)
