"""Optimizers, learning-rate schedules and the learning-rate range test (lesson 4).

* :func:`make_optimizer` builds any course optimizer by name (SGD, SGD with momentum or
  Nesterov, RMSprop, Adam, AdamW, Lion, ...) with an optional schedule from
  ``keras.optimizers.schedules`` (step, cosine, cosine with linear warmup).
* :class:`LRRangeFinder` (a ``keras.callbacks.Callback``) and :func:`lr_range_test` sweep the
  learning rate exponentially over a few hundred steps of ``model.fit`` (so any input ``fit``
  takes works: arrays, ``tf.data``, ``PyDataset``), record the (smoothed) loss, suggest a
  learning rate, and put the model and its optimizer back exactly as they were.
* :func:`optimizer_trajectory` runs a real Keras optimizer on a 2-D toy loss surface
  (:data:`TOY_SURFACES`), to draw how each optimizer moves.

Everything is Keras 3 and runs on the TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
from keras import ops

from xraykit.autodiff import value_and_grad

OPTIMIZERS = {
    "sgd": ("SGD", {"momentum": 0.0}),
    "momentum": ("SGD", {"momentum": 0.9}),
    "nesterov": ("SGD", {"momentum": 0.9, "nesterov": True}),
    "rmsprop": ("RMSprop", {}),
    "adam": ("Adam", {}),
    "adamw": ("AdamW", {}),
    "nadam": ("Nadam", {}),
    "adamax": ("Adamax", {}),
    "adagrad": ("Adagrad", {}),
    "adadelta": ("Adadelta", {}),
    "lion": ("Lion", {}),
    "lamb": ("Lamb", {}),
    "adafactor": ("Adafactor", {}),
    "ftrl": ("Ftrl", {}),
}
SCHEDULES = ("constant", "step", "cosine", "cosine_warmup", "exponential")


# --------------------------------------------------------------------------------------------
# Optimizers and schedules
# --------------------------------------------------------------------------------------------
def make_schedule(schedule, learning_rate: float = 1e-3, total_steps: int | None = None,
                  warmup_steps: int | None = None, step_factor: float = 0.1,
                  step_boundaries=(0.5, 0.75), min_fraction: float = 0.0):
    """Builds a learning-rate schedule from ``keras.optimizers.schedules``.

    Args:
        schedule: ``None``/``"constant"`` (returns the float), ``"step"`` (multiply by
            ``step_factor`` at each fraction of ``total_steps`` in ``step_boundaries``),
            ``"cosine"`` (cosine decay to ``min_fraction * learning_rate``), ``"cosine_warmup"``
            (linear warmup from 0 over ``warmup_steps``, then cosine decay), ``"exponential"``
            (smooth decay by ``step_factor`` over ``total_steps``), or a
            ``LearningRateSchedule`` (returned as is).
        learning_rate: Peak (initial) learning rate.
        total_steps: Number of optimizer steps of the whole run (``epochs * steps_per_epoch``);
            required by every schedule but ``"constant"``.
        warmup_steps: Warmup length for ``"cosine_warmup"``; default 10 % of ``total_steps``.
        step_factor: Decay factor of ``"step"`` and ``"exponential"``.
        step_boundaries: Fractions of ``total_steps`` where ``"step"`` decays.
        min_fraction: Final learning rate of the cosine schedules, as a fraction of the peak.

    Returns:
        A float (constant) or a ``keras.optimizers.schedules.LearningRateSchedule``.

    Raises:
        ValueError: If the schedule is unknown or ``total_steps`` is missing.
    """
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return schedule
    if schedule is None or schedule == "constant":
        return float(learning_rate)
    if schedule not in SCHEDULES:
        raise ValueError(f"Unknown schedule {schedule!r}: use one of {', '.join(SCHEDULES)}, "
                         "None, or a keras.optimizers.schedules.LearningRateSchedule.")
    if not total_steps or total_steps < 1:
        raise ValueError(f"schedule={schedule!r} needs total_steps (epochs * steps per epoch); "
                         f"got {total_steps!r}.")
    total_steps = int(total_steps)
    lr = float(learning_rate)
    schedules = keras.optimizers.schedules
    if schedule == "step":
        boundaries = sorted({max(1, int(round(f * total_steps))) for f in step_boundaries})
        values = [lr * step_factor**i for i in range(len(boundaries) + 1)]
        return schedules.PiecewiseConstantDecay(boundaries, values)
    if schedule == "exponential":
        return schedules.ExponentialDecay(lr, decay_steps=total_steps, decay_rate=step_factor)
    if schedule == "cosine":
        return schedules.CosineDecay(lr, decay_steps=total_steps, alpha=min_fraction)
    warmup = int(warmup_steps) if warmup_steps is not None else max(1, total_steps // 10)
    if not 0 < warmup < total_steps:
        raise ValueError(f"warmup_steps must be between 1 and total_steps - 1 ({total_steps - 1}); "
                         f"got {warmup}.")
    # Keras 3: warmup goes linearly from initial_learning_rate to warmup_target over
    # warmup_steps, then cosine decay over decay_steps.
    return schedules.CosineDecay(0.0, decay_steps=total_steps - warmup, alpha=min_fraction,
                                 warmup_target=lr, warmup_steps=warmup)


def make_optimizer(name: str = "adam", learning_rate: float = 1e-3, schedule=None,
                   weight_decay: float | None = None, momentum: float | None = None,
                   nesterov: bool | None = None, total_steps: int | None = None,
                   warmup_steps: int | None = None, clipnorm: float | None = None, **kwargs):
    """Builds a Keras optimizer by name, with an optional learning-rate schedule.

    Args:
        name: One of ``sgd`` (plain), ``momentum`` (SGD, momentum 0.9), ``nesterov`` (SGD,
            Nesterov momentum 0.9), ``rmsprop``, ``adam``, ``adamw``, ``nadam``, ``adamax``,
            ``adagrad``, ``adadelta``, ``lion``, ``lamb``, ``adafactor``, ``ftrl``.
            A ``keras.optimizers.Optimizer`` is returned unchanged.
        learning_rate: (Peak) learning rate, or a ``LearningRateSchedule`` (then ``schedule``
            must be ``None``). Lion wants a rate ~3-10x smaller than Adam's.
        schedule: ``None``/``"constant"``, ``"step"``, ``"cosine"``, ``"cosine_warmup"``,
            ``"exponential"`` or a ``LearningRateSchedule`` (see :func:`make_schedule`).
        weight_decay: Decoupled weight decay (AdamW default 0.004 when ``None``; for other
            optimizers ``None`` = off).
        momentum: Overrides the momentum of the SGD variants (or RMSprop's momentum).
        nesterov: Overrides Nesterov for the SGD variants.
        total_steps: Steps of the whole run, for schedules.
        warmup_steps: Warmup steps for ``"cosine_warmup"``.
        clipnorm: Gradient clipping by norm, if given.
        **kwargs: Other optimizer arguments (e.g. ``beta_1``) or schedule options
            (``step_factor``, ``step_boundaries``, ``min_fraction``).

    Returns:
        A fresh ``keras.optimizers.Optimizer``.

    Raises:
        ValueError: If the name or the schedule is unknown or an argument does not apply.
    """
    if isinstance(name, keras.optimizers.Optimizer):
        return name
    if not isinstance(name, str) or name.strip().lower() not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}: use one of {', '.join(OPTIMIZERS)}.")
    if isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        if schedule not in (None, "constant"):
            raise ValueError("Give either a LearningRateSchedule as learning_rate or schedule=, "
                             "not both.")
        schedule = learning_rate
    elif not isinstance(learning_rate, (int, float)) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be a positive number or a LearningRateSchedule; "
                         f"got {learning_rate!r}.")
    key = name.strip().lower()
    class_name, defaults = OPTIMIZERS[key]
    schedule_kw = {k: kwargs.pop(k) for k in ("step_factor", "step_boundaries", "min_fraction")
                   if k in kwargs}
    args = dict(defaults)
    if momentum is not None:
        if class_name not in ("SGD", "RMSprop"):
            raise ValueError(f"momentum does not apply to {name!r} (only SGD variants and "
                             "RMSprop).")
        args["momentum"] = float(momentum)
    if nesterov is not None:
        if class_name != "SGD":
            raise ValueError(f"nesterov does not apply to {name!r}; use 'nesterov' or 'sgd'.")
        args["nesterov"] = bool(nesterov)
    if weight_decay is not None:
        args["weight_decay"] = float(weight_decay)
    if clipnorm is not None:
        args["clipnorm"] = float(clipnorm)
    args.update(kwargs)
    lr = make_schedule(schedule, learning_rate, total_steps=total_steps,
                       warmup_steps=warmup_steps, **schedule_kw)
    return getattr(keras.optimizers, class_name)(learning_rate=lr, **args)


def schedule_of(optimizer):
    """The ``LearningRateSchedule`` an optimizer was built with, or ``None`` for a constant rate.

    Read from the optimizer's public config (``optimizer.learning_rate`` gives only the current
    value); a ``LossScaleOptimizer`` (mixed precision) is looked through.

    Args:
        optimizer: A Keras optimizer.

    Returns:
        The schedule, or ``None``.
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    config = inner.get_config().get("learning_rate")
    if isinstance(config, keras.optimizers.schedules.LearningRateSchedule):
        return config
    if isinstance(config, dict):
        return keras.optimizers.schedules.deserialize(config)
    return None


