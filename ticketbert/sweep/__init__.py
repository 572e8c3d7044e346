"""Ray Tune sweeps over ticketbert runs (``python -m tune.sweep``)."""

import os

# The classic CLIReporter progress table (Ray's new output engine ignores progress reporters).
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
