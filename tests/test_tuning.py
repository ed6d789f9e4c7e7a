"""Tests of xraykit.tuning: real tiny searches on PneumoniaMNIST, failure surfacing, plots."""

import warnings

import numpy as np
import pytest

keras_tuner = pytest.importorskip("keras_tuner")

from xraykit import tuning  # noqa: E402


@pytest.fixture(scope="module")
def tiny_data(small_data):
    """128 training / 64 validation real images (28 px)."""
    return small_data.subset(128, 64, 64, seed=0)


def test_tiny_random_search_completes(tmp_path, tiny_data):
    hypermodel = tuning.tiny_hypermodel(tiny_data)
    tuner = tuning.make_tuner("random", hypermodel, "smoke", directory=tmp_path,
                              project_name="random", max_trials=2, seed=1)
    frame = tuning.run_search(tuner, tiny_data, epochs=1)

    assert len(frame) == 2
    assert (frame["status"] == "COMPLETED").all()
    # The score is the validation AUC: the best trial's saved model gives it again.
    with warnings.catch_warnings():  # the checkpoint's optimizer is not rebuilt for inference
        warnings.filterwarnings("ignore", "Skipping variable loading for optimizer", UserWarning)
        best_model = tuner.get_best_models(1)[0]
    again = best_model.evaluate(tiny_data.x_val, tiny_data.y_val, verbose=0, return_dict=True)
    assert again["auc"] == pytest.approx(frame["score"].max(), abs=1e-5)
    assert (frame["seconds"] > 0).all()
    assert set(frame["tuner_id"]) == {"tuner0"}
    for column in ("model", "width", "depth", "dropout", "l2", "optimizer", "learning_rate",
                   "augmentation", "loss", "batch_size"):
        assert column in frame.columns, column
    assert frame["learning_rate"].between(1e-3, 1e-2).all()
    best = tuning.best_config(tuner)
    assert best["model"] == "small_cnn"
    assert best["learning_rate"] == pytest.approx(
        frame.loc[frame["score"].idxmax(), "learning_rate"])
    # The same table is read back from the search folder (as after a distributed search).
    on_disk = tuning.results_frame(tmp_path / "random")
    assert list(on_disk["trial_id"]) == list(frame["trial_id"])
    assert np.allclose(on_disk["score"], frame["score"])


def test_hypermodel_space_and_build(tiny_data):
    hypermodel = tuning.XRayHyperModel.for_data(tiny_data, models=("small_cnn", "resnet_small"),
                                                width=(8, 16), depth=2, augmentation="light",
                                                optimizers=("adam", "adamw"))
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    names = set(hp.values)
    assert {"model", "width", "depth", "dropout", "l2", "optimizer", "learning_rate",
            "augmentation", "loss", "batch_size"} <= names
    assert hp.values["depth"] == 2 and hp.values["augmentation"] == "light"
    assert model.output_shape == (None, 1)
    assert model.compiled
    expected = {"adam": "Adam", "adamw": "AdamW"}[hp.values["optimizer"]]
    assert type(model.optimizer).__name__ == expected
    assert float(model.optimizer.learning_rate) == pytest.approx(hp.values["learning_rate"])
    # AdamW's weight decay is a conditional hyperparameter: active only with adamw.
    for optimizer, active in (("adamw", True), ("adam", False)):
        hp2 = keras_tuner.HyperParameters()
        hp2.values["optimizer"] = optimizer
        values = hypermodel.declare(hp2)
        assert values["optimizer"] == optimizer
        assert hp2.is_active("weight_decay") is active
        assert (values["weight_decay"] is not None) is active
    with pytest.raises(ValueError, match="log scale"):
        tuning.XRayHyperModel(l2=(0.0, 1e-3))


def test_search_space_named_changed_and_checked(tiny_data):
    tiny = tuning.SearchSpace.named("tiny")
    assert tiny.model == "small_cnn" and tiny.width == (8, 16) and tiny.batch_size == 64
    changed = tiny.replace(models=("small_cnn", "resnet_small"), learning_rate=(1e-4, 1e-2))
    assert changed.model == ("small_cnn", "resnet_small")
    assert changed.learning_rate == (1e-4, 1e-2) and changed.width == tiny.width
    assert tiny.learning_rate == (1e-3, 1e-2)  # the named space itself is unchanged
    # The hypermodel takes the space by object or name, plus changes in the old keywords.
    hypermodel = tuning.XRayHyperModel.for_data(tiny_data, changed, width=16, losses="bce")
    assert hypermodel.search_space == changed.replace(width=16, loss="bce")
    assert list(hypermodel.space) == ["model", "width", "depth", "dropout", "l2", "optimizer",
                                      "learning_rate", "weight_decay", "augmentation", "loss",
                                      "batch_size", "batch_norm"]
    assert tuning.tiny_hypermodel(tiny_data).search_space == tiny
    with pytest.raises(TypeError, match="Unknown search-space entry 'widths'.*width"):
        tiny.replace(widths=(8,))
    with pytest.raises(ValueError, match="Unknown search space 'huge': use one of default, tiny"):
        tuning.XRayHyperModel(search_space="huge")
    with pytest.raises(ValueError, match=r"dropout must be a number or a \(low, high\) pair"):
        tuning.SearchSpace(dropout=(0.5, 0.1))
    with pytest.raises(ValueError, match="class_weight must be 'balanced', None or a dict"):
        tuning.XRayHyperModel(class_weight="balance")


