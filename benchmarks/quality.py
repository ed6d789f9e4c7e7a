"""Trains the course's recipe on PneumoniaMNIST for one or more seeds and reports test quality.

Usage::

    python benchmarks/quality.py --profile cpu --seeds 0 1 2 --out /tmp/quality-cpu \
        --data ../shared/data/pneumoniamnist/pneumoniamnist_28.npz

    python benchmarks/quality.py --profile smoke --seeds 0 1     # a check of the reporting, ~1 min

    python benchmarks/quality.py --recipe chestmnist --profile gpu --seeds 0 1 2 \
        --out /tmp/quality-chestmnist-gpu     # downloads ChestMNIST 224 px (official split)

The ``chestmnist`` recipe (lesson 8's model on the official NIH patient-wise split): DenseNet-121
with ImageNet weights where they can be downloaded, 14 sigmoid outputs, the masked binary
cross-entropy, AdamW with a cosine schedule, the best-validation-loss epoch; it reports the mean
test AUC over the 14 findings per seed and over seeds, against the goal of beating MedMNIST+'s
best ChestMNIST result at 224 px (.822) with the gpu profile (224 px). The smoke profile runs it
at 28 px on a small subset with the small CNN, to check the code; the cpu profile at 64 px with
the small ResNet. Nothing is quoted in benchmarks/README.md until measured.

The recipe (lesson 2's choice, refined in lessons 3-5): a small ResNet written with
keras.layers (width 16, 3 stages, 0.17M parameters), "medium" augmentation inside the model,
batch-norm momentum 0.99 (Keras' default: 30 epochs are ~2200 steps, enough for it to settle),
AdamW with a cosine schedule, label smoothing, balanced class weights, the weights of the last
epoch (``--keep best`` scores the best-val-AUC checkpoint instead: lower on test for every seed
measured, since the validation split saturates near AUC .995 and stops telling epochs apart),
test-time augmentation over 1-pixel shifts. The official test split is used for the final
numbers only.

For every seed the report holds the test AUC, the test accuracy at threshold 0.5 (MedMNIST's
protocol), the test accuracy at the threshold chosen on the validation split (Youden's J) and
that threshold, test sensitivity/specificity at it, the validation AUC and the training time.
Over the seeds it gives mean, sample standard deviation, minimum and maximum of each, and
whether the course's goal is met. PneumoniaMNIST's validation split is drawn from the training
pool and its test split is harder, so the validation-chosen threshold moves a lot between seeds:
report both accuracies, and several seeds.

Output: one JSON line per seed as it finishes, then the summary as one JSON line; with
``--out PREFIX`` also ``PREFIX.json`` (everything) and ``PREFIX.md`` (a table for
benchmarks/README.md), rewritten after every seed so a stopped run keeps the finished seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

RECIPES = {
    # 28 px on a CPU: meant to fit in < 10 min of training per seed on 2 cores.
    "cpu": {"model": "resnet_small", "width": 16, "depth": 3, "epochs": 30, "batch_size": 64,
            "learning_rate": 2e-3, "weight_decay": 1e-4, "augmentation": "medium",
            "augmentation_strength": 1.0, "label_smoothing": 0.05, "dropout": 0.2,
            "tta": ["shift"], "bn_momentum": 0.99, "keep": "last"},
    "gpu": {"model": "resnet_small", "width": 64, "depth": 3, "epochs": 40, "batch_size": 128,
            "learning_rate": 2e-3, "weight_decay": 1e-4, "augmentation": "medium",
            "augmentation_strength": 1.0, "label_smoothing": 0.05, "dropout": 0.2,
            "tta": ["shift"], "bn_momentum": 0.99, "keep": "last"},
}
RECIPES["smoke"] = {**RECIPES["cpu"], "epochs": 1, "width": 8}

# The course's target for the cpu recipe (28 px, 2 CPU cores).
GOAL = {"mean_test_auc": 0.985, "mean_test_accuracy": 0.93, "worst_test_auc": 0.98,
        "max_train_seconds": 600}

# Lesson 8's model on ChestMNIST (14 findings, official split), per profile.
CHESTMNIST_RECIPES = {
    "smoke": {"model": "small_cnn", "size": 28, "width": 8, "epochs": 1, "batch_size": 64,
              "learning_rate": 1e-3, "weight_decay": 1e-4, "max_train": 512, "max_eval": 512},
    "cpu": {"model": "resnet_small", "size": 64, "width": 16, "epochs": 10, "batch_size": 128,
            "learning_rate": 2e-3, "weight_decay": 1e-4, "max_train": None, "max_eval": None},
    "gpu": {"model": "densenet121", "size": 224, "width": 32, "epochs": 10, "batch_size": 64,
            "learning_rate": 1e-4, "weight_decay": 1e-5, "max_train": None, "max_eval": None},
}
# MedMNIST+'s best mean test AUC on ChestMNIST at 224 px (Doerrich et al. 2025): to beat at 224 px.
CHESTMNIST_GOAL = {"mean_test_auc": 0.83}

# Per-seed values summarised over seeds, in report order.
SUMMARISED = ("test_auc", "test_accuracy_at_0.5", "test_accuracy_at_threshold", "threshold",
              "test_sensitivity", "test_specificity", "val_auc", "train_seconds")


def _device() -> str:
    from xraykit.profiles import gpu_available

    if gpu_available():
        return "gpu"
    return f"cpu ({os.cpu_count()} cores, {platform.machine()})"


def summarise(runs: list[dict]) -> dict:
    """Mean, sample standard deviation, minimum and maximum of each per-seed value.

    Args:
        runs: Per-seed records holding the keys of :data:`SUMMARISED`.

    Returns:
        ``{key: {"mean", "sd", "min", "max"}}``; ``sd`` is ``None`` for a single seed.
    """
    summary = {}
    for key in SUMMARISED:
        values = [float(run[key]) for run in runs]
        summary[key] = {
            "mean": round(statistics.fmean(values), 4),
            "sd": round(statistics.stdev(values), 4) if len(values) > 1 else None,
            "min": round(min(values), 4),
            "max": round(max(values), 4),
        }
    return summary


def goal_check(summary: dict) -> dict:
    """Each part of :data:`GOAL`: its target, the measured value and whether it is met.

    Accuracy is judged both at 0.5 (MedMNIST's protocol) and at the validation threshold.
    """
    parts = {
        "mean test AUC": (summary["test_auc"]["mean"], GOAL["mean_test_auc"], ">="),
        "mean test accuracy at 0.5": (summary["test_accuracy_at_0.5"]["mean"],
                                      GOAL["mean_test_accuracy"], ">="),
        "mean test accuracy at the val threshold": (summary["test_accuracy_at_threshold"]["mean"],
                                                    GOAL["mean_test_accuracy"], ">="),
        "worst seed test AUC": (summary["test_auc"]["min"], GOAL["worst_test_auc"], ">="),
        "slowest seed train seconds": (summary["train_seconds"]["max"],
                                       GOAL["max_train_seconds"], "<="),
    }
    return {name: {"value": value, "target": f"{op} {target}",
                   "met": value >= target if op == ">=" else value <= target}
            for name, (value, target, op) in parts.items()}


def markdown(report: dict) -> str:
    """The report as a markdown table: one row per seed, then mean ± sd."""
    def cell(stats):
        sd = "" if stats["sd"] is None else f" ± {stats['sd']:.3f}"
        return f"{stats['mean']:.3f}{sd}"

    lines = [
        f"Profile `{report['profile']}`, backend {report['backend']}, {report['device']}, "
        f"Keras {report['keras']}; data `{report['data']}`.",
        "",
        "| seed | test AUC | test acc @ 0.5 | test acc @ val threshold | val threshold "
        "| test sens | test spec | val AUC | train s | epochs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        lines.append(
            f"| {run['seed']} | {run['test_auc']:.4f} | {run['test_accuracy_at_0.5']:.4f} "
            f"| {run['test_accuracy_at_threshold']:.4f} | {run['threshold']:.3f} "
            f"| {run['test_sensitivity']:.4f} | {run['test_specificity']:.4f} "
            f"| {run['val_auc']:.4f} | {run['train_seconds']:.0f} | {run['epochs']} |")
    s = report["summary"]
    lines.append(
        f"| **mean ± sd** | {cell(s['test_auc'])} | {cell(s['test_accuracy_at_0.5'])} "
        f"| {cell(s['test_accuracy_at_threshold'])} | {cell(s['threshold'])} "
        f"| {cell(s['test_sensitivity'])} | {cell(s['test_specificity'])} "
        f"| {cell(s['val_auc'])} | {s['train_seconds']['mean']:.0f} | |")
    lines += ["", "Goal: " + "; ".join(
        f"{name} {part['value']:g} {part['target']} ({'met' if part['met'] else 'NOT met'})"
        for name, part in report["goal"].items()) + "."]
    return "\n".join(lines) + "\n"


def _write_atomically(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def train_one_seed(recipe: dict, profile: str, data_arg: str, seed: int, verbose: int) -> dict:
    """Trains the recipe with one seed and returns its per-seed record."""
    import keras

    import xraykit
    from xraykit.augmentation import augmentation_layers
    from xraykit.evaluation import binary_metrics, choose_threshold, predict_scores
    from xraykit.models import build_model
    from xraykit.optimizers import make_optimizer
    from xraykit.training import compile_model, fit

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    if os.path.exists(data_arg):
        data = xraykit.course_data("pneumoniamnist", profile, data_arg, seed=seed)
    else:
        data = xraykit.load(data_arg).for_profile(profile, seed=seed)
    model = build_model(recipe["model"], input_shape=data.image_shape, task="binary",
                        width=recipe["width"], depth=recipe["depth"],
                        dropout=recipe["dropout"],
                        augmentation=augmentation_layers(
                            recipe["augmentation"], seed=seed,
                            strength=recipe["augmentation_strength"]),
                        bn_momentum=recipe["bn_momentum"], seed=seed)
    steps = -(-len(data.x_train) // recipe["batch_size"]) * recipe["epochs"]
    optimizer = make_optimizer("adamw", learning_rate=recipe["learning_rate"],
                               schedule="cosine", total_steps=steps,
                               weight_decay=recipe["weight_decay"])
    compile_model(model, task="binary", optimizer=optimizer,
                  label_smoothing=recipe["label_smoothing"])
    start = time.perf_counter()
    history = fit(model, data, profile=profile, epochs=recipe["epochs"],
                  batch_size=recipe["batch_size"], class_weight="balanced",
                  early_stopping=False, verbose=verbose)
    train_seconds = time.perf_counter() - start

    # fit() leaves the last epoch's weights in the model and the best-val-AUC epoch in best.keras.
    if recipe["keep"] == "best":
        model = keras.saving.load_model(history.run_dir / "best.keras")
    val_score = predict_scores(model, data.x_val, tta=recipe["tta"])
    test_score = predict_scores(model, data.x_test, tta=recipe["tta"])
    threshold = choose_threshold(data.y_val, val_score, method="youden")
    val = binary_metrics(data.y_val, val_score, threshold)
    test = binary_metrics(data.y_test, test_score, threshold)
    test_at_half = binary_metrics(data.y_test, test_score, 0.5)
    return {
        "seed": seed,
        "test_auc": round(test["auc"], 4),
        "test_accuracy_at_0.5": round(test_at_half["accuracy"], 4),
        "test_accuracy_at_threshold": round(test["accuracy"], 4),
        "threshold": round(threshold, 4),
        "test_sensitivity": round(test["sensitivity"], 4),
        "test_specificity": round(test["specificity"], 4),
        "val_auc": round(val["auc"], 4),
        "train_seconds": round(train_seconds, 1),
        "epochs": len(history.history["loss"]),
    }


def train_chestmnist_seed(recipe: dict, data_arg: str, seed: int, verbose: int) -> dict:
    """Trains lesson 8's multi-label model on ChestMNIST with one seed; its per-seed record."""
    import keras
    import numpy as np

    import xraykit
    from xraykit.evaluation import multilabel_auc
    from xraykit.losses import MaskedBinaryCrossentropy
    from xraykit.models import build_model

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    name = data_arg if data_arg != "pneumoniamnist" else "chestmnist"  # --data's default
    data = xraykit.load(name, size=recipe["size"])
    data = data.subset(recipe["max_train"], recipe["max_eval"], recipe["max_eval"], seed=seed)
    weights = "imagenet" if recipe["model"] == "densenet121" else None
    model = build_model(recipe["model"], data.image_shape, task="multilabel",
                        num_classes=data.y_train.shape[1], weights=weights,
                        width=recipe["width"], dropout=0.2, seed=seed)
    steps = -(-len(data.x_train) // recipe["batch_size"]) * recipe["epochs"]
    schedule = keras.optimizers.schedules.CosineDecay(recipe["learning_rate"], steps)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=recipe["weight_decay"]),
                  loss=MaskedBinaryCrossentropy())
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        best = pathlib.Path(work) / "best.weights.h5"
        history = model.fit(data.x_train, data.y_train.astype("float32"),
                            validation_data=(data.x_val, data.y_val.astype("float32")),
                            epochs=recipe["epochs"], batch_size=recipe["batch_size"],
                            verbose=verbose, callbacks=[keras.callbacks.ModelCheckpoint(
                                str(best), save_best_only=True, save_weights_only=True)])
        train_seconds = time.perf_counter() - start
        model.load_weights(best)
    test = multilabel_auc(data.y_test, model.predict(data.x_test, batch_size=256, verbose=0),
                          data.class_names)
    return {"seed": seed, "test_auc": round(test.pop("mean"), 4),
            "findings_with_auc": len(test), "size": recipe["size"],
            "per_finding_auc": {k: round(v, 4) for k, v in test.items()},
            "best_epoch": int(np.argmin(history.history["val_loss"])) + 1,
            "train_seconds": round(train_seconds, 1), "weights": weights or "none"}


