"""Optimizers of lesson 4: factory, schedules, LR range test and toy trajectories."""

import keras
import numpy as np
import pytest

from xraykit import optimizers


@pytest.mark.parametrize("name,cls,extra", [
    ("sgd", keras.optimizers.SGD, {"momentum": 0.0, "nesterov": False}),
    ("momentum", keras.optimizers.SGD, {"momentum": 0.9, "nesterov": False}),
    ("nesterov", keras.optimizers.SGD, {"momentum": 0.9, "nesterov": True}),
    ("rmsprop", keras.optimizers.RMSprop, {}),
    ("adam", keras.optimizers.Adam, {}),
    ("adamw", keras.optimizers.AdamW, {"weight_decay": 0.01}),
    ("lion", keras.optimizers.Lion, {}),
])
def test_make_optimizer_names(name, cls, extra):
    opt = optimizers.make_optimizer(name, learning_rate=0.02,
                                    weight_decay=0.01 if name == "adamw" else None)
    # Under torch Keras returns backend subclasses (TorchAdam is an Adam); the name must match.
    assert isinstance(opt, cls) and type(opt).__name__.endswith(cls.__name__)
    config = opt.get_config()
    assert config["learning_rate"] == pytest.approx(0.02)
    for key, value in extra.items():
        assert config[key] == pytest.approx(value)


def test_make_optimizer_errors():
    with pytest.raises(ValueError, match="Unknown optimizer"):
        optimizers.make_optimizer("adamm")
    with pytest.raises(ValueError, match="total_steps"):
        optimizers.make_optimizer("adam", schedule="cosine")
    with pytest.raises(ValueError, match="Unknown schedule"):
        optimizers.make_optimizer("adam", schedule="linear", total_steps=10)
    with pytest.raises(ValueError, match="momentum does not apply"):
        optimizers.make_optimizer("adam", momentum=0.9)


def test_schedules_values():
    lr, total = 0.1, 100
    step = optimizers.learning_rates(
        optimizers.make_optimizer("sgd", lr, "step", total_steps=total), total)
    assert step[0] == pytest.approx(lr) and step[60] == pytest.approx(lr / 10)
    assert step[99] == pytest.approx(lr / 100)
    cos = optimizers.learning_rates(optimizers.make_schedule("cosine", lr, total), total + 1)
    assert cos[0] == pytest.approx(lr) and cos[50] == pytest.approx(lr / 2, rel=1e-4)
    assert cos[100] == pytest.approx(0.0, abs=1e-7)
    warm = optimizers.learning_rates(
        optimizers.make_optimizer("adam", lr, "cosine_warmup", total_steps=total,
                                  warmup_steps=10), total)
    assert warm[0] == pytest.approx(0.0) and warm[5] == pytest.approx(lr / 2, rel=1e-4)
    assert warm[10] == pytest.approx(lr, rel=1e-4) and np.all(np.diff(warm[10:]) <= 1e-9)
    const = optimizers.learning_rates(optimizers.make_optimizer("adam", lr), 5)
    np.testing.assert_allclose(const, lr, rtol=1e-6)
    # The schedule is read through a LossScaleOptimizer (mixed precision) too.
    scaled = keras.optimizers.LossScaleOptimizer(
        optimizers.make_optimizer("sgd", lr, "step", total_steps=total))
    assert isinstance(optimizers.schedule_of(scaled),
                      keras.optimizers.schedules.LearningRateSchedule)
    np.testing.assert_allclose(optimizers.learning_rates(scaled, total), step, rtol=1e-6)
    assert optimizers.schedule_of(optimizers.make_optimizer("adam", lr)) is None


def _small_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dropout(0.1, seed=seed),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    return model


