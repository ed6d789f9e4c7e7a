"""Lesson 4's own code (its ``definition`` cells) agrees with xraykit.optimizers.

The notebook builds the optimizers and schedules with plain ``keras.optimizers``, writes momentum
and Adam in NumPy, derives momentum's effective step and Adam's bias correction, writes the
learning-rate range test as a ``keras.callbacks.Callback`` and the training loop of its
comparisons; ``xraykit.optimizers`` (``make_optimizer``, ``make_schedule``,
``optimizer_trajectory``, ``lr_range_test``) is what the rest of the course calls. These tests
run the notebook's definitions against those helpers, on the real PneumoniaMNIST when
../shared/data is there.
"""

import math
import types

import keras
import numpy as np
import pytest

from tests.lesson_code import lesson_definitions
from xraykit import optimizers
from xraykit.models import build_model

LESSON = "04"


@pytest.fixture(scope="module")
def lesson():
    return lesson_definitions(LESSON)


def test_course_optimizers_are_make_optimizer(lesson):
    ours = lesson.course_optimizers()
    assert set(ours) == {"sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "lion"}
    for name, optimizer in ours.items():
        lr = optimizer.get_config()["learning_rate"]
        assert lesson.same_optimizer(optimizer, optimizers.make_optimizer(name, learning_rate=lr))
    # The comparison can fail: another rate, momentum or class is not "the same optimizer".
    assert not lesson.same_optimizer(ours["momentum"], optimizers.make_optimizer("momentum", 0.02))
    assert not lesson.same_optimizer(ours["momentum"], ours["nesterov"])
    assert not lesson.same_optimizer(ours["adam"], optimizers.make_optimizer("adamw", 1e-3))


@pytest.mark.parametrize("surface, start", [("ill_conditioned", None),
                                            ("ill_conditioned", (3.0, -1.5))])
def test_numpy_update_rules_follow_keras(lesson, surface, start):
    start = start or optimizers.TOY_SURFACES[surface]["start"]
    rules = ((lesson.momentum_path, "momentum", 0.01), (lesson.adam_path, "adam", 0.1))
    for rule, name, lr in rules:
        ours = rule(lesson.bowl_gradient, start, lr, steps=40)
        keras_path = optimizers.optimizer_trajectory(name, surface, start=start, steps=40,
                                                     learning_rate=lr)
        np.testing.assert_allclose(ours, keras_path, rtol=1e-3, atol=1e-4)
    # Another momentum gives another path: the check is not vacuous.
    other = lesson.momentum_path(lesson.bowl_gradient, start, 0.01, momentum=0.5, steps=40)
    assert not np.allclose(other, optimizers.optimizer_trajectory(
        "momentum", surface, start=start, steps=40, learning_rate=0.01), atol=1e-2)


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9, 0.99])
def test_momentum_is_a_leaky_average_with_effective_step(lesson, momentum):
    lr, steps = 0.01, 40
    # Any gradients: the velocity is -lr * sum_k momentum**k * g_(t-k).
    gradients = np.random.default_rng(0).normal(size=(steps, 3))
    v = lesson.momentum_velocities(gradients, lr, momentum)
    for t in (1, 7, steps):
        expected = -lr * sum(momentum**k * gradients[t - 1 - k] for k in range(t))
        np.testing.assert_allclose(v[t - 1], expected, rtol=1e-10, atol=1e-15)
    # A constant gradient: the closed form, tending to lr / (1 - momentum).
    t = np.arange(1, 2001)
    slope = lesson.momentum_velocities(np.ones((len(t), 1)), lr, momentum)[:, 0]
    np.testing.assert_allclose(slope, lesson.momentum_step_on_a_slope(lr, momentum, t), rtol=1e-9)
    np.testing.assert_allclose(slope[-1], -lr / (1 - momentum), rtol=1e-6)


def test_keras_sgd_momentum_reaches_the_effective_step(lesson):
    c, lr, mu, steps = -2.0, 0.02, 0.9, 120
    w = keras.Variable(np.zeros(1, "float32"))
    sgd = keras.optimizers.SGD(learning_rate=lr, momentum=mu)
    positions = [0.0]
    for _ in range(steps):
        sgd.apply_gradients([(keras.ops.convert_to_tensor(np.array([c], "float32")), w)])
        positions.append(float(keras.ops.convert_to_numpy(w.value)[0]))
    moved = np.diff(positions)
    np.testing.assert_allclose(
        moved, c * lesson.momentum_step_on_a_slope(lr, mu, np.arange(1, steps + 1)), rtol=1e-4)
    np.testing.assert_allclose(moved[-1], -lr * c / (1 - mu), rtol=1e-4)
    # Without momentum the step stays lr * c: the effective step is momentum's doing.
    assert abs(moved[-1]) > 9 * lr * abs(c)