def learning_rates(optimizer_or_schedule, steps: int) -> np.ndarray:
    """The learning rate at each step ``0 .. steps - 1`` (for plotting schedules).

    Args:
        optimizer_or_schedule: An optimizer, a ``LearningRateSchedule`` or a float.
        steps: Number of steps.

    Returns:
        Float array of length ``steps``.
    """
    lr = optimizer_or_schedule
    if isinstance(lr, keras.optimizers.Optimizer):
        lr = schedule_of(lr) or lr.learning_rate
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
        try:  # Keras' built-in schedules are element-wise: one vectorised call is much faster
            values = ops.convert_to_numpy(lr(ops.arange(steps, dtype="float32")))
            values = np.asarray(values, np.float64)
            if values.shape == (steps,):
                return values
        except Exception:  # a schedule that only takes a scalar step (e.g. uses ops.cond)
            pass
        if keras.backend.backend() == "jax":  # eager JAX control flow is slow: compile once
            import jax

            steps_array = jax.numpy.arange(steps, dtype="float32")
            return np.asarray(jax.jit(jax.vmap(lr))(steps_array), np.float64)
        return np.array([float(ops.convert_to_numpy(lr(step))) for step in range(steps)])
    return np.full(steps, float(ops.convert_to_numpy(lr)))


