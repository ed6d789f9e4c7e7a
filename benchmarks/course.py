"""Wall time of every course notebook under one profile; prints one JSON line.

Usage:
    python benchmarks/course.py --profile smoke --data ../shared/data
    KERAS_BACKEND=jax python benchmarks/course.py --profile gpu --backend jax
"""

import argparse
import json
import os
import platform
import tempfile

from xraykit import course


def main() -> None:
    """Runs the notebooks and prints ``{"profile", "backend", "total_seconds", "notebooks"...}``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--data", default=None, help="folder or .npz used instead of downloads")
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--out", default=None, help="keep executed notebooks here")
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="xraykit-course-")
    runs = [course.run_notebook(path, out, args.profile, args.data, args.backend, html=False)
            for path in course.find_notebooks(only=args.only)]
    print(json.dumps({
        "profile": args.profile,
        "backend": args.backend,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu",
        "total_seconds": round(sum(r.seconds for r in runs), 1),
        "all_ok": all(r.status == "ok" for r in runs),
        "notebooks": {r.name: {"seconds": round(r.seconds, 1), "status": r.status} for r in runs},
    }))


if __name__ == "__main__":
    main()