def test_adam_bias_correction_steps(lesson):
    beta_1, beta_2 = 0.9, 0.999
    t = np.arange(1, 101)
    corrected = lesson.adam_steps_on_a_slope(len(t), learning_rate=1.0, gradient=3.0)
    np.testing.assert_allclose(corrected, 1.0, rtol=1e-12)
    only_m = lesson.adam_steps_on_a_slope(len(t), correct_m=False)
    np.testing.assert_allclose(only_m, 1 - beta_1**t, rtol=1e-12)   # tiny first steps
    neither = lesson.adam_steps_on_a_slope(len(t), correct_m=False, correct_v=False)
    np.testing.assert_allclose(neither, (1 - beta_1**t) / np.sqrt(1 - beta_2**t), rtol=1e-12)
    assert neither[0] > 3 and neither.max() > 6 and neither[-1] > 1   # too large


def test_keras_adam_first_steps_are_the_corrected_ones(lesson):
    lr, beta_2, eps = 1e-3, 0.999, 1e-7
    gradients = np.array([1e-4, 0.02, -1.0, 50.0], "float32")
    w, adam = keras.Variable(np.zeros(4, "float32")), keras.optimizers.Adam(learning_rate=lr)
    before = np.zeros(4)
    for t in range(1, 6):
        adam.apply_gradients([(keras.ops.convert_to_tensor(gradients), w)])
        now = keras.ops.convert_to_numpy(w.value).astype(np.float64)
        # Keras adds eps to the uncorrected sqrt(v): the paper's eps divided by sqrt(1 - beta_2**t).
        expected = np.array([lesson.adam_steps_on_a_slope(
            t, learning_rate=lr, gradient=abs(float(g)), epsilon=eps / np.sqrt(1 - beta_2**t))[-1]
            for g in gradients])
        np.testing.assert_allclose(now - before, -np.sign(gradients) * expected, rtol=2e-3)
        before = now
    # The smallest gradient shows eps: its step is visibly below lr; the others are lr.
    assert abs(before[0]) < 0.99 * 5 * lr
    np.testing.assert_allclose(np.abs(before[1:]), 5 * lr, rtol=2e-3)


