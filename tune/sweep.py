"""``python -m tune.sweep``: the same as ``python -m ticketbert.sweep`` (see there)."""

import sys

from ticketbert.sweep.sweep import main

if __name__ == "__main__":
    sys.exit(main())
