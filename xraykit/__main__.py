"""Entry point of ``python -m xraykit``: Ctrl+C ends it with status 130 and no traceback."""

import sys

try:
    from xraykit.cli import main

    status = main()  # main answers Ctrl+C itself once it runs; this covers the imports
except KeyboardInterrupt:
    print("error: interrupted.", file=sys.stderr)
    status = 130
sys.exit(status)
