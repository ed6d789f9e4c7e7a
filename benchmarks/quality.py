"""Trains the course's recommended recipe on PneumoniaMNIST and prints one JSON line.

Usage::

    python benchmarks/quality.py --profile cpu \
        --data ../shared/data/pneumoniamnist/pneumoniamnist_28.npz

The recipe (lesson 2's choice, refined in lessons 3-5): a small ResNet written with
keras.layers (width 16, 3 stages, 0.17M parameters), "medium" augmentation inside the model,
batch-norm momentum 0.99 (Keras' default: 30 epochs are ~2200 steps, enough for it to settle),
AdamW with a cosine schedule, label smoothing, balanced class weights, the best-val-AUC epoch
kept (checkpoint), test-time augmentation over 1-pixel shifts, and a decision threshold chosen
on the validation split (Youden), then applied once to the official test split.
The test split is used for nothing else.

The JSON line holds test_auc, test_accuracy (at the validation-chosen threshold), val_auc,
test sensitivity/specificity, train_seconds, epochs, backend, device, profile and data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

RECIPES = {
    # 28 px on a CPU: fits in < 10 min of training on 2 cores.
    "cpu": {"model": "resnet_small", "width": 16, "depth": 3, "epochs": 30, "batch_size": 64,
            "learning_rate": 2e-3, "weight_decay": 1e-4, "augmentation": "medium",
            "label_smoothing": 0.05, "dropout": 0.2, "tta": ["shift"], "bn_momentum": 0.99},
    "gpu": {"model": "resnet_small", "width": 64, "depth": 3, "epochs": 40, "batch_size": 128,
            "learning_rate": 2e-3, "weight_decay": 1e-4, "augmentation": "medium",
            "label_smoothing": 0.05, "dropout": 0.2, "tta": ["shift"], "bn_momentum": 0.99},
}
RECIPES["smoke"] = {**RECIPES["cpu"], "epochs": 1, "width": 8}


def _device() -> str:
    from xraykit.profiles import gpu_available

    if gpu_available():
        return "gpu"
    return f"cpu ({os.cpu_count()} cores, {platform.machine()})"


def main(argv=None) -> dict:
    """Runs the benchmark from the command line and returns its JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "gpu"])
    parser.add_argument("--data", default="pneumoniamnist",
                        help="an .npz path, a data folder, or a registry name")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    parser.add_argument("--width", type=int, help="override the recipe's width")
    parser.add_argument("--model", help="override the recipe's model")
    parser.add_argument("--lr", type=float, help="override the recipe's learning rate")
    parser.add_argument("--augmentation", help="override the augmentation preset")
    parser.add_argument("--no-tta", action="store_true", help="no test-time augmentation")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)

    import keras

    import xraykit
    from xraykit.evaluation import binary_metrics, choose_threshold, predict_scores
    from xraykit.models import build_model
    from xraykit.optimizers import make_optimizer
    from xraykit.training import compile_model, fit

    recipe = dict(RECIPES[args.profile])
    for key, value in (("epochs", args.epochs), ("width", args.width), ("model", args.model),
                       ("learning_rate", args.lr), ("augmentation", args.augmentation)):
        if value is not None:
            recipe[key] = value
    if args.no_tta:
        recipe["tta"] = []

    keras.utils.set_random_seed(args.seed)
    if os.path.exists(args.data):
        data = xraykit.course_data("pneumoniamnist", args.profile, args.data, seed=args.seed)
    else:
        data = xraykit.load(args.data).for_profile(args.profile, seed=args.seed)
    if args.profile == "gpu":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")

    model = build_model(recipe["model"], input_shape=data.image_shape, task="binary",
                        width=recipe["width"], depth=recipe["depth"],
                        dropout=recipe["dropout"], augmentation=recipe["augmentation"],
                        bn_momentum=recipe["bn_momentum"], seed=args.seed)
    steps = -(-len(data.x_train) // recipe["batch_size"]) * recipe["epochs"]
    optimizer = make_optimizer("adamw", learning_rate=recipe["learning_rate"],
                               schedule="cosine", total_steps=steps,
                               weight_decay=recipe["weight_decay"])
    compile_model(model, task="binary", optimizer=optimizer,
                  label_smoothing=recipe["label_smoothing"])
    start = time.perf_counter()
    history = fit(model, data, profile=args.profile, epochs=recipe["epochs"],
                  batch_size=recipe["batch_size"], class_weight="balanced",
                  early_stopping=False, verbose=args.verbose)
    train_seconds = time.perf_counter() - start

    # fit() keeps the last epoch; the best-val-AUC checkpoint is the model we report.
    best = history.run_dir / "best.keras"
    if best.exists():
        model = keras.saving.load_model(best)
    val_score = predict_scores(model, data.x_val, tta=recipe["tta"])
    test_score = predict_scores(model, data.x_test, tta=recipe["tta"])
    threshold = choose_threshold(data.y_val, val_score, method="youden")
    val = binary_metrics(data.y_val, val_score, threshold)
    test = binary_metrics(data.y_test, test_score, threshold)
    result = {
        "test_auc": round(test["auc"], 4),
        "test_accuracy": round(test["accuracy"], 4),
        "test_sensitivity": round(test["sensitivity"], 4),
        "test_specificity": round(test["specificity"], 4),
        "val_auc": round(val["auc"], 4),
        "threshold": round(threshold, 4),
        "train_seconds": round(train_seconds, 1),
        "epochs": len(history.history["loss"]),
        "backend": keras.backend.backend(),
        "device": _device(),
        "profile": args.profile,
        "data": str(args.data),
        "recipe": recipe,
    }
    print(json.dumps(result))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
