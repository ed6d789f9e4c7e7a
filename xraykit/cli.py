"""The command line, ``python -m xraykit``: datasets, course, tune, data-parallel and predict.

``datasets`` lists, describes, downloads and verifies the registry's data; ``course`` runs,
checks, opens (JupyterLab), hands out (student edition), grades or publishes (website) the
notebooks; ``tune`` runs a KerasTuner search (one process, a process of a
distributed chief/worker search, or a chief and workers started here); ``data-parallel`` trains
a tiny model over virtual CPU devices; ``predict`` runs a saved model on image files and folders.
Every command exits non-zero with one line on stderr (no
traceback): 2 for bad arguments, 1 when the work fails.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

#: ``tune --kind`` choices (:data:`xraykit.tuning.KINDS`; named here so that building the
#: command line does not start Keras).
TUNER_KINDS = ("random", "hyperband", "bayesian")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, not {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """``ArgumentParser`` whose usage errors are one line (and exit 2)."""

    def error(self, message):
        """Prints the error in one line, with where to read the usage, and exits with 2."""
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _sample(args) -> int:
    from xraykit import samples

    if args.action == "download":
        print(samples.download_sample(args.name, url=args.url))
        return 0
    status = samples.verify_sample(args.name)
    bad = {name: state for name, state in status.items() if state != "ok"}
    for name, state in bad.items():
        print(f"{args.name} {name}: {state}")
    print(f"{args.name}: {len(status) - len(bad)} of {len(status)} files ok")
    return 1 if bad else 0


def _datasets(args) -> int:
    from xraykit import datasets, urls

    if args.action == "list":
        for name in datasets.list_datasets():
            entry = datasets.info(name)
            sizes = ",".join(str(s) for s in entry.get("files", {})) or "-"
            print(f"{name:22} {entry['task']:10} {entry['access']:9} sizes {sizes:14} "
                  f"{entry['title']}")
        return 0
    if not args.name:
        print(f"datasets {args.action} needs a dataset name.", file=sys.stderr)
        return 2
    entry = datasets.info(args.name)
    if args.action == "info":
        for key, value in entry.items():
            if key == "sample_files":
                print(f"sample_files: {len(value)} files under {entry['folder']}/, e.g. "
                      f"{next(iter(value))}")
            elif key == "files":
                for size, file_entry in value.items():
                    checksum = file_entry.get("sha256") or file_entry.get("md5")
                    print(f"  {size:>4} px: {urls.redact_url(file_entry['url'])}  ({checksum})")
            else:
                print(f"{key}: {' '.join(str(value).split())}")
        return 0
    if entry["access"] == "sample":
        return _sample(args)
    if args.action == "download":
        path = datasets.download(args.name, size=args.size, url=args.url)
        print(path)
        return 0
    status = datasets.verify(args.name, size=args.size)
    if not status:
        print(f"{args.name}: no downloadable files to verify (access: "
              f"{datasets.info(args.name)['access']}); see `info {args.name}`.")
        return 1
    for size, state in status.items():
        print(f"{args.name} {size:>4} px: {state}")
    return 0 if all(s == "ok" for s in status.values()) else 1


def _course(args) -> int:
    from xraykit import course

    if args.action in _COURSE_ACTIONS:
        return _COURSE_ACTIONS[args.action](args)
    profile = args.profile or "auto"
    if profile != "auto":
        from xraykit.profiles import get_profile

        get_profile(profile)  # an unknown profile fails here, not inside every notebook
    if args.action == "check":
        found = course.find_notebooks(args.notebooks, args.only)
        bad = {p.name: course.storage_problems(p) for p in found}
        for name, problems in bad.items():
            print(f"{name}: {'; '.join(problems) or 'clean'}")
        return 1 if any(bad.values()) else 0
    runs = course.run_course(args.out or "build", profile, args.data, args.only, args.backend,
                             args.timeout, args.notebooks)
    return 0 if all(r.status == "ok" for r in runs) else 1


def _course_lab(args) -> int:
    from xraykit import lab
    from xraykit.profiles import get_profile

    if args.profile not in (None, "auto"):
        get_profile(args.profile)
    return lab.run_lab(args.profile or "auto", args.data, args.backend, args.port,
                       open_browser=not args.no_browser)


def _course_student(args) -> int:
    from xraykit import exercises

    if not args.out:
        print("error: course student needs --out DIR (where the student edition goes).",
              file=sys.stderr)
        return 2
    written = exercises.write_student_edition(args.out, args.notebooks, args.only)
    print(f"student edition: {len(written)} notebook(s) in {args.out}/ (no solutions; an "
          "answer cell after each exercise, and a check cell where one exists)")
    return 0


def _course_grade(args) -> int:
    from xraykit import grading
    from xraykit.profiles import get_profile

    if not args.target:
        print("error: course grade needs a notebook or a folder of notebooks.", file=sys.stderr)
        return 2
    profile = args.profile or "smoke"
    get_profile(profile)
    reports = grading.grade(args.target, args.out or "build/graded", profile, args.data,
                            args.backend, args.only, args.timeout)
    print(grading.grades_table(reports))
    if args.json:
        print(f"JSON: {grading.write_json(reports, args.json)}")
    return 0


def _course_site(args) -> int:
    from xraykit import site

    index = site.build_site(args.executed, args.out or "build/site", args.profile)
    print(f"site: {index} (open it in a browser)")
    return 0


_COURSE_ACTIONS = {"lab": _course_lab, "student": _course_student, "grade": _course_grade,
                   "site": _course_site}


def _search_args(args) -> list[str]:
    """The search options of ``tune`` as arguments: what every process of a search runs."""
    options = {"--kind": args.kind, "--directory": args.directory,
               "--project-name": args.project_name, "--profile": args.profile,
               "--dataset": args.dataset, "--data": args.data, "--space": args.space,
               "--trials": args.trials, "--epochs": args.epochs, "--max-train": args.max_train,
               "--max-val": args.max_val, "--seed": args.seed,
               "--chief-timeout": args.chief_timeout}
    found = [str(part) for option, value in options.items() if value is not None
             for part in (option, value)]
    return found + (["--no-overwrite"] if args.no_overwrite else [])


def _print_results(frame, best: str | None = None) -> None:
    shown = frame.drop(columns=["error"]) if len(frame) else frame
    print(shown.to_string(max_colwidth=24), flush=True)
    if best:
        print(f"[xraykit tune] best: {best}", flush=True)


def _tune_here(args, profile) -> int:
    """One process of a search: alone, or the chief or a worker its environment names."""
    from xraykit.runtime import quiet_start

    keras = quiet_start()  # before tuning imports Keras: no TensorFlow start-up lines

    from keras_tuner.src import config as keras_tuner_config

    from xraykit import tuning
    from xraykit.datasets import course_data

    # KerasTuner prints each failed trial's traceback; the command reports the cause instead
    # (TrialsFailedError), in one line.
    keras_tuner_config.DEBUG = False
    keras.utils.set_random_seed(args.seed)
    space = tuning.SearchSpace.named(args.space)  # an unknown name fails before the data loads
    data = course_data(args.dataset, profile, args.data, seed=args.seed)
    if args.max_train or args.max_val:
        data = data.subset(args.max_train, args.max_val, None, seed=args.seed)
    hypermodel = tuning.XRayHyperModel.for_data(data, space, seed=args.seed)
    tuner = tuning.make_tuner(args.kind, hypermodel, profile, directory=args.directory,
                              project_name=args.project_name, overwrite=not args.no_overwrite,
                              seed=args.seed, max_trials=args.trials,
                              chief_timeout=args.chief_timeout)
    role = os.environ.get("KERASTUNER_TUNER_ID", "tuner0")
    print(f"[xraykit tune] {role}: {args.kind} search in {tuner.project_dir}", flush=True)
    frame = tuning.run_search(tuner, data, epochs=args.epochs, profile=profile,
                              chief_timeout=args.chief_timeout)
    chief_or_alone = hasattr(tuner.oracle, "trials")  # a worker sees only its own trials
    _print_results(frame, tuning.best_config(tuner) if chief_or_alone else None)
    return 0


def _tune_workers(args) -> int:
    """A chief and ``args.workers`` workers on this machine; prints the search's results."""
    from xraykit.runtime import quiet_start

    quiet_start()  # before tuning imports Keras (to read the results): no start-up lines

    from xraykit import distribute, tuning

    project = pathlib.Path(args.directory) / (args.project_name or args.kind)
    run = distribute.launch_distributed_search(
        "xraykit tune", args.workers, _search_args(args), port=args.port, ip=args.ip,
        clear=None if args.no_overwrite else project, timeout=args.timeout,
        chief_grace=2)  # the chief polls every 20 s; its results are on disk already
    print(f"[xraykit tune] a chief and {args.workers} workers finished in {run.seconds:.0f} s "
          f"(logs in {run.logs['chief'].parent})", flush=True)
    frame = tuning.results_frame(project)
    best = frame.loc[frame["score"].idxmax()] if frame["score"].notna().any() else None
    _print_results(frame, None if best is None else f"trial {best['trial_id']}, "
                                                   f"score {best['score']:.4f}")
    return 0