def test_lr_range_test_restores_model_and_optimizer(small_data):
    model = _small_model()
    model.compile(optimizer=optimizers.make_optimizer("adam"), loss="binary_crossentropy")
    model.fit(small_data.x_train[:64], small_data.y_train[:64], epochs=1, verbose=0)
    weights = [w.copy() for w in model.get_weights()]
    opt_state = [keras.ops.convert_to_numpy(v.value).copy() for v in model.optimizer.variables]
    seen = []
    result = optimizers.lr_range_test(model, small_data, min_lr=1e-5, max_lr=10.0,
                                      steps=30, batch_size=32,
                                      callback=lambda *row: seen.append(row))
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    for before, variable in zip(opt_state, model.optimizer.variables):
        np.testing.assert_array_equal(before, keras.ops.convert_to_numpy(variable.value))
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-3)
    # The sweep is exponential, the smoothed losses finite, the suggestion inside the range.
    ratios = result.lrs[1:] / result.lrs[:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-6)
    assert result.lrs[0] == pytest.approx(1e-5)
    assert len(result.losses) == len(result.lrs) and np.all(np.isfinite(result.losses))
    assert result.min_loss_lr == result.lrs[np.argmin(result.losses)]
    assert result["suggested_lr"] == pytest.approx(result.min_loss_lr / 10)
    # The callback saw every step that produced a smoothed loss, with its rate and loss.
    np.testing.assert_allclose([row[1] for row in seen], result.lrs)
    np.testing.assert_allclose([row[2] for row in seen], result.losses)
    # A max_lr of 10 with Adam makes the loss blow up on this model, or at least rise.
    assert result.stopped_early or result.losses[-1] > result.losses.min()


def test_lr_range_test_leaves_unbuilt_optimizer_equivalent_to_fresh(small_data):
    model = _small_model()
    model.compile(optimizer=optimizers.make_optimizer("momentum", 0.01), loss="binary_crossentropy")
    weights = [w.copy() for w in model.get_weights()]
    x, y = small_data.x_train[:96], small_data.y_train[:96]
    optimizers.lr_range_test(model, x, y, steps=8, batch_size=32)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0
    # The model still trains normally afterwards.
    history = model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_lr_range_test_refuses_schedules_and_uncompiled_models():
    model = _small_model()
    with pytest.raises(ValueError, match="compiled"):
        optimizers.lr_range_test(model, (np.zeros((4, 28, 28, 1)), np.zeros((4, 1))))
    model.compile(optimizer=optimizers.make_optimizer("adam", schedule="cosine", total_steps=10),
                  loss="binary_crossentropy")
    with pytest.raises(ValueError, match="constant learning rate"):
        optimizers.lr_range_test(model, (np.zeros((4, 28, 28, 1)), np.zeros((4, 1))))


def test_optimizer_trajectory_follows_the_update_rules():
    # Plain SGD on f = 0.5 * (w0^2 + 25 w1^2): w <- w - lr * (w0, 25 w1), i.e. geometric decay.
    lr, start = 0.02, np.array([-4.0, 1.0])
    path = optimizers.optimizer_trajectory("sgd", "ill_conditioned", start=start, steps=10,
                                           learning_rate=lr)
    assert path.shape == (11, 2)
    expected = start * np.array([(1 - lr) ** 10, (1 - 25 * lr) ** 10])
    np.testing.assert_allclose(path[-1], expected, rtol=1e-4, atol=1e-6)
    # Momentum gets much closer to the minimum in the same number of steps.
    sgd = optimizers.optimizer_trajectory("sgd", "ill_conditioned", steps=60)
    mom = optimizers.optimizer_trajectory("momentum", "ill_conditioned", steps=60)
    assert np.linalg.norm(mom[-1]) < 0.5 * np.linalg.norm(sgd[-1])
    # Adam's first step moves every coordinate by about the learning rate.
    adam = optimizers.optimizer_trajectory("adam", lambda w: 0.5 * (w[0] ** 2 + 25 * w[1] ** 2),
                                           start=(-4.0, 1.0), steps=1, learning_rate=0.1)
    np.testing.assert_allclose(np.abs(adam[1] - adam[0]), [0.1, 0.1], rtol=1e-3)
    xs, ys, zs = optimizers.surface_grid("rosenbrock", (-2, 2), (-1, 3), n=20)
    assert zs.shape == (20, 20) and zs.min() >= 0
