"""``python -m usagenorm``: the same command line as ``usagenorm``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
