"""``python -m ticketbert.sweep``: see ``ticketbert.sweep.sweep``."""

import sys

from ticketbert.sweep.sweep import main

if __name__ == "__main__":
    sys.exit(main())