def _check_tune_args(args) -> None:
    """Refuses a search's bad options before any process starts or any file is touched."""
    from xraykit import files
    from xraykit.checks import check_folder_name
    from xraykit.profiles import get_profile

    if args.profile not in (None, "auto"):
        get_profile(args.profile)  # an unknown profile fails here, before any process starts
    if args.data is not None and not pathlib.Path(args.data).exists():
        raise FileNotFoundError(f"--data {args.data}: no such file or folder; pass the folder "
                                f"or .npz of the dataset, or leave --data out to download it.")
    check_folder_name(args.project_name or args.kind, "--project-name", args.kind)
    if args.commands is None:  # the folder of a search started elsewhere may be remote
        files.check_writable(args.directory, "--directory",
                             "pass a folder you can write to")


def _tune(args) -> int:
    from xraykit.profiles import get_profile

    _check_tune_args(args)
    if args.commands:
        from xraykit.distribute import distributed_commands

        for line in distributed_commands("xraykit tune", args.commands, args.ip,
                                         args.port or 8000, _search_args(args)):
            print(line)
        return 0
    if args.workers:
        return _tune_workers(args)
    return _tune_here(args, get_profile(args.profile))


def _data_parallel(args) -> int:
    from xraykit import distribute

    report = distribute.data_parallel_check(args.devices, args.steps, args.batch_size,
                                            args.seed)
    print(f"{report['strategy']} over {report['replicas']} devices ({report['backend']}): "
          f"loss {' -> '.join(f'{v:.4f}' for v in report['loss'])}; "
          f"{report['weights_changed']} of {report['weights_total']} weight arrays trained")
    print("XRAYKIT_REPORT " + json.dumps(report), flush=True)
    return 0


