"""``python -m mercato``: the same as the ``mercato`` command."""

import sys

from mercato.cli import main

if __name__ == "__main__":
    sys.exit(main())
