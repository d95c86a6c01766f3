"""benchmarks/feedback_family.py: every rule timed against backprop in one run (JSON)."""

import json
import os
import subprocess
import sys

from _examples import ROOT

SCRIPT = os.path.join(ROOT, "benchmarks", "feedback_family.py")


def _run(*args):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)


def test_reports_each_rule_against_backprop():
    res = _run("--subset", "512", "--rounds", "2", "--hidden", "32", "16")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["data"] in ("random", "fashion-mnist") and out["n_train"] == 512
    assert out["generator_threads"] == 1 and out["blas_threads"] == "1"
    names = {"fa", "kp", "usf", "brsf", "brsf_normal", "frsf", "weight_mirror"}
    assert set(out["ratios"]) == set(out["ratios_cpu"]) == {f"{n}_over_backprop" for n in names}
    for name, run in out["runs"].items():
        assert len(run["epoch_seconds"]) == len(run["epoch_cpu_seconds"]) == 2, name
        assert all(t > 0 for t in run["epoch_seconds"])
    assert out["runs"]["weight_mirror"]["mirror"]["noise_dist"] == "rademacher"
    assert out["runs"]["weight_mirror"]["warmup_seconds"] > 0


def test_chunks_interleave_the_same_epochs():
    res = _run("--subset", "512", "--rounds", "1", "--hidden", "32", "16", "--batch-size", "64",
               "--chunk", "3", "--rules", "backprop", "usf", "weight_mirror")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    for key in ("chunk_ratios", "chunk_ratios_cpu"):
        assert set(out[key]) == {"usf_over_backprop", "weight_mirror_over_backprop"}
        assert all(r > 0 for r in out[key].values())
    whole = json.loads(_run("--subset", "512", "--rounds", "1", "--hidden", "32", "16",
                            "--batch-size", "64", "--rules", "backprop", "usf",
                            "weight_mirror").stdout)
    assert "chunk_ratios" not in whole
    for name in ("backprop", "usf", "weight_mirror"):  # 8 updates in chunks of 3: the same
        assert out["runs"][name]["final_batch_loss"] == whole["runs"][name]["final_batch_loss"]


def test_bad_arguments_are_refused():
    for args, match in ((("--rules", "fa"), "must include backprop"),
                        (("--rounds", "0"), "must be >= 1"),
                        (("--chunk", "-1"), "--chunk >= 0"),
                        (("--rules", "backprop", "sideways"), "invalid choice")):
        res = _run(*args)
        assert res.returncode != 0 and match in res.stderr, (args, res.stderr)