# --------------------------------------------------------------------------------------------
# Learning-rate range test
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class LRRangeResult:
    """Result of :func:`lr_range_test`.

    Attributes:
        lrs: Learning rate of each step that ran.
        losses: Smoothed (bias-corrected exponential moving average) training loss.
        raw_losses: Loss of each batch.
        suggested_lr: The suggestion (see ``method``).
        min_loss_lr: Learning rate at the lowest smoothed loss.
        steepest_lr: Learning rate where the smoothed loss falls fastest (before its minimum).
        method: How ``suggested_lr`` was chosen.
        stopped_early: Whether the sweep stopped because the loss diverged.
    """

    lrs: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    suggested_lr: float
    min_loss_lr: float
    steepest_lr: float
    method: str
    stopped_early: bool

    def __getitem__(self, key):  # also usable as a dict: result["suggested_lr"]
        return getattr(self, key)

    def as_dict(self) -> dict:
        """Returns the fields as a dict."""
        return dataclasses.asdict(self)


def _check_method(method: str) -> None:
    if method not in ("min/10", "steepest"):
        raise ValueError(f"method must be 'min/10' or 'steepest'; got {method!r}.")


def _suggest(lrs, smoothed):
    best = int(np.nanargmin(smoothed))
    min_loss_lr = float(lrs[best])
    steepest_lr = min_loss_lr / 10.0
    if best >= 3:
        log_lr = np.log10(lrs[: best + 1])
        slope = np.gradient(smoothed[: best + 1], log_lr)
        steepest_lr = float(lrs[int(np.nanargmin(slope[1:])) + 1])
    return min_loss_lr, steepest_lr