def _predict(args) -> int:
    from xraykit.runtime import quiet_start

    quiet_start()  # before the model loads Keras: no TensorFlow start-up lines

    from xraykit import predict_files
    from xraykit.inference import load_model

    image_files = predict_files.gather_images(args.paths)  # bad paths fail before Keras works
    model = load_model(args.model)
    found = predict_files.predict_files(model, image_files, grad_cam=bool(args.gradcam))
    if args.out:
        written = predict_files.write_rows(found.rows, args.out)
        print(f"{len(found.rows)} row(s) written to {written}")
    else:
        import pandas as pd

        print(pd.DataFrame(found.rows).to_csv(index=False), end="")
    if args.gradcam:
        written = predict_files.write_grad_cams(found, args.gradcam)
        print(f"{len(written)} Grad-CAM picture(s) written to {args.gradcam}")
    for path, reason in found.failed.items():
        print("error: " + (reason if str(path) in reason else f"{path}: {reason}"),
              file=sys.stderr)
    return 1 if found.failed else 0


_PREDICT_HELP = """Predicts every image named (PNG/JPEG/DICOM files, folders searched recursively)
with a model saved by xraykit.inference.save_model: one row per image with each finding's
probability and its decision (0/1) at the threshold saved with the model. Prints CSV, or writes
--out (.csv or .json). Exit status 1 when a file could not be read (the others are still
predicted)."""


