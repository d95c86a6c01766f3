"""Counts of the generated calls, printed at the end of the run (see conftest.py)."""

import collections

#: entry -> number of bad calls refused / valid calls accepted / corrupt files refused
BAD = collections.Counter()
VALID = collections.Counter()
FILES = collections.Counter()
