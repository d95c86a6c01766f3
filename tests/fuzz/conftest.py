"""Hypothesis profiles of the bad-input suite and the summary it prints at the end.

``BIONP_FUZZ=long`` (what ``make fuzz`` sets) draws about twenty times more examples;
``BIONP_FUZZ_EXAMPLES=N`` sets the number of bad values per argument directly.
"""

import os

from hypothesis import HealthCheck, settings

import tally

_LONG = os.environ.get("BIONP_FUZZ", "") == "long"
#: bad values drawn per (entry point, argument); valid values: a quarter of it
EXAMPLES = int(os.environ.get("BIONP_FUZZ_EXAMPLES", 800 if _LONG else 32))

settings.register_profile(
    "bionp-fuzz", max_examples=EXAMPLES, deadline=None, database=None, derandomize=not _LONG,
    suppress_health_check=list(HealthCheck), print_blob=True)


def pytest_terminal_summary(terminalreporter):
    if not (tally.BAD or tally.FILES):
        return
    import entry_points

    w = terminalreporter.write_line
    n_args = sum(len(e.args) for e in entry_points.ENTRIES)
    failed = len(terminalreporter.stats.get("failed", []))
    w("")
    w("bionp bad-input suite: "
      f"{len(tally.BAD)} of {len(entry_points.ENTRIES)} entry points ({n_args} arguments) run; "
      f"{sum(tally.BAD.values())} generated bad calls, all refused (ValueError/TypeError or a "
      f"bionp error naming the argument, state unchanged); {sum(tally.VALID.values())} valid "
      f"calls accepted; {sum(tally.FILES.values())} corrupt files refused or (cache) rebuilt "
      f"({', '.join(f'{k}: {v}' for k, v in sorted(tally.FILES.items()))})"
      + (f"; {failed} FAILED test(s) above" if failed else ""))
