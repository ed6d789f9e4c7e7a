"""Entry point of ``python -m xraykit``."""

import sys

from xraykit.cli import main

sys.exit(main())
