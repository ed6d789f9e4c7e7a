"""Entry point of ``python -m xraykit``."""

import signal
import sys

from xraykit.cli import exit_on_interrupt, main

signal.signal(signal.SIGINT, exit_on_interrupt)  # Ctrl+C: exit 130 at once, no traceback
sys.exit(main())
