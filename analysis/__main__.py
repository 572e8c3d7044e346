"""``python -m analysis``: the same as ``python -m ticketbert.analysis`` (see there)."""

import sys

from ticketbert.analysis.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