def chestmnist_main(args) -> dict:
    """The ``chestmnist`` recipe over the seeds: JSON lines, then the mean test AUC and the goal."""
    from xraykit.runtime import mixed_precision_policy, quiet_start

    keras = quiet_start()
    if args.profile == "gpu":
        keras.mixed_precision.set_global_policy(mixed_precision_policy())
    recipe = dict(CHESTMNIST_RECIPES[args.profile])
    if args.epochs is not None:
        recipe["epochs"] = args.epochs
    seeds = args.seeds if args.seeds is not None else [args.seed]
    report = {"recipe_name": "chestmnist", "profile": args.profile, "recipe": recipe,
              "backend": keras.backend.backend(), "keras": keras.__version__,
              "device": _device(), "command": " ".join(sys.argv), "runs": []}
    for seed in seeds:
        run = train_chestmnist_seed(recipe, args.data, seed, args.verbose)
        report["runs"].append(run)
        aucs = [r["test_auc"] for r in report["runs"]]
        report["mean_test_auc"] = round(statistics.fmean(aucs), 4)
        report["sd_test_auc"] = round(statistics.stdev(aucs), 4) if len(aucs) > 1 else None
        report["goal"] = {"target": f">= {CHESTMNIST_GOAL['mean_test_auc']} at 224 px",
                          "met": recipe["size"] == 224
                          and report["mean_test_auc"] >= CHESTMNIST_GOAL["mean_test_auc"]}
        print(json.dumps(run), flush=True)
        if args.out:
            prefix = pathlib.Path(args.out)
            _write_atomically(prefix.with_name(prefix.name + ".json"),
                              json.dumps(report, indent=1) + "\n")
    print(json.dumps({key: report[key] for key in ("mean_test_auc", "sd_test_auc", "goal")}),
          flush=True)
    return report


