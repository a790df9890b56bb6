"""Run the ``statebits`` command as ``python -m statebits``."""

import sys

from statebits.cli import main

sys.exit(main())
