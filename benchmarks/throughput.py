"""Training and loading throughput, in one run; prints one JSON line.

Usage::

    python benchmarks/throughput.py --data ../shared/data [--n 4708 --epochs 4]

Training: the same in-memory PneumoniaMNIST arrays (28 px), the same small CNN compiled the
same way (``compile_model``: Adam, BCE, the task metrics), validated on the same images,
trained (a) through xraykit: ``build_model(..., augmentation="light")`` (augmentation inside
the model) and ``xraykit.training.fit`` (class weights, best-model checkpoint, early-stopping
bookkeeping, CSV logger, backup for resuming), and (b) with a bare
``model.fit(x, y, validation_data=...)`` on the model without augmentation. The figure is
``ratio = xraykit images/s / bare images/s`` (goal >= 0.95). The first epoch (compilation) is
left out of both. A third run, xraykit's ``fit`` without augmentation, separates the cost of the
augmentation from the cost of the training loop's extras. The three runs are repeated
``--rounds`` times in a rotating order, so that a slow spell of the machine hits every side.
Images/s and the ratios come from each side's fastest steady epoch (a shared machine only ever
adds time, as in ``timeit``); the ratios of the median epochs and every epoch's seconds are in
the record too.

Loading: images/s of ``read_dicom`` on the shared DICOMs and of ``load_folder`` on the
64-image NIH PNG sample (1024x1024, resized to 28 px).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import tempfile
import time


def _steady(seconds):
    return seconds[1:] or seconds  # drop the compile epoch


def main(argv=None) -> dict:
    """Runs the benchmark from the command line and returns its JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("XRAYKIT_DATA", "../shared/data"))
    parser.add_argument("--n", type=int, default=4708, help="training images")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="repeats of the three runs")
    args = parser.parse_args(argv)

    import keras

    import xraykit
    from xraykit.models import build_model
    from xraykit.training import EpochTimer, compile_model, fit

    data_dir = pathlib.Path(args.data)
    npz = data_dir / "pneumoniamnist" / "pneumoniamnist_28.npz" if data_dir.is_dir() else data_dir
    data = xraykit.load(npz).subset(max_train=args.n, seed=0)
    x, y = data.x_train, data.y_train
    n = len(x)

    def bare():
        keras.utils.set_random_seed(0)
        model = build_model("small_cnn", (28, 28, 1), seed=0)
        compile_model(model, task="binary", learning_rate=1e-3)
        timer = EpochTimer()
        model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
                  validation_data=(data.x_val, data.y_val), callbacks=[timer])
        return _steady(timer.seconds)

    def xraykit_fit(augmentation):
        keras.utils.set_random_seed(0)
        model = build_model("small_cnn", (28, 28, 1), augmentation=augmentation, seed=0)
        compile_model(model, task="binary", learning_rate=1e-3)
        timer = EpochTimer()
        with tempfile.TemporaryDirectory() as run_dir:
            fit(model, data, epochs=args.epochs, batch_size=args.batch_size, run_dir=run_dir,
                callbacks=[timer], early_stopping=False, verbose=0)
        return _steady(timer.seconds)

    runs = {"bare": bare, "aug": lambda: xraykit_fit("light"), "plain": lambda: xraykit_fit(None)}
    seconds = {name: [] for name in runs}
    for round_index in range(args.rounds):
        shift = round_index % len(runs)
        names = list(runs)[shift:] + list(runs)[:shift]
        for name in names:
            seconds[name].extend(runs[name]())
    fastest = {name: min(values) for name, values in seconds.items()}
    typical = {name: statistics.median(values) for name, values in seconds.items()}

    dicoms = sorted((data_dir / "dicom").glob("*.dcm")) if data_dir.is_dir() else []
    dicom_rate = None
    if dicoms:
        start, reads = time.perf_counter(), 0
        while time.perf_counter() - start < 2.0:
            for path in dicoms:
                xraykit.read_dicom(path)
                reads += 1
        dicom_rate = reads / (time.perf_counter() - start)
    folder_rate = None
    nih = data_dir / "nih_cxr14_sample"
    if nih.is_dir():
        start = time.perf_counter()
        folder = xraykit.load_folder(nih, image_size=28, label_columns=["pneumonia"])
        folder_rate = len(folder.paths) / (time.perf_counter() - start)

    result = {
        "benchmark": "throughput",
        "backend": keras.backend.backend(),
        "device": f"cpu ({os.cpu_count()} cores visible, {platform.machine()})"
        if not xraykit.profiles.gpu_available() else "gpu",
        "train_images": n, "epochs": args.epochs, "batch_size": args.batch_size,
        "rounds": args.rounds,
        "bare_fit_img_s": round(n / fastest["bare"], 1),
        "xraykit_fit_light_aug_img_s": round(n / fastest["aug"], 1),
        "xraykit_fit_no_aug_img_s": round(n / fastest["plain"], 1),
        "ratio": round(fastest["bare"] / fastest["aug"], 3),
        "ratio_no_aug": round(fastest["bare"] / fastest["plain"], 3),
        "ratio_median_epochs": round(typical["bare"] / typical["aug"], 3),
        "ratio_no_aug_median_epochs": round(typical["bare"] / typical["plain"], 3),
        "epoch_seconds": {name: [round(v, 2) for v in values] for name, values in seconds.items()},
        "read_dicom_img_s": None if dicom_rate is None else round(dicom_rate, 1),
        "load_folder_nih_1024px_img_s": None if folder_rate is None else round(folder_rate, 1),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
