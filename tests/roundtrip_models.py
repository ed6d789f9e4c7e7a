"""Saves every kind of xraykit model in one process and loads it in another (tests/test_saving.py).

Run as ``python tests/roundtrip_models.py save FOLDER [FAMILY ...]`` then ``... load FOLDER``
in a second, fresh process; test_saving.py compares what the two wrote. Each model is small
(tiny widths, the smallest input a network accepts) so the whole round trip takes seconds per
backend.

``save`` writes ``<name>.keras`` per model, ``inputs.npz``/``saved.npz`` (an input batch and the
saving process's predictions) and ``saved.json`` (how to load each model, its augmentation
layers, its evaluation). ``load`` writes ``loaded.npz`` and ``loaded.json`` (per model: the
predictions, or the error). Models marked ``"plain"`` are loaded with ``keras.saving.load_model``
before anything from xraykit is imported: they must need no custom class at all.
"""

from __future__ import annotations

import json
import pathlib
import sys
import traceback

import numpy as np


def _predict(model, x) -> np.ndarray:
    """Inference on one batch.

    An eager call under TensorFlow (no graph tracing per model), ``predict`` (one compiled
    program, reusable through JAX's compilation cache) elsewhere.
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        return keras.ops.convert_to_numpy(model(x, training=False))
    return np.asarray(model.predict(x, verbose=0))


def _tiny_head(x, keras):
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.layers.Dense(1, activation="sigmoid", name="out")(x)


def _layer_models(keras, rng):
    """One tiny model per preprocessing layer (custom and built-in)."""
    import xraykit.preprocessing as pp
    from xraykit.affine import RandomAffine

    train = rng.random((8, 16, 16, 1), dtype=np.float32)
    layers = {
        "PerImageStandardize": lambda: pp.PerImageStandardize(),
        "PerImageMinMax": lambda: pp.PerImageMinMax(),
        "Window": lambda: pp.Window(0.4, 0.3),
        "XRVScale": lambda: pp.XRVScale(255.0),
        "ToRGB_torch": lambda: pp.ToRGB("densenet121"),
        "ToRGB_caffe": lambda: pp.ToRGB("resnet50"),
        "ToRGB_tf": lambda: pp.ToRGB("resnet50v2"),
        "dataset_normalizer": lambda: pp.dataset_normalizer(train),
        "clahe_layer": lambda: pp.clahe_layer(tile_grid_size=(2, 2)),
        "resize_layer": lambda: pp.resize_layer(12, "crop"),
        "Equalization": lambda: keras.layers.Equalization(value_range=(0, 1)),
        "RandomAffine": lambda: RandomAffine((-0.1, 0.05), 0.2, (-0.3, 0.1), fill_mode="reflect",
                                             interpolation="nearest", seed=3),
    }
    if keras.backend.backend() == "torch":
        del layers["clahe_layer"]  # refused under torch (see xraykit.preprocessing.clahe_layer)
    for name, make in layers.items():
        inputs = keras.Input((16, 16, 1))
        x = make()(inputs)
        # Scale large outputs down so the sigmoid does not saturate and hide differences.
        x = keras.layers.Rescaling(1e-3 if name.endswith("XRVScale") or "caffe" in name else 1.0)(x)
        yield f"layer_{name}", keras.Model(inputs, _tiny_head(x, keras)), False


def _family_models(keras, families):
    from xraykit.models import build_model, list_models, model_info

    for name in families or list_models():
        spec = model_info(name)
        side = spec.min_size if spec.kind == "backbone" else 16
        model = build_model(name, (side, side, 1), width=4, depth=2, weights=None)
        yield f"family_{name}", model, True


def _preset_models(keras):
    """Every preset (geometry: xraykit's RandomAffine), and "light" as built before the fusion.

    The old form is three keras.layers resamplings, built-in layers only: it loads without xraykit.
    """
    from xraykit.augmentation import PRESETS
    from xraykit.models import build_model

    for preset in PRESETS:
        model = build_model("small_cnn", (16, 16, 1), width=4, depth=1, augmentation=preset)
        yield f"preset_{preset}", model, preset == "none"
    fill = {"fill_mode": "constant", "fill_value": 0.0}
    before_fusion = keras.layers.Pipeline([
        keras.layers.RandomRotation(5.0 / 360.0, seed=0, **fill),
        keras.layers.RandomTranslation(0.05, 0.05, seed=1, **fill),
        keras.layers.RandomZoom((-0.05, 0.05), seed=2, **fill),
        keras.layers.RandomContrast(0.1, value_range=(0, 1), seed=3),
        keras.layers.RandomBrightness(0.05, value_range=(0, 1), seed=4),
        keras.layers.ReLU(max_value=1.0),
    ], name="augmentation_light")
    model = build_model("small_cnn", (16, 16, 1), width=4, depth=1, augmentation=before_fusion)
    yield "preset_light_three_layers", model, True


def _compiled_models(keras, rng):
    """Models compiled with xraykit's losses and metrics, trained one step (optimizer state)."""
    from xraykit.losses import MaskedBinaryCrossentropy, WeightedBinaryCrossentropy
    from xraykit.models import build_model
    from xraykit.training import compile_model

    x = rng.random((8, 16, 16, 1), dtype=np.float32)
    binary = build_model("small_cnn", (16, 16, 1), width=4, depth=1)
    compile_model(binary, task="binary", loss=WeightedBinaryCrossentropy(2.5, 0.5),
                  threshold=0.4)
    multilabel = build_model("small_cnn", (16, 16, 1), task="multilabel", num_classes=3,
                             width=4, depth=1)
    compile_model(multilabel, task="multilabel",
                  loss=MaskedBinaryCrossentropy([1.0, 2.0, 3.0], 0.5, label_smoothing=0.1))
    multiclass = build_model("small_cnn", (16, 16, 1), task="multiclass", num_classes=3,
                             width=4, depth=1)
    compile_model(multiclass, task="multiclass")
    labels = {
        "binary": np.array([0, 1] * 4, np.float32)[:, None],
        "multilabel": np.where(rng.random((8, 3)) < 0.3, np.nan, rng.random((8, 3)) < 0.5),
        "multiclass": np.arange(8) % 3,
    }
    for task, model in (("binary", binary), ("multilabel", multilabel),
                        ("multiclass", multiclass)):
        y = labels[task].astype(np.float32)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        yield f"compiled_{task}", model, False, x, y


def save(folder: pathlib.Path, *families: str) -> None:
    """Builds, saves and predicts every model; writes what the loading process must reproduce.

    Args:
        folder: Where to write.
        *families: The model families to include (default: all of them).
    """
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    inputs, outputs, meta = {}, {}, {}
    built = [*(m + (None, None) for m in _family_models(keras, families)),
             *(m + (None, None) for m in _preset_models(keras)),
             *(m + (None, None) for m in _layer_models(keras, rng)),
             *_compiled_models(keras, rng)]
    for name, model, plain, x_eval, y_eval in built:
        x = rng.random((3,) + tuple(model.inputs[0].shape[1:]), dtype=np.float32)
        inputs[name] = x
        outputs[name] = _predict(model, x)
        model.save(folder / f"{name}.keras")
        entry = {"plain": plain, "layers": _augmentation_layers(model)}
        if x_eval is not None:
            inputs[f"{name}__x"], inputs[f"{name}__y"] = x_eval, y_eval
            entry["evaluate"] = model.evaluate(x_eval, y_eval, batch_size=8, verbose=0,
                                               return_dict=True)
            entry["loss"] = {"class": type(model.loss).__name__, "config": model.loss.get_config()}
        meta[name] = entry
    np.savez(folder / "inputs.npz", **inputs)
    np.savez(folder / "saved.npz", **outputs)
    (folder / "saved.json").write_text(json.dumps(meta, default=float), encoding="utf-8")


def _augmentation_layers(model) -> list[str] | None:
    """Class names inside the model's augmentation block (to check it survives the round trip)."""
    for layer in model.layers:
        if layer.name.startswith("augmentation_"):
            return [type(inner).__name__ for inner in layer.layers]
    return None


def load(folder: pathlib.Path) -> None:
    """Loads every saved model in this fresh process and predicts on the same inputs."""
    import keras

    meta = json.loads((folder / "saved.json").read_text(encoding="utf-8"))
    inputs = np.load(folder / "inputs.npz")
    outputs, report = {}, {}
    # Built-in layers only: no xraykit import may be needed (checked below), so load these first.
    order = sorted(meta, key=lambda name: not meta[name]["plain"])
    for name in order:
        entry = meta[name]
        if not entry["plain"] and "xraykit.inference" not in sys.modules:
            report["xraykit_imported_by_plain_loads"] = sorted(
                m for m in sys.modules if m == "xraykit" or m.startswith("xraykit."))
            import xraykit.inference  # noqa: F401  (the documented way to load the others)
        try:
            if entry["plain"]:
                model = keras.saving.load_model(folder / f"{name}.keras")
            else:
                from xraykit.inference import load_model

                model = load_model(folder / f"{name}.keras", compile="evaluate" in entry)
            outputs[name] = _predict(model, inputs[name])
            result = {"layers": _augmentation_layers(model)}
            if "evaluate" in entry:
                x, y = inputs[f"{name}__x"], inputs[f"{name}__y"]
                result["evaluate"] = model.evaluate(x, y, batch_size=8, verbose=0,
                                                    return_dict=True)
                result["loss"] = {"class": type(model.loss).__name__,
                                  "config": model.loss.get_config()}
            report[name] = result
        except Exception as err:  # reported per model by the test
            report[name] = {"error": f"{type(err).__name__}: {err}"[:2000],
                            "traceback": traceback.format_exc()[-3000:]}
    np.savez(folder / "loaded.npz", **outputs)
    (folder / "loaded.json").write_text(json.dumps(report, default=float), encoding="utf-8")


if __name__ == "__main__":
    {"save": save, "load": load}[sys.argv[1]](pathlib.Path(sys.argv[2]), *sys.argv[3:])
