"""Models whose output is not a probability are refused at save time and by predict."""

import keras
import numpy as np
import pytest

from xraykit import inference
from xraykit.inference import predict, save_model

SHAPE = (16, 16, 1)
IMAGES = np.full((2, 16, 16), 0.5, np.float32)


def _body():
    inputs = keras.Input(SHAPE)
    return inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inputs))


def _logits():
    inputs, x = _body()
    return keras.Model(inputs, keras.layers.Dense(1, name="head")(x))


def _scaled():
    """Ends in a layer with no activation that multiplies a probability by 1000."""
    inputs, x = _body()
    x = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, keras.layers.Rescaling(1000.0, name="times_1000")(x))


def _two_inputs():
    a, b = keras.Input(SHAPE), keras.Input((3,))
    x = keras.layers.Concatenate()([keras.layers.Flatten()(a), b])
    return keras.Model([a, b], keras.layers.Dense(1, activation="sigmoid")(x))


def _two_outputs():
    inputs, x = _body()
    return keras.Model(inputs, [keras.layers.Dense(1, activation="sigmoid")(x),
                                keras.layers.Dense(1, activation="sigmoid")(x)])


@pytest.mark.parametrize("build, words", [
    (_logits, "last layer 'head' has activation 'linear'.*end the model with a sigmoid"),
    (_scaled, r"outputs range .* outside \[0, 1\].*softmax"),
    (_two_inputs, "the model has 2 inputs.*a single image input"),
    (_two_outputs, "the model has 2 outputs.*a single output"),
])
def test_non_probability_models_are_refused_at_save_time(tmp_path, build, words):
    path = tmp_path / "m.keras"
    with pytest.raises(ValueError, match=words) as err:
        save_model(build(), path)
    assert str(err.value).startswith(f"save_model({path})")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("build, words", [(_logits, "activation 'linear'"),
                                          (_scaled, "outputs range")])
def test_predict_refuses_them_naming_the_model_file(tmp_path, build, words):
    path = tmp_path / "plain.keras"
    build().save(path)  # saved by Keras, not save_model: no check on the way in
    with pytest.warns(inference.MissingConfigWarning):
        with pytest.raises(ValueError, match=words) as err:
            predict(path, IMAGES)
    assert str(err.value).startswith(str(path))
    with pytest.raises(ValueError, match=f"^predict: .*{words}"):
        predict(build(), IMAGES)


def test_outputs_outside_unit_range_are_never_reported_as_probabilities(monkeypatch):
    model = _logits()
    model.layers[-1].set_weights([np.full((2, 1), 400.0), np.array([3000.0])])
    monkeypatch.setattr(inference, "check_probability_model", lambda *args, **kwargs: None)
    with pytest.raises(ValueError, match=r"predict: the model.s outputs range .* not probab"):
        predict(model, IMAGES)


def test_a_sigmoid_model_is_saved_and_predicts(tmp_path):
    inputs, x = _body()
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    result = predict(save_model(model, tmp_path / "ok.keras"), IMAGES)
    assert ((0 <= result.probabilities) & (result.probabilities <= 1)).all()
