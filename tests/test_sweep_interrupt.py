"""Ctrl-C in ``python -m bionp sweep`` on a local Dask cluster: one line, a clean exit.

Before issue 26 the terminal filled with the workers' ``CancelledError`` warnings and the
nannies' "still alive after 4.0 seconds, killing".  This runs the command in its own
process group and sends SIGINT to the whole group, as a terminal's Ctrl-C does.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from _examples import ROOT

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs POSIX process groups")]


def test_ctrl_c_prints_one_line_and_exits_cleanly(tmp_path):
    pytest.importorskip("distributed")
    (tmp_path / "tasks.py").write_text(
        "import time\n\ndef train(config, seed):\n    time.sleep(60)\n    return {'a': 1}\n")
    (tmp_path / "s.toml").write_text(
        'function = "tasks.py:train"\nscheduler = "local"\nn_workers = 2\n[grid]\na = [1, 2, 3]\n')
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bionp", "sweep", str(tmp_path / "s.toml")], cwd=tmp_path,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # wait until the cluster runs the tasks (its message is on stderr), then Ctrl-C
        deadline = time.monotonic() + 120
        seen = ""
        while "local Dask cluster" not in seen and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
        assert "local Dask cluster" in seen, seen
        time.sleep(3)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, (out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == [f"bionp sweep: interrupted; the finished tasks are in "
                     f"{tmp_path / 's.jsonl'}: run the same command again to resume"], err
    # nothing of the sweep is left running
    for _ in range(50):
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("worker processes outlived the interrupted sweep")
