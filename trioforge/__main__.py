"""``python -m trioforge``: the same as the ``trioforge`` command."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
