"""``python -m xraykit.distribute``: the old spelling of ``python -m xraykit data-parallel``.

An entry point, run and never imported: it forwards its arguments to the command line.
"""

import sys

from xraykit.cli import main

sys.exit(main(["data-parallel", *sys.argv[1:]]))
