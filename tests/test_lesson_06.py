"""Lesson 6's search space, ``build_model(hp)`` written in the notebook, agrees with xraykit's.

The notebook declares its space with ``hp.Choice``, ``hp.Int``, ``hp.Float(sampling="log")`` and
a conditional scope; ``xraykit.tuning.XRayHyperModel`` declares the same kind of space from
arguments (it is what a distributed search imports). These tests check what the notebook's
function declares, and that for the same hyperparameter values both build the same network with
the same optimizer, weights and predictions on real radiographs.
"""

import numpy as np
import pytest

keras_tuner = pytest.importorskip("keras_tuner")

from tests.lesson_code import lesson_definitions  # noqa: E402
from xraykit import tuning  # noqa: E402


@pytest.fixture(scope="module")
def lesson():
    return lesson_definitions("06")


def _library_space(data, large_space):
    """The XRayHyperModel the notebook shows beside its own function."""
    return tuning.XRayHyperModel.for_data(
        data, models="small_cnn", width=(8, 16, 32), depth=(2, 3) if large_space else 3,
        dropout=(0.0, 0.5), l2=0.0, optimizers=("adam", "adamw"), learning_rate=(1e-4, 1e-2),
        weight_decay=(1e-5, 1e-2), augmentation=("none", "light") if large_space else "none",
        losses="bce", batch_size=64, seed=5)


@pytest.mark.parametrize("large_space", [False, True])
def test_build_model_declares_a_space_sized_to_the_budget(lesson, large_space):
    hp = keras_tuner.HyperParameters()
    model = lesson.build_model(hp, large_space=large_space)
    assert model.compiled and model.output_shape == (None, 1)
    space = {p.name: p for p in hp.space}
    fixed = keras_tuner.engine.hyperparameters.Fixed
    tuned = {name for name, p in space.items() if not isinstance(p, fixed)}
    expected = {"width", "dropout", "learning_rate", "optimizer"}
    if large_space:
        expected |= {"depth", "augmentation"}
    assert tuned == expected
    assert space["learning_rate"].sampling == "log"
    assert "weight_decay" not in hp.values  # the default optimizer is Adam: no decay declared
    hp.values["optimizer"] = "adamw"
    model = lesson.build_model(hp, large_space=large_space)
    assert hp.is_active("weight_decay")
    assert {p.name: p for p in hp.space}["weight_decay"].sampling == "log"
    assert type(model.optimizer).__name__ == "AdamW"
    assert float(model.optimizer.weight_decay) == pytest.approx(hp.values["weight_decay"])
    hp.values["optimizer"] = "adam"
    assert not hp.is_active("weight_decay")


@pytest.mark.parametrize("large_space, values", [
    (False, {"width": 16, "dropout": 0.3, "learning_rate": 2e-3, "optimizer": "adam"}),
    (False, {"width": 8, "dropout": 0.0, "learning_rate": 5e-4, "optimizer": "adamw",
             "weight_decay": 3e-3}),
    (True, {"width": 8, "depth": 2, "augmentation": "light", "dropout": 0.1,
            "learning_rate": 1e-3, "optimizer": "adamw", "weight_decay": 1e-4}),
])
def test_build_model_is_xray_hypermodel(lesson, small_data, large_space, values):
    hp = keras_tuner.HyperParameters()
    lesson.build_model(hp, large_space=large_space)  # declare, then choose the values
    if values["optimizer"] == "adamw":
        hp.values["optimizer"] = "adamw"
        lesson.build_model(hp, large_space=large_space)
    hp.values.update(values)
    mine = lesson.build_model(hp.copy(), input_shape=small_data.image_shape,
                              large_space=large_space, seed=5)
    theirs = _library_space(small_data, large_space).build(hp.copy())

    assert [type(layer).__name__ for layer in mine.layers] == \
        [type(layer).__name__ for layer in theirs.layers]
    assert mine.count_params() == theirs.count_params()
    assert type(mine.optimizer) is type(theirs.optimizer)
    assert float(mine.optimizer.learning_rate) == pytest.approx(values["learning_rate"])
    assert float(theirs.optimizer.learning_rate) == pytest.approx(values["learning_rate"])
    if values["optimizer"] == "adamw":
        assert float(mine.optimizer.weight_decay) == pytest.approx(values["weight_decay"])
        assert float(theirs.optimizer.weight_decay) == pytest.approx(values["weight_decay"])
    dropouts = [layer.rate for layer in mine.layers if type(layer).__name__ == "Dropout"]
    assert dropouts == ([values["dropout"]] if values["dropout"] else [])
    for a, b in zip(mine.get_weights(), theirs.get_weights()):  # same seed, same initial weights
        np.testing.assert_array_equal(a, b)
    x = small_data.x_val[:32]
    np.testing.assert_allclose(mine.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("max_epochs, factor, iterations", [
    (1, 3, 2), (2, 3, 1), (3, 3, 1), (4, 3, 1), (10, 3, 1), (2, 2, 1), (9, 3, 1), (27, 3, 1)])
def test_hyperband_plan_is_keras_tuners_schedule(lesson, tmp_path, max_epochs, factor, iterations):
    """The notebook's schedule against KerasTuner's own HyperbandOracle, trial by trial.

    No training: each trial reports a random score; brackets, rounds, epochs and their total.
    """
    oracle = keras_tuner.oracles.HyperbandOracle(
        objective=keras_tuner.Objective("score", "max"), max_epochs=max_epochs, factor=factor,
        hyperband_iterations=iterations, seed=1)
    hp = keras_tuner.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    oracle.update_space(hp)
    oracle._set_project_dir(str(tmp_path), "plan")
    ran = []
    while (trial := oracle.create_trial("tuner0")).status != "STOPPED":
        values = trial.hyperparameters.values
        ran.append((values["tuner/bracket"], values["tuner/round"], values["tuner/epochs"],
                    values["tuner/epochs"] - values["tuner/initial_epoch"]))
        oracle.update_trial(trial.trial_id, {"score": values["x"]})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    plan = lesson.hyperband_plan(max_epochs, factor)
    expected = [(row.bracket, row.round, row.epochs, row._4)  # _4: "new epochs"
                for row in plan.itertuples(index=False) for _ in range(row.trials)] * iterations
    assert ran == expected
    assert sum(new for *_, new in ran) == iterations * plan["epochs spent"].sum()