class LRRangeFinder(keras.callbacks.Callback):
    """The learning-rate range test as a callback: works with any input ``model.fit`` accepts.

    Before each batch it sets the optimizer's learning rate to ``min_lr * factor**step``
    (exponential from ``min_lr`` to ``max_lr`` over ``steps`` batches) and resets the metrics, so
    ``logs["loss"]`` after the batch is that batch's loss (Keras otherwise reports the running
    mean of the epoch). It keeps a bias-corrected exponential moving average of the loss, stops
    training after ``steps`` batches or when the smoothed loss exceeds ``diverge_factor`` times
    its minimum (or is not finite), and at the end puts the model's variables, the optimizer's
    state and its learning rate back as they were.

    Attributes (after ``fit``): ``lrs``, ``losses`` (smoothed), ``raw_losses`` (lists) and
    ``stopped_early``.

    Example:
        ```python
        finder = LRRangeFinder(min_lr=1e-6, max_lr=1.0, steps=200)
        model.fit(train_dataset, epochs=100, callbacks=[finder], verbose=0)  # stops itself
        finder.result().suggested_lr
        ```
    """

    def __init__(self, min_lr: float = 1e-6, max_lr: float = 1.0, steps: int = 100,
                 smoothing: float = 0.9, diverge_factor: float = 4.0, callback=None):
        super().__init__()
        if not 0 < min_lr < max_lr:
            raise ValueError(f"Need 0 < min_lr < max_lr; got {min_lr} and {max_lr}.")
        if steps < 5:
            raise ValueError(f"steps must be at least 5; got {steps}.")
        self.min_lr, self.max_lr, self.steps = float(min_lr), float(max_lr), int(steps)
        self.factor = (self.max_lr / self.min_lr) ** (1.0 / (self.steps - 1))
        self.smoothing, self.diverge_factor, self.callback = smoothing, diverge_factor, callback
        self._saved = None

    def on_train_begin(self, logs=None):
        """Saves the model's and optimizer's state; starts the sweep."""
        optimizer = self.model.optimizer
        if schedule_of(optimizer) is not None:
            raise ValueError("The learning-rate range test needs an optimizer with a constant "
                             "learning rate: compile with make_optimizer(name) (no schedule) for "
                             "the test, then build the schedule around the suggested rate.")
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self._saved = ([ops.convert_to_numpy(v.value) for v in self.model.variables],
                       [ops.convert_to_numpy(v.value) for v in optimizer.variables],
                       float(ops.convert_to_numpy(optimizer.learning_rate)))
        self.lrs, self.losses, self.raw_losses = [], [], []
        self.stopped_early, self._average, self._best = False, 0.0, np.inf

    def on_train_batch_begin(self, batch, logs=None):
        """Sets this step's learning rate and resets the metrics."""
        self.model.reset_metrics()  # logs["loss"] becomes this batch's loss, not the epoch mean
        self.model.optimizer.learning_rate = self.min_lr * self.factor ** len(self.lrs)

    def on_train_batch_end(self, batch, logs=None):
        """Records the batch loss, smooths it, stops on divergence or after ``steps``."""
        step, loss = len(self.lrs), float(logs["loss"])
        self.lrs.append(self.min_lr * self.factor**step)
        self.raw_losses.append(loss)
        if not math.isfinite(loss):
            self.stopped_early = self.model.stop_training = True
            return
        self._average = self.smoothing * self._average + (1.0 - self.smoothing) * loss
        value = self._average / (1.0 - self.smoothing ** (step + 1)) if self.smoothing else loss
        self.losses.append(value)
        self._best = min(self._best, value)
        if self.callback is not None:
            self.callback(step, self.lrs[-1], value)
        if step > 5 and value > self.diverge_factor * self._best:
            self.stopped_early = self.model.stop_training = True
        elif step + 1 >= self.steps:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        """Restores the model and the optimizer."""
        self.restore()

    def restore(self):
        """Puts the model's and the optimizer's variables and learning rate back (once)."""
        if self._saved is None:
            return
        model_state, optimizer_state, learning_rate = self._saved
        for variable, value in zip(self.model.variables, model_state):
            variable.assign(value)
        for variable, value in zip(self.model.optimizer.variables, optimizer_state):
            variable.assign(value)
        self.model.optimizer.learning_rate = learning_rate
        self.model.reset_metrics()
        self._saved = None

    def result(self, method: str = "min/10") -> LRRangeResult:
        """The sweep as an :class:`LRRangeResult` with the suggested learning rate.

        Args:
            method: ``"min/10"`` (a decade below the lowest smoothed loss) or ``"steepest"``.

        Raises:
            ValueError: If the method is unknown or no finite loss was recorded.
        """
        _check_method(method)
        lrs = np.asarray(self.lrs[: len(self.losses)], np.float64)
        smoothed = np.asarray(self.losses, np.float64)
        if len(smoothed) == 0:
            raise ValueError(f"The loss was not finite even at min_lr={self.min_lr}: check the "
                             "data and labels.")
        min_loss_lr, steepest_lr = _suggest(lrs, smoothed)
        suggested = steepest_lr if method == "steepest" else min_loss_lr / 10.0
        return LRRangeResult(lrs=lrs, losses=smoothed,
                             raw_losses=np.asarray(self.raw_losses, np.float64),
                             suggested_lr=float(suggested), min_loss_lr=min_loss_lr,
                             steepest_lr=float(steepest_lr), method=method,
                             stopped_early=bool(self.stopped_early))


