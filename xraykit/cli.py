"""Command line: ``python -m xraykit datasets ...`` and ``python -m xraykit course ...``.

Every command exits non-zero with one line on stderr (no traceback) on bad input.
"""

from __future__ import annotations

import argparse
import sys


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
    from xraykit import datasets

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
                    print(f"  {size:>4} px: {file_entry['url']}  ({checksum})")
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

    if args.profile != "auto":
        from xraykit.profiles import get_profile

        get_profile(args.profile)  # an unknown profile fails here, not inside every notebook
    if args.action == "check":
        bad = {p.name: course.storage_problems(p) for p in course.find_notebooks(args.notebooks)}
        for name, problems in bad.items():
            print(f"{name}: {'; '.join(problems) or 'clean'}")
        return 1 if any(bad.values()) else 0
    runs = course.run_course(args.out, args.profile, args.data, args.only, args.backend,
                             args.timeout, args.notebooks)
    return 0 if all(r.status == "ok" for r in runs) else 1


def main(argv: list[str] | None = None) -> int:
    """Runs the command line.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m xraykit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("datasets", help="list, describe, download and verify datasets")
    data.add_argument("action", choices=["list", "info", "download", "verify"])
    data.add_argument("name", nargs="?")
    data.add_argument("--size", type=int, default=None, help="image size (default 28)")
    data.add_argument("--url", default=None,
                      help="download from this mirror (same checksum); for a sample, the base "
                           "URL of a server laid out like the shared data folder")

    run = commands.add_parser("course", help="execute the notebooks, or check they are clean")
    run.add_argument("action", choices=["run", "check"])
    run.add_argument("--profile", default="auto", help="smoke | cpu | gpu | auto")
    run.add_argument("--data", default=None, help="folder or .npz used instead of downloads")
    run.add_argument("--only", nargs="*", default=None, help="notebook prefixes, e.g. 00 01")
    run.add_argument("--out", default="build", help="folder for executed notebooks and HTML")
    run.add_argument("--backend", default=None, help="Keras backend of the kernels")
    run.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    run.add_argument("--notebooks", default=None,
                     help="folder of the notebooks (default: those installed with xraykit, "
                          "else notebooks/ of a source checkout)")

    args = parser.parse_args(argv)
    if args.command == "datasets" and args.action == "download" and args.size is None:
        args.size = 28  # MedMNIST's size; samples have none
    try:
        return _datasets(args) if args.command == "datasets" else _course(args)
    except (KeyError, ValueError, OSError) as err:  # OSError: network, cache and file problems
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print("error: " + " ".join(line.strip() for line in str(message).splitlines()),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