def test_hypermodel_fit_weights_classes_like_training(tiny_data):
    from xraykit import losses

    class Recorder:  # stands in for the trial's model: records what fit() is given
        loss = None

        def fit(self, *args, **kwargs):
            return kwargs

    hypermodel = tuning.tiny_hypermodel(tiny_data)
    hp = keras_tuner.HyperParameters()
    given = hypermodel.fit(hp, Recorder(), tiny_data.x_train, tiny_data.y_train)
    assert given["batch_size"] == 64
    assert given["class_weight"] == losses.class_weights(tiny_data.y_train)
    Recorder.loss = losses.get_loss("weighted_bce", y_train=tiny_data.y_train)
    with pytest.warns(UserWarning, match="already weights the classes"):
        given = hypermodel.fit(hp, Recorder(), tiny_data.x_train, tiny_data.y_train)
    assert given["class_weight"] is None  # not weighted twice


@pytest.mark.parametrize("kind", ["hyperband", "bayesian"])
def test_other_tuners_budget(tmp_path, tiny_data, kind):
    tuner = tuning.make_tuner(kind, tuning.tiny_hypermodel(tiny_data), "cpu",
                              directory=tmp_path, seed=0)
    assert tuner.oracle.max_trials == 6  # the cpu profile's trial budget for every tuner
    if kind == "hyperband":
        assert tuner.oracle.max_epochs == 4
    else:
        assert tuner.oracle.num_initial_points == 3
    with pytest.raises(ValueError, match="Unknown tuner kind"):
        tuning.make_tuner("grid", tuning.tiny_hypermodel(tiny_data))


@pytest.mark.parametrize("trials", [2, 3])
def test_failed_trials_raise_with_cause(tmp_path, tiny_data, trials):
    # The space expects 32 px images but the data has 28 px: every trial fails in fit().
    # With 2 trials KerasTuner 1.4.8 "finishes" silently; with 3 it stops on its own.
    hypermodel = tuning.tiny_hypermodel(tiny_data, input_shape=(32, 32, 1))
    tuner = tuning.make_tuner("random", hypermodel, "smoke", directory=tmp_path,
                              max_trials=trials)
    with pytest.raises(tuning.TrialsFailedError, match="failed") as info:
        tuning.run_search(tuner, tiny_data, epochs=1)
    assert info.value.completed == 0
    assert len(info.value.failures) == trials
    assert "shape" in str(info.value).lower()  # the cause, not just "failed"
    frame = tuning.results_frame(tuner)
    assert set(frame["status"]) <= {"FAILED", "INVALID"}
    assert frame["error"].str.len().gt(0).all()


def test_bad_data_is_refused(tmp_path, tiny_data):
    tuner = tuning.make_tuner("random", tuning.tiny_hypermodel(tiny_data), "smoke",
                              directory=tmp_path, max_trials=1)
    with pytest.raises(TypeError, match="XRayDataset"):
        tuning.run_search(tuner, tiny_data.x_train)


def test_tuning_plots(tmp_path, tiny_data):
    import pandas as pd

    from xraykit import plotting

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "trial_id": [f"{i:02d}" for i in range(6)],
        "status": ["COMPLETED"] * 5 + ["FAILED"],
        "score": list(rng.uniform(0.6, 0.9, 5)) + [np.nan],
        "seconds": rng.uniform(1, 3, 6), "best_step": 0, "tuner_id": "tuner0", "error": "",
        "learning_rate": 10 ** rng.uniform(-4, -2, 6), "optimizer": ["adam", "sgd"] * 3,
    })
    fig = plotting.plot_trials(frame)
    assert len(fig.axes) == 1
    fig = plotting.plot_hyperparameter_effects(frame)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["learning_rate", "optimizer"]
    fig = plotting.plot_tuner_comparison({"random": frame, "bayesian": frame.iloc[:3]})
    assert len(fig.axes) == 3
    best = fig.axes[0].lines[0].get_ydata()
    assert np.nanmax(best) == pytest.approx(frame["score"].max())


def test_results_frame_of_a_plain_keras_tuner_search(tmp_path, tiny_data):
    """A search written with keras_tuner's own classes and a build function is read too."""
    import keras

    from xraykit import plotting
    from xraykit.models import build_model

    def build(hp):
        model = build_model("small_cnn", tiny_data.image_shape, width=4, depth=1, seed=0)
        model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-2, sampling="log")),
                      loss="binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
        return model

    tuner = keras_tuner.Hyperband(build, objective=keras_tuner.Objective("val_auc", "max"),
                                  max_epochs=3, factor=3, seed=0, directory=tmp_path,
                                  project_name="plain")
    with warnings.catch_warnings():  # continued trials restart their optimizer, as lesson 6 says
        warnings.filterwarnings("ignore", "Skipping variable loading for optimizer", UserWarning)
        tuner.search(tiny_data.x_train, tiny_data.y_train, epochs=3, verbose=0,
                     validation_data=(tiny_data.x_val, tiny_data.y_val))
    completed, failures = tuning.check_trials(tuner)
    frame = tuning.results_frame(tuner)
    assert completed == len(frame) > 2 and failures == []
    expected = frame["tuner/epochs"] - frame["tuner/initial_epoch"]
    assert (frame["epochs_trained"] == expected).all()
    assert frame["epochs_trained"].nunique() > 1  # continued trials train fewer epochs
    assert frame["seconds"].isna().all()  # no xraykit trial log for a plain tuner
    fig = plotting.plot_tuner_comparison({"hyperband": frame}, cost="epochs_trained")
    assert fig.axes[2].patches[0].get_height() == frame["epochs_trained"].sum()