def _add_predict(commands) -> None:
    predict = commands.add_parser("predict", help="predict image files with a saved model",
                                  description=_PREDICT_HELP)
    predict.add_argument("model", help="a .keras file written by xraykit.inference.save_model")
    predict.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    predict.add_argument("--out", default=None, help="write the rows to this .csv or .json")
    predict.add_argument("--gradcam", default=None, metavar="DIR",
                         help="also write a Grad-CAM overlay PNG per image and finding here")


def _add_datasets(commands) -> None:
    data = commands.add_parser("datasets", help="list, describe, download and verify datasets")
    data.add_argument("action", choices=["list", "info", "download", "verify"])
    data.add_argument("name", nargs="?")
    data.add_argument("--size", type=int, default=None, help="image size (default 28)")
    data.add_argument("--url", default=None,
                      help="download from this mirror (same checksum); for a sample, the base "
                           "URL of a server laid out like the shared data folder")


_COURSE_HELP = """run: execute the notebooks headless (executed copies and HTML in --out);
check: the notebooks are stored clean; lab: JupyterLab on the notebooks with the profile, data
and backend set; student: write the student edition (no solutions) to --out; grade TARGET:
execute a student's notebook(s) and report each exercise (table, --json); site: build the
course website from executed notebooks (--executed) into --out."""


def _add_course(commands) -> None:
    run = commands.add_parser("course", help="run, check, open, hand out, grade or publish the "
                              "notebooks", description=_COURSE_HELP)
    run.add_argument("action", choices=["run", "check", "lab", "student", "grade", "site"])
    run.add_argument("target", nargs="?", default=None,
                     help="grade: a student's NN_*.ipynb or a folder of them")
    run.add_argument("--profile", default=None,
                     help="smoke | cpu | gpu | auto (default auto; smoke for grade)")
    run.add_argument("--data", default=None, help="folder or .npz used instead of downloads")
    run.add_argument("--only", nargs="*", default=None, help="notebook prefixes, e.g. 00 01")
    run.add_argument("--out", default=None,
                     help="output folder (run: build; grade: build/graded; site: build/site)")
    run.add_argument("--backend", default=None, help="Keras backend of the kernels")
    run.add_argument("--timeout", type=_positive_seconds, default=1800,
                     help="seconds allowed per cell (> 0)")
    run.add_argument("--notebooks", default=None,
                     help="folder of the notebooks (default: those installed with xraykit, "
                          "else notebooks/ of a source checkout)")
    run.add_argument("--port", type=int, default=None, help="lab: the server's port")
    run.add_argument("--no-browser", action="store_true", help="lab: open no browser tab")
    run.add_argument("--json", default=None, help="grade: also write the report as JSON here")
    run.add_argument("--executed", default="build",
                     help="site: folder of executed notebooks (from `course run --out`)")


_TUNE_HELP = """Runs a KerasTuner search of an xraykit.tuning search space: trains on the
dataset's train split, scores val AUC, prints one row per trial. Alone, it is the whole search.
With KERASTUNER_TUNER_ID (chief, tuner0, tuner1, ...), KERASTUNER_ORACLE_IP and
KERASTUNER_ORACLE_PORT set it is one process of a distributed search: the chief serves the
trials, each worker trains some; all need the same --directory (a shared disk). --workers N
starts a chief and N workers here; --commands N prints the lines that start them by hand. A
worker that gets no answer from the chief for --chief-timeout seconds (it never started, or died)
stops with a message instead of waiting KerasTuner's hour."""


