"""The search space of a KerasTuner search and the hypermodel that draws trials from it.

A :class:`SearchSpace` says what a search varies: the architecture (model name, width, depth),
dropout, L2, the optimizer and its learning rate, the augmentation preset, the loss and the batch
size; :data:`SEARCH_SPACES` names the course's. :class:`XRayHyperModel` is the
``keras_tuner.HyperModel`` that draws a trial from a space and builds it through
:func:`xraykit.models.build_model` and :func:`xraykit.training.compile_model`, so a trial is
exactly the model a lesson would train by hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import keras
import keras_tuner
import numpy as np

from xraykit import models, training
from xraykit.losses import class_weight_for_fit, get_loss
from xraykit.tasks import check_task

__all__ = ["SEARCH_SPACES", "SearchSpace", "XRayHyperModel", "tiny_hypermodel"]

#: Old keyword names of the space's entries (``XRayHyperModel(models=..., optimizers=...)``).
_OLD_NAMES = {"models": "model", "optimizers": "optimizer", "losses": "loss"}
#: Numeric entries searched over a ``(low, high)`` range, and their sampling.
_RANGES = {"dropout": "linear", "l2": "log", "learning_rate": "log", "weight_decay": "log"}
#: Categorical entries, in the order they are declared (the tuners sample in this order).
_CHOICES = ("model", "width", "depth", "batch_norm", "augmentation", "optimizer", "loss",
            "batch_size")


def _is_scalar(value) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _choice(hp, name: str, value):
    """Declares a categorical entry: fixed for a scalar or a single choice."""
    if _is_scalar(value):
        return hp.Fixed(name, value)
    values = list(value)
    return hp.Fixed(name, values[0]) if len(values) == 1 else hp.Choice(name, values)


def _range(hp, name: str, value, sampling: str, step: float | None = None):
    """Declares a numeric entry: fixed for a number or an empty range."""
    if _is_scalar(value):
        return hp.Fixed(name, float(value))
    low, high = float(value[0]), float(value[1])
    if low == high:
        return hp.Fixed(name, low)
    if step is not None:
        return hp.Float(name, low, high, step=step)
    return hp.Float(name, low, high, sampling=sampling)


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """What a search varies: one entry per hyperparameter, named as in the trial's values.

    Each entry is either a fixed value (a scalar: not tuned, but recorded with every trial) or
    the set to search: a list/tuple of choices for categorical entries, a ``(low, high)`` pair
    for numeric ranges. The named spaces are in :data:`SEARCH_SPACES` (``"default"``, the
    course's; ``"tiny"``, seconds per trial for tests, CI and smoke runs).

    Attributes:
        model: Model names (from-scratch nets of :func:`xraykit.models.list_models`).
        width: Choices of the base width (filters of the first block).
        depth: Choices of the number of blocks.
        dropout: ``(low, high)`` range of the dropout rate before the head (step 0.1).
        l2: ``(low, high)`` range of the L2 kernel penalty (log sampling).
        optimizer: Optimizer names accepted by :func:`xraykit.training.compile_model`.
        learning_rate: ``(low, high)`` range of the learning rate (log sampling).
        weight_decay: ``(low, high)`` range of AdamW's decoupled weight decay (log sampling);
            only active when the trial's optimizer is ``"adamw"``.
        augmentation: Augmentation presets (``"none"``, ``"light"``, ``"medium"``, ``"heavy"``).
        loss: Loss names accepted by :func:`xraykit.losses.get_loss`.
        batch_size: Choices of the mini-batch size.
        batch_norm: Whether the nets use batch normalization (a choice list to tune it).

    Raises:
        ValueError: If a range is not a number or a ``(low, high)`` pair, or a log-sampled
            range does not lie above 0.

    Example::

        space = SearchSpace.named("tiny").replace(learning_rate=(1e-4, 1e-2))
        hypermodel = XRayHyperModel.for_data(data, space)
    """

    model: Sequence[str] | str = ("small_cnn", "vgg_small", "resnet_small")
    width: Sequence[int] | int = (16, 32, 64)
    depth: Sequence[int] | int = (2, 3)
    dropout: tuple[float, float] | float = (0.0, 0.5)
    l2: tuple[float, float] | float = (1e-6, 1e-2)
    optimizer: Sequence[str] | str = ("adam", "adamw", "momentum")
    learning_rate: tuple[float, float] | float = (1e-4, 1e-2)
    weight_decay: tuple[float, float] | float = (1e-5, 1e-2)
    augmentation: Sequence[str] | str = ("none", "light", "medium")
    loss: Sequence[str] | str = ("bce", "focal")
    batch_size: Sequence[int] | int = (32, 64, 128)
    batch_norm: Sequence[bool] | bool = True

    def __post_init__(self):
        for name, sampling in _RANGES.items():
            value = getattr(self, name)
            if _is_scalar(value):
                continue
            if len(value) != 2 or value[0] > value[1]:
                raise ValueError(f"{name} must be a number or a (low, high) pair, not "
                                 f"{value!r}.")
            if sampling == "log" and value[0] <= 0:
                raise ValueError(f"{name} range {value!r} is sampled on a log scale: both ends "
                                 "must be > 0 (give 0.0 alone to switch it off).")

    @classmethod
    def named(cls, name: str) -> SearchSpace:
        """One of :data:`SEARCH_SPACES` by name.

        Raises:
            ValueError: If there is no space of that name.
        """
        if name not in SEARCH_SPACES:
            raise ValueError(f"Unknown search space {name!r}: use one of "
                             f"{', '.join(SEARCH_SPACES)}.")
        return SEARCH_SPACES[name]

    def replace(self, **changes) -> SearchSpace:
        """A copy with some entries changed (``models``/``optimizers``/``losses`` also accepted).

        Raises:
            TypeError: If an entry name is unknown.
        """
        fields = [f.name for f in dataclasses.fields(self)]
        changes = {_OLD_NAMES.get(name, name): value for name, value in changes.items()}
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise TypeError(f"Unknown search-space entry {unknown[0]!r}: use one of "
                            f"{', '.join(fields)}.")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The entries as a dict, e.g. to show as a table."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def declare(self, hp) -> dict[str, Any]:
        """Declares the space on ``hp`` and returns the trial's values.

        Args:
            hp: A ``keras_tuner.HyperParameters``.

        Returns:
            Dict of the values of this trial (``weight_decay`` is ``None`` unless the
            optimizer is AdamW).
        """
        values = {name: _choice(hp, name, getattr(self, name)) for name in _CHOICES}
        values["dropout"] = _range(hp, "dropout", self.dropout, "linear", step=0.1)
        values["l2"] = _range(hp, "l2", self.l2, "log")
        values["learning_rate"] = _range(hp, "learning_rate", self.learning_rate, "log")
        values["weight_decay"] = self._declare_weight_decay(hp, values["optimizer"])
        return values

    def _declare_weight_decay(self, hp, optimizer: str):
        optimizers = [self.optimizer] if _is_scalar(self.optimizer) else list(self.optimizer)
        if "adamw" not in optimizers:
            return None
        if len(optimizers) == 1:
            return _range(hp, "weight_decay", self.weight_decay, "log")
        with hp.conditional_scope("optimizer", ["adamw"]):
            decay = _range(hp, "weight_decay", self.weight_decay, "log")
        return decay if optimizer == "adamw" else None


#: The named search spaces (``python -m xraykit tune --space NAME``).
SEARCH_SPACES: dict[str, SearchSpace] = {
    "default": SearchSpace(),
    "tiny": SearchSpace(model="small_cnn", width=(8, 16), depth=(1, 2), dropout=(0.0, 0.3),
                        l2=(1e-5, 1e-3), optimizer=("adam", "momentum"),
                        learning_rate=(1e-3, 1e-2), augmentation="none", loss="bce",
                        batch_size=64),
}


# --------------------------------------------------------------------------------------------
# The hypermodel
# --------------------------------------------------------------------------------------------
class XRayHyperModel(keras_tuner.HyperModel):
    """The model of a trial drawn from a :class:`SearchSpace`, built as a lesson builds it.

    The network comes from :func:`xraykit.models.build_model` and is compiled by
    :func:`xraykit.training.compile_model`, so a trial is exactly the model a lesson would train
    by hand.

    Args:
        input_shape: Image shape ``(H, W, 1)``.
        task: ``"binary"``, ``"multilabel"`` or ``"multiclass"``.
        num_classes: Outputs (1 for binary).
        search_space: A :class:`SearchSpace` or the name of one in :data:`SEARCH_SPACES`.
        class_weight: ``"balanced"`` (weights from the training labels, resolved by
            :func:`xraykit.losses.class_weight_for_fit`), ``None`` or a dict, passed to ``fit``.
        y_train: Training labels, given to losses that need class frequencies.
        seed: Seed of weight initialization and augmentation.
        name: Name of the hypermodel.
        **changes: Entries of the space to change (see :meth:`SearchSpace.replace`), e.g.
            ``XRayHyperModel(width=(8, 16), optimizers=("adam", "adamw"))``.

    Raises:
        ValueError: On an unknown task, space name or ``class_weight`` name, or a bad range.
        TypeError: On an unknown entry of the space.
    """

    def __init__(self, input_shape: Sequence[int] = (28, 28, 1), task: str = "binary",
                 num_classes: int = 1, search_space: SearchSpace | str = "default",
                 class_weight: str | dict | None = "balanced",
                 y_train: np.ndarray | None = None, seed: int = 0,
                 name: str = "xray_hypermodel", **changes):
        super().__init__(name=name, tunable=True)
        check_task(task)
        if isinstance(search_space, str):
            search_space = SearchSpace.named(search_space)
        self.search_space = search_space.replace(**changes) if changes else search_space
        class_weight_for_fit(class_weight, None)  # a misspelt name fails here, not per trial
        self.input_shape = tuple(int(s) for s in input_shape)
        self.task = task
        self.num_classes = int(num_classes)
        self.class_weight = class_weight
        self.y_train = y_train
        self.seed = int(seed)

    @classmethod
    def for_data(cls, data, search_space: SearchSpace | str = "default",
                 **options) -> XRayHyperModel:
        """Makes the hypermodel for a dataset (shape, task, classes and training labels).

        Args:
            data: An :class:`~xraykit.datasets.XRayDataset`.
            search_space: A :class:`SearchSpace` or the name of one.
            **options: Other arguments of the class (changes of the space included).

        Returns:
            The hypermodel.
        """
        options.setdefault("input_shape", data.image_shape)
        options.setdefault("task", data.task)
        options.setdefault("num_classes", 1 if data.task == "binary" else data.num_classes)
        options.setdefault("y_train", data.y_train)
        return cls(search_space=search_space, **options)

    @property
    def space(self) -> dict[str, Any]:
        """The search space as a dict: hyperparameter name → fixed value or set searched."""
        return self.search_space.as_dict()

    def declare(self, hp) -> dict[str, Any]:
        """Declares the space on ``hp``; the trial's values (:meth:`SearchSpace.declare`)."""
        return self.search_space.declare(hp)

    # -- keras_tuner.HyperModel API --------------------------------------------------------
    def build(self, hp) -> keras.Model:
        """Builds and compiles the trial's model.

        Args:
            hp: The trial's ``keras_tuner.HyperParameters``.

        Returns:
            A compiled ``keras.Model`` (metrics include ``auc``).
        """
        v = self.declare(hp)
        model = models.build_model(
            v["model"], input_shape=self.input_shape, task=self.task,
            num_classes=self.num_classes, dropout=v["dropout"], l2=v["l2"],
            batch_norm=bool(v["batch_norm"]),
            augmentation=None if v["augmentation"] in (None, "none") else v["augmentation"],
            width=int(v["width"]), depth=int(v["depth"]), seed=self.seed,
        )
        loss = None if v["loss"] is None else get_loss(v["loss"], y_train=self.y_train)
        training.compile_model(
            model, task=self.task, optimizer=v["optimizer"], learning_rate=v["learning_rate"],
            loss=loss, num_classes=self.num_classes, weight_decay=v["weight_decay"],
        )
        return model

    def fit(self, hp, model, *args, **kwargs):
        """Trains the trial's model: ``model.fit`` with the trial's batch size.

        Args:
            hp: The trial's hyperparameters.
            model: The model from :meth:`build`.
            *args: Passed to ``model.fit`` (``x, y``).
            **kwargs: Passed to ``model.fit`` (``validation_data``, ``epochs``,
                ``callbacks``, ...). ``batch_size`` and ``class_weight`` come from the
                trial unless given here.

        Returns:
            The ``keras.callbacks.History``.

        Raises:
            keras_tuner.errors.FailedTrialError: If the loss became NaN or infinite (training
                stops at that batch): KerasTuner then records the trial as ``FAILED``, never
                as ``COMPLETED`` with the scores of a diverged model.
        """
        batch_size = _choice(hp, "batch_size", self.search_space.batch_size)
        kwargs.setdefault("batch_size", int(batch_size))
        if "class_weight" not in kwargs:
            y = args[1] if len(args) > 1 else kwargs.get("y")
            kwargs["class_weight"] = class_weight_for_fit(self.class_weight, y, self.task,
                                                          model.loss)
        divergence = training.StopOnNonFiniteLoss()
        kwargs["callbacks"] = [divergence, *(kwargs.get("callbacks") or [])]
        history = model.fit(*args, **kwargs)
        if divergence.epoch is not None:
            rate = hp.values.get("learning_rate")
            raise keras_tuner.errors.FailedTrialError(
                divergence.message(rate if isinstance(rate, float) else None))
        return history


def tiny_hypermodel(data, **options) -> XRayHyperModel:
    """The hypermodel of the ``"tiny"`` space (seconds per trial: tests, CI, smoke runs).

    Args:
        data: The dataset.
        **options: Other arguments of :class:`XRayHyperModel` (changes of the space included).

    Returns:
        An :class:`XRayHyperModel` over ``small_cnn`` with 8-16 filters, 1-2 blocks.
    """
    return XRayHyperModel.for_data(data, "tiny", **options)