def _fit_input(data, y, batch_size):
    """``(x, y, fit keyword arguments, batches per epoch or None)`` for any input of ``fit``."""
    if hasattr(data, "x_train") and hasattr(data, "y_train"):
        data, y = data.x_train, data.y_train
    elif y is None and isinstance(data, (tuple, list)) and len(data) == 2:
        data, y = data
    if y is not None:  # arrays: fit batches and shuffles them
        x, y = np.asarray(data), np.asarray(y)
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"x and y must be non-empty and of equal length; got {len(x)} and "
                             f"{len(y)}.")
        batch_size = min(int(batch_size), len(x))
        return x, y, {"batch_size": batch_size, "shuffle": True}, math.ceil(len(x) / batch_size)
    if isinstance(data, np.ndarray):
        raise ValueError("Got images without labels: pass y=, an (x, y) tuple, an XRayDataset, "
                         "or a dataset/PyDataset/generator that yields (x, y) batches.")
    batches = None
    if isinstance(data, keras.utils.PyDataset):
        batches = data.num_batches
    elif hasattr(data, "cardinality"):  # tf.data.Dataset: -1 infinite, -2 unknown
        count = int(data.cardinality())
        batches = count if count > 0 else None
    # A PyDataset may shuffle its batches (fit's default); a generator or a tf.data pipeline
    # comes in its own order, and Keras warns when asked to shuffle it.
    fit_args = {} if isinstance(data, keras.utils.PyDataset) else {"shuffle": False}
    return data, None, fit_args, batches