def test_weight_decay_is_decoupled(lesson):
    gradients = list(np.random.default_rng(1).normal(size=(6, 3)))
    start, wd = [0.5, -1.0, 2.0], 0.05
    adam = lesson.apply_steps(keras.optimizers.Adam(0.05, weight_decay=wd), gradients, start)
    adamw = lesson.apply_steps(keras.optimizers.AdamW(0.05, weight_decay=wd), gradients, start)
    l2 = lesson.apply_steps(keras.optimizers.Adam(0.05), gradients, start, l2=wd)
    plain = lesson.apply_steps(keras.optimizers.Adam(0.05), gradients, start)
    np.testing.assert_array_equal(adam, adamw)
    assert not np.allclose(adam, l2, atol=1e-4) and not np.allclose(adam, plain, atol=1e-4)
    # For plain SGD decoupled decay lr * wd * w and the L2 gradient wd * w coincide.
    sgd = lesson.apply_steps(keras.optimizers.SGD(0.05, weight_decay=wd), gradients, start)
    sgd_l2 = lesson.apply_steps(keras.optimizers.SGD(0.05), gradients, start, l2=wd)
    np.testing.assert_allclose(sgd, sgd_l2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("total, warmup", [(40, 4), (101, 10), (8, 1)])
def test_lesson_schedules_are_make_schedule(lesson, total, warmup):
    peak = 3e-3
    for name, ours in lesson.lesson_schedules(peak, total, warmup).items():
        theirs = optimizers.make_schedule(name, peak, total_steps=total, warmup_steps=warmup)
        assert type(ours) is type(theirs)
        in_optimizer = optimizers.make_optimizer("adam", peak, schedule=name, total_steps=total,
                                                 warmup_steps=warmup)
        expected = optimizers.learning_rates(ours, total)
        for other in (theirs, in_optimizer):
            np.testing.assert_allclose(optimizers.learning_rates(other, total), expected,
                                       rtol=1e-6, atol=1e-12)
    # A different warm-up is a different schedule.
    other = optimizers.make_schedule("cosine_warmup", peak, total_steps=total,
                                     warmup_steps=warmup + 1)
    assert not np.allclose(optimizers.learning_rates(other, total), optimizers.learning_rates(
        lesson.lesson_schedules(peak, total, warmup)["cosine_warmup"], total))


def _compiled_model(data, seed=0):
    keras.utils.set_random_seed(seed)
    model = build_model("small_cnn", data.image_shape, width=8, depth=2, batch_norm=False,
                        seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(), loss="binary_crossentropy")
    # As in the notebook: build the compiled loss first (under JAX the first fit would draw a
    # batch to build it, shifting the shuffled order of that one run).
    model.evaluate(data.x_val[:32], data.y_val[:32], verbose=0)
    return model


def test_lr_range_callback_is_lr_range_test(lesson, small_data):
    x, y, batch_size, steps = small_data.x_train, small_data.y_train, 32, 24
    model = _compiled_model(small_data)
    before = model.get_weights()
    sweep = lesson.LRRangeTest(min_lr=1e-5, max_lr=3.0, steps=steps)
    keras.utils.set_random_seed(7)
    model.fit(x, y, batch_size=batch_size, callbacks=[sweep], verbose=0,
              epochs=math.ceil(steps / math.ceil(len(x) / batch_size)))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    result = optimizers.lr_range_test(model, x, y, min_lr=1e-5, max_lr=3.0, steps=steps,
                                      batch_size=batch_size, seed=7)
    n = len(result.losses)
    assert n >= 10
    np.testing.assert_allclose(result.lrs, sweep.lrs[:n], rtol=1e-6)
    np.testing.assert_allclose(result.losses, sweep.losses[:n], rtol=1e-4, atol=1e-6)
    assert result.min_loss_lr == pytest.approx(sweep.lrs[int(np.nanargmin(sweep.losses[:n]))])
    # Another batch order gives other losses: the comparison can fail.
    shuffled = optimizers.lr_range_test(model, x, y, min_lr=1e-5, max_lr=3.0, steps=steps,
                                        batch_size=batch_size, seed=8)
    assert not np.allclose(shuffled.raw_losses[:5], result.raw_losses[:5], rtol=1e-4)


class _OneBatch(keras.utils.PyDataset):
    """The same batch, once per epoch."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, y

    def __len__(self):
        return 1

    def __getitem__(self, index):
        return self.x, self.y


def test_lr_range_test_takes_a_pydataset_a_generator_and_tf_data(lesson, small_data):
    x, y = small_data.x_train[:32], small_data.y_train[:32]
    model = _compiled_model(small_data, seed=1)
    before = model.get_weights()

    def batches():
        while True:
            yield x, y

    kwargs = dict(min_lr=1e-4, max_lr=1e-1, steps=12)
    from_pydataset = optimizers.lr_range_test(model, _OneBatch(x, y), **kwargs)
    from_generator = optimizers.lr_range_test(model, batches(), **kwargs)
    from_arrays = optimizers.lr_range_test(model, x, y, batch_size=32, **kwargs)
    assert len(from_pydataset.lrs) == len(from_generator.lrs) == 12
    np.testing.assert_allclose(from_pydataset.raw_losses, from_generator.raw_losses, rtol=1e-5)
    try:  # a batched tf.data pipeline, where TensorFlow is installed (any backend reads it)
        import tensorflow as tf
    except ImportError:
        pass
    else:
        pipeline = tf.data.Dataset.from_tensors((x, y)).repeat()
        from_tf_data = optimizers.lr_range_test(model, pipeline, **kwargs)
        np.testing.assert_allclose(from_tf_data.raw_losses, from_pydataset.raw_losses, rtol=1e-5)
    np.testing.assert_allclose(from_pydataset.raw_losses, from_arrays.raw_losses, rtol=1e-5)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # The notebook's callback, through fit on the same PyDataset, records the same losses.
    sweep = lesson.LRRangeTest(**kwargs)
    model.fit(_OneBatch(x, y), epochs=12, callbacks=[sweep], verbose=0)
    np.testing.assert_allclose(sweep.losses, from_pydataset.losses, rtol=1e-5)


def test_train_and_score_trains_the_lesson_network(lesson, small_data):
    small = types.SimpleNamespace(image_shape=small_data.image_shape,
                                  x_train=small_data.x_train[:128],
                                  y_train=small_data.y_train[:128],
                                  x_val=small_data.x_val[:64], y_val=small_data.y_val[:64])
    history, scores = lesson.train_and_score(keras.optimizers.Adam(1e-3), small, seed=0,
                                             epochs=1, batch_size=64, width=8)
    assert scores.shape == (64,) and np.all((scores >= 0) & (scores <= 1))
    assert {"loss", "auc", "val_loss", "val_auc"} <= set(history.history)
    assert len(history.history["loss"]) == 1 and np.isfinite(history.history["loss"][0])
