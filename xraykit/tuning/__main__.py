"""``python -m xraykit.tuning``: the old spelling of ``python -m xraykit tune`` (lesson 6 runs it).

An entry point, run and never imported: it forwards its arguments to the command line.
"""

import sys

from xraykit.cli import main

sys.exit(main(["tune", *sys.argv[1:]]))