def lr_range_test(model, data, y=None, min_lr: float = 1e-6, max_lr: float = 1.0,
                  steps: int = 100, batch_size: int = 64, smoothing: float = 0.9,
                  diverge_factor: float = 4.0, method: str = "min/10", seed: int | None = 0,
                  verbose: bool = False, callback=None) -> LRRangeResult:
    """The learning-rate range test (Smith 2017; fastai's "LR finder"), through ``model.fit``.

    Trains the compiled model for ``steps`` mini-batches while the learning rate grows
    exponentially from ``min_lr`` to ``max_lr``, and records the loss. The loss stays flat
    while the rate is too small, falls when it is useful and blows up when it is too large.
    The sweep is an :class:`LRRangeFinder` callback passed to ``model.fit``, so ``data`` can be
    anything ``fit`` takes; afterwards the model's variables and its optimizer's state
    (moments, iteration count, learning rate) are restored exactly.

    Args:
        model: A compiled Keras model whose optimizer has a constant learning rate (the test
            sets it at every step).
        data: An ``XRayDataset`` (its training split is used), an ``(x, y)`` tuple, images
            with ``y`` given separately, or a batched ``tf.data.Dataset``, a
            ``keras.utils.PyDataset`` or a generator yielding ``(x, y)`` batches (a finite input
            is repeated for as many epochs as ``steps`` needs; a generator is read once).
        y: Labels, when ``data`` is an array of images.
        min_lr: First learning rate.
        max_lr: Last learning rate.
        steps: Number of mini-batches (a few hundred for a real test).
        batch_size: Mini-batch size for arrays (use the one you will train with); a dataset
            keeps its own batches.
        smoothing: Factor of the exponential moving average of the loss (0 = none).
        diverge_factor: Stop when the smoothed loss exceeds this times its minimum.
        method: ``"min/10"`` (a decade below the lowest loss, the robust default) or
            ``"steepest"`` (where the loss falls fastest).
        seed: If not ``None``, ``keras.utils.set_random_seed(seed)`` is called first, so the
            batch order (and dropout) repeat from run to run.
        verbose: Show Keras' progress bar.
        callback: Optional function ``callback(step, lr, smoothed_loss)`` called after every
            step (to log or plot the sweep as it runs).

    Returns:
        An :class:`LRRangeResult` (also indexable like a dict).

    Raises:
        ValueError: If the model is not compiled, its learning rate is a schedule, or the
            arguments are inconsistent.
    """
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", True):
        raise ValueError("lr_range_test needs a compiled model: call compile_model(...) or "
                         "model.compile(optimizer=..., loss=...) first.")
    # A scheduled optimizer is refused by LRRangeFinder.on_train_begin, before any step; the
    # method is checked here so that a typo does not cost a whole sweep.
    _check_method(method)
    finder = LRRangeFinder(min_lr, max_lr, steps, smoothing, diverge_factor, callback)
    x, labels, fit_args, batches = _fit_input(data, y, batch_size)
    epochs = math.ceil(steps / batches) if batches else 1
    if seed is not None:
        keras.utils.set_random_seed(seed)
    try:
        model.fit(x, labels, epochs=epochs, callbacks=[finder], verbose=int(bool(verbose)),
                  **fit_args)
    finally:
        finder.restore()  # also after an error or an interrupt
    return finder.result(method)


# --------------------------------------------------------------------------------------------
# 2-D toy loss surfaces
# --------------------------------------------------------------------------------------------
def _ill_conditioned(w):
    return 0.5 * (w[0] ** 2 + 25.0 * w[1] ** 2)


def _rosenbrock(w):
    return (1.0 - w[0]) ** 2 + 100.0 * (w[1] - w[0] ** 2) ** 2


def _saddle(w):
    return w[0] ** 2 - w[1] ** 2 + 0.25 * w[1] ** 4


def _noisy_bowl(w):
    return 0.5 * (w[0] ** 2 + 4.0 * w[1] ** 2) + 0.3 * ops.sin(4.0 * w[0]) * ops.sin(4.0 * w[1])


TOY_SURFACES = {
    "ill_conditioned": {"fn": _ill_conditioned, "start": (-4.0, 1.2), "minimum": (0.0, 0.0),
                        "xlim": (-5.0, 5.0), "ylim": (-2.0, 2.0), "learning_rate": 0.035},
    "rosenbrock": {"fn": _rosenbrock, "start": (-1.5, 2.0), "minimum": (1.0, 1.0),
                   "xlim": (-2.0, 2.0), "ylim": (-1.0, 3.0), "learning_rate": 1e-3},
    "saddle": {"fn": _saddle, "start": (-1.5, 1e-3), "minimum": (0.0, np.sqrt(2.0)),
               "xlim": (-2.0, 2.0), "ylim": (-2.0, 2.0), "learning_rate": 0.05},
    "bumpy_bowl": {"fn": _noisy_bowl, "start": (-2.5, 1.8), "minimum": (0.0, 0.0),
                   "xlim": (-3.0, 3.0), "ylim": (-2.0, 2.0), "learning_rate": 0.05},
}
"""Toy 2-D loss surfaces written with ``keras.ops``: ``fn(w)`` for ``w`` of shape ``(2,)``,
with a suggested start, minimum, plot window and SGD learning rate."""