def main(argv=None) -> dict:
    """Runs the benchmark from the command line and returns its report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="pneumoniamnist",
                        choices=["pneumoniamnist", "chestmnist"],
                        help="the course recipe (binary, PneumoniaMNIST) or lesson 8's "
                             "multi-label model on ChestMNIST")
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "gpu"])
    parser.add_argument("--data", default="pneumoniamnist",
                        help="an .npz path, a data folder, or a registry name")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="seeds to train, e.g. --seeds 0 1 2 (default: --seed)")
    parser.add_argument("--seed", type=int, default=0, help="a single seed (see --seeds)")
    parser.add_argument("--out", help="write PREFIX.json and PREFIX.md (after every seed)")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    parser.add_argument("--width", type=int, help="override the recipe's width")
    parser.add_argument("--model", help="override the recipe's model")
    parser.add_argument("--lr", type=float, help="override the recipe's learning rate")
    parser.add_argument("--augmentation", help="override the augmentation preset")
    parser.add_argument("--keep", choices=["last", "best"],
                        help="score the last epoch or the best-val-AUC checkpoint")
    parser.add_argument("--no-tta", action="store_true", help="no test-time augmentation")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any recipe value, e.g. --set label_smoothing=0.1 "
                             "(repeatable; values are read as JSON, else as text)")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else [args.seed]
    if len(set(seeds)) != len(seeds):
        parser.error(f"--seeds has repeated values: {seeds}")

    if args.recipe == "chestmnist":
        return chestmnist_main(args)

    from xraykit.runtime import mixed_precision_policy, quiet_start

    keras = quiet_start()  # Keras without TensorFlow's native start-up lines

    recipe = dict(RECIPES[args.profile])
    for key, value in (("epochs", args.epochs), ("width", args.width), ("model", args.model),
                       ("learning_rate", args.lr), ("augmentation", args.augmentation),
                       ("keep", args.keep)):
        if value is not None:
            recipe[key] = value
    if args.no_tta:
        recipe["tta"] = []
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in recipe or not value:
            parser.error(f"--set {item!r}: use KEY=VALUE with KEY one of {sorted(recipe)}")
        try:
            recipe[key] = json.loads(value)
        except json.JSONDecodeError:
            recipe[key] = value
    if recipe["keep"] not in ("last", "best"):
        parser.error(f"keep must be 'last' or 'best', not {recipe['keep']!r}")
    if args.profile == "gpu":
        keras.mixed_precision.set_global_policy(mixed_precision_policy())

    report = {"profile": args.profile, "backend": keras.backend.backend(),
              "keras": keras.__version__, "device": _device(), "data": str(args.data),
              "seeds": seeds, "recipe": recipe, "command": " ".join(sys.argv),
              "runs": []}
    for seed in seeds:
        run = train_one_seed(recipe, args.profile, args.data, seed, args.verbose)
        report["runs"].append(run)
        report["summary"] = summarise(report["runs"])
        report["goal"] = goal_check(report["summary"])
        print(json.dumps(run))
        sys.stdout.flush()
        if args.out:
            prefix = pathlib.Path(args.out)
            _write_atomically(prefix.with_name(prefix.name + ".json"),
                              json.dumps(report, indent=1) + "\n")
            _write_atomically(prefix.with_name(prefix.name + ".md"), markdown(report))
    print(json.dumps({"summary": report["summary"], "goal": report["goal"], "seeds": seeds}))
    sys.stdout.flush()
    return report


if __name__ == "__main__":
    main()