def _add_tune(commands) -> None:
    tune = commands.add_parser("tune", help="hyperparameter search, alone or chief/worker",
                               description=_TUNE_HELP)
    tune.add_argument("--kind", default="random", choices=TUNER_KINDS, help="the tuner")
    tune.add_argument("--space", default="default",
                      help="search space of xraykit.tuning.SEARCH_SPACES: default | tiny")
    tune.add_argument("--directory", default="tuning", help="folder of the search's files")
    tune.add_argument("--project-name", default=None, help="its sub-folder (default: KIND)")
    tune.add_argument("--profile", default=None, help="smoke | cpu | gpu | auto "
                      "(default $XRAYKIT_PROFILE): trials, epochs, data sizes")
    tune.add_argument("--dataset", default="pneumoniamnist", help="registry name")
    tune.add_argument("--data", default=None, help="folder or .npz (default $XRAYKIT_DATA)")
    tune.add_argument("--trials", type=_positive, default=None,
                      help="trials (default: profile's)")
    tune.add_argument("--epochs", type=_positive, default=None, help="epochs per trial")
    tune.add_argument("--max-train", type=_positive, default=None, help="training images used")
    tune.add_argument("--max-val", type=_positive, default=None,
                      help="validation images used")
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--no-overwrite", action="store_true",
                      help="resume the search found in the folder instead of starting afresh")
    spread = tune.add_mutually_exclusive_group()
    spread.add_argument("--workers", type=_positive, default=None, metavar="N",
                        help="start a chief and N workers on this machine and wait for them")
    spread.add_argument("--commands", type=_positive, default=None, metavar="N",
                        help="print the commands of a chief and N workers, one per line")
    tune.add_argument("--ip", default="127.0.0.1", help="the chief's address (distributed)")
    tune.add_argument("--port", type=int, default=None,
                      help="the chief's port (default: a free one; 8000 for --commands)")
    tune.add_argument("--timeout", type=_seconds, default=None,
                      help="seconds to wait for --workers (default: no limit)")
    tune.add_argument("--chief-timeout", type=_seconds, default=60.0,
                      help="seconds a worker waits for an answer of the chief before it stops "
                           "with a message (default 60)")


def _add_data_parallel(commands) -> None:
    check = commands.add_parser(
        "data-parallel", help="train a tiny CNN data-parallel on virtual CPU devices",
        description="Splits the CPU into virtual devices, trains a tiny CNN data-parallel over "
                    "them (keras.distribution.DataParallel under JAX, MirroredStrategy under "
                    "TensorFlow) and prints a JSON report (XRAYKIT_REPORT ...).")
    check.add_argument("--devices", type=_positive, default=2, help="virtual CPU devices")
    check.add_argument("--steps", type=_positive, default=4, help="batches per epoch")
    check.add_argument("--batch-size", type=_positive, default=32, help="global batch size")
    check.add_argument("--seed", type=int, default=0)


_COMMANDS = {"datasets": _datasets, "course": _course, "tune": _tune,
             "data-parallel": _data_parallel, "predict": _predict}


def main(argv: list[str] | None = None) -> int:
    """Runs the command line.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0, 1 when the work failed, 2 for bad arguments.
    """
    parser = _Parser(prog="python -m xraykit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (_add_datasets, _add_course, _add_tune, _add_data_parallel, _add_predict):
        add(commands)
    args = parser.parse_args(argv)
    if args.command == "datasets" and args.action == "download" and args.size is None:
        args.size = 28  # MedMNIST's size; samples have none
    try:
        return _COMMANDS[args.command](args)
    except (KeyError, ValueError, OSError, RuntimeError, ImportError) as err:
        # OSError: network, cache and file problems; RuntimeError: failed trials or workers.
        from xraykit.urls import redact_text

        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print("error: " + redact_text(" ".join(line.strip() for line in str(message).splitlines())),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