def surface_grid(loss_fn, xlim, ylim, n: int = 120):
    """Evaluates a 2-D loss on a grid, for contour plots.

    Args:
        loss_fn: A :data:`TOY_SURFACES` name or a function of ``w`` (shape ``(2,)``) written
            with ``keras.ops``.
        xlim: ``(min, max)`` of the first coordinate.
        ylim: ``(min, max)`` of the second coordinate.
        n: Grid points per axis.

    Returns:
        ``(X, Y, Z)`` arrays of shape ``(n, n)``.
    """
    fn = TOY_SURFACES[loss_fn]["fn"] if isinstance(loss_fn, str) else loss_fn
    xs, ys = np.meshgrid(np.linspace(*xlim, n), np.linspace(*ylim, n))
    grid = np.stack([xs.ravel(), ys.ravel()]).astype(np.float32)
    z = ops.convert_to_numpy(fn(ops.convert_to_tensor(grid)))
    return xs, ys, np.asarray(z, np.float64).reshape(n, n)


def optimizer_trajectory(name, loss_fn, start=None, steps: int = 100,
                         learning_rate: float | None = None, **kwargs) -> np.ndarray:
    """Runs a real Keras optimizer on a 2-D loss and returns the path of the parameters.

    The parameters are a ``keras.Variable`` of shape ``(2,)``; each step computes the exact
    gradient with the backend's autodiff and calls ``optimizer.apply_gradients``.

    Args:
        name: An optimizer name for :func:`make_optimizer`, or an optimizer instance.
        loss_fn: A :data:`TOY_SURFACES` name (its start and learning rate become defaults) or
            a function of ``w`` (shape ``(2,)``) written with ``keras.ops``.
        start: Starting point ``(w0, w1)``.
        steps: Number of optimizer steps.
        learning_rate: Learning rate (default: the surface's suggestion, else 0.01).
        **kwargs: More :func:`make_optimizer` arguments (``momentum=``, ``schedule=`` ...).

    Returns:
        Float array ``(steps + 1, 2)``: the start and the point after each step (the path
        stops early, repeating the last finite point, if it diverges).

    Raises:
        ValueError: If no start is given for a custom function.
    """
    surface = TOY_SURFACES.get(loss_fn, {}) if isinstance(loss_fn, str) else {}
    if isinstance(loss_fn, str) and not surface:
        raise ValueError(f"Unknown toy surface {loss_fn!r}: use one of {', '.join(TOY_SURFACES)}.")
    fn = surface.get("fn", loss_fn)
    start = start if start is not None else surface.get("start")
    if start is None:
        raise ValueError("optimizer_trajectory needs start=(w0, w1) for a custom loss function.")
    lr = learning_rate if learning_rate is not None else surface.get("learning_rate", 0.01)
    if "schedule" in kwargs and "total_steps" not in kwargs:
        kwargs["total_steps"] = steps
    optimizer = make_optimizer(name, learning_rate=lr, **kwargs)
    weights = keras.Variable(np.asarray(start, np.float32), dtype="float32", name="w")
    path = [np.asarray(start, np.float64)]
    for _ in range(steps):
        point = ops.convert_to_numpy(weights.value).astype(np.float32)
        _, grad = value_and_grad(fn, point)
        if not np.all(np.isfinite(grad)):
            break
        optimizer.apply_gradients([(ops.convert_to_tensor(grad.astype(np.float32)), weights)])
        new = ops.convert_to_numpy(weights.value).astype(np.float64)
        if not np.all(np.isfinite(new)) or np.abs(new).max() > 1e6:
            break
        path.append(new)
    path += [path[-1]] * (steps + 1 - len(path))
    return np.asarray(path)
