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
augmentation from the cost of the training loop's extras.

Loading: images/s of ``read_dicom`` on the shared DICOMs and of ``load_folder`` on the
64-image NIH PNG sample (1024x1024, resized to 28 px).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import tempfile
import time


def _rate(n, seconds):
    steady = seconds[1:] or seconds  # drop the compile epoch
    return n * len(steady) / sum(steady)


def main(argv=None) -> dict:
    """Runs the benchmark from the command line and returns its JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("XRAYKIT_DATA", "../shared/data"))
    parser.add_argument("--n", type=int, default=4708, help="training images")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
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
        return _rate(n, timer.seconds)

    def xraykit_fit(augmentation):
        keras.utils.set_random_seed(0)
        model = build_model("small_cnn", (28, 28, 1), augmentation=augmentation, seed=0)
        compile_model(model, task="binary", learning_rate=1e-3)
        timer = EpochTimer()
        with tempfile.TemporaryDirectory() as run_dir:
            fit(model, data, epochs=args.epochs, batch_size=args.batch_size, run_dir=run_dir,
                callbacks=[timer], early_stopping=False, verbose=0)
        return _rate(n, timer.seconds)

    bare_rate = bare()
    xk_aug = xraykit_fit("light")
    xk_plain = xraykit_fit(None)

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
        "bare_fit_img_s": round(bare_rate, 1),
        "xraykit_fit_light_aug_img_s": round(xk_aug, 1),
        "xraykit_fit_no_aug_img_s": round(xk_plain, 1),
        "ratio": round(xk_aug / bare_rate, 3),
        "ratio_no_aug": round(xk_plain / bare_rate, 3),
        "read_dicom_img_s": None if dicom_rate is None else round(dicom_rate, 1),
        "load_folder_nih_1024px_img_s": None if folder_rate is None else round(folder_rate, 1),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
