"""``python -m bionp gpu-check`` without a GPU: the one-line skip, the report's schema on
the strict stand-in (tiny sizes), and the time guards that keep one phase from eating
the others' time."""

import argparse
import importlib
import json
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from bionp import cli, gpucheck
from bionp.gpucheck import timings

B = importlib.import_module("bionp.backend")
ROOT = Path(__file__).resolve().parent.parent


def _no_cupy(monkeypatch):
    monkeypatch.setattr(B, "_cupy_state", {})
    monkeypatch.setitem(sys.modules, "cupy", None)


def _opts(**kw):
    base = dict(out="unused.json", backend_under_test="strict", quick=True, phases=list(gpucheck.PHASES),
                budget=[], parity_only=["random"], pytest_k="test_cupy_missing_error")
    base.update(kw)
    return argparse.Namespace(**base)


def test_without_cupy_one_line_exit_0(monkeypatch, tmp_path, capsys):
    _no_cupy(monkeypatch)
    out = tmp_path / "r.json"
    assert cli.main(["gpu-check", "--out", str(out)]) == 0
    text = capsys.readouterr()
    lines = text.out.strip().splitlines()
    assert len(lines) == 1 and text.err == ""
    assert lines[0].startswith("bionp gpu-check: skipped everything (CuPy tests, parity table, timings)")
    assert "could not be imported" in lines[0]
    assert not out.exists()


def test_without_gpu_one_line_exit_0(monkeypatch, tmp_path, capsys):
    fake = types.ModuleType("cupy")

    def count():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=count))
    monkeypatch.setattr(B, "_cupy_state", {})
    monkeypatch.setitem(sys.modules, "cupy", fake)
    assert gpucheck.main(["--out", str(tmp_path / "r.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "visible CUDA GPU" in lines[0] and "cudaErrorNoDevice" in lines[0]


@pytest.mark.parametrize("bad", ["parity", "parity=0", "nope=3", "tests=x"])
def test_bad_budget_exit_2(bad, tmp_path, capsys):
    assert gpucheck.main(["--backend-under-test", "strict", "--out", str(tmp_path / "r.json"),
                          "--budget", bad]) == 2
    assert "PHASE=SECONDS" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_report_schema_on_strict(tmp_path, capsys):
    out = tmp_path / "sub" / "gpu-check.json"
    rc = cli.main(["gpu-check", "--backend-under-test", "strict", "--quick", "--out", str(out),
                   "--parity-only", "random", "rules.backprop",
                   "--pytest-k", "test_cupy_missing_error or test_cupy_without_gpu"])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["schema"] == gpucheck.SCHEMA
    assert report["passed"] is True and report["backend_under_test"] == "strict"
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["numpy"] == np.__version__
    assert list(report["phases"]) == list(gpucheck.PHASES)
    for phase in report["phases"].values():
        assert phase["status"] == "passed" and phase["seconds"] >= 0 and phase["budget_s"] > 0

    par = report["phases"]["parity"]
    assert par["checks"] == ["random.generator", "rules.backprop"]
    assert {r["dtype"] for r in par["rows"]} == {"float32", "float64"}
    assert all(r["passed"] and r["tolerance"] == 0.0 and r["backend"] == "strict" for r in par["rows"])
    assert par["summary"]["failed"] == 0 and par["summary"]["rows"] == len(par["rows"])

    tim = report["phases"]["timings"]
    assert tim["sizes"] == {"n_samples": 4000, "kh_hidden": 100}
    assert [r["name"] for r in tim["results"]] == list(gpucheck.WORKLOADS)
    for r in tim["results"]:
        for side in ("cpu", "device"):
            assert r[side]["seconds_per_epoch"] > 0 and r[side]["samples"] == 4000
        assert r["speedup"] == pytest.approx(r["cpu"]["seconds_per_epoch"] / r["device"]["seconds_per_epoch"])
        assert r["meets_target"] is None  # the GPU targets say nothing about strict
        assert r["steps_per_epoch"] == 4000 // r["batch"]
        assert r["cpu"]["ms_per_step"] == pytest.approx(
            1e3 * r["cpu"]["seconds_per_epoch"] / r["steps_per_epoch"])
    assert tim["results"][0]["target_speedup"] == 10.0

    tests = report["phases"]["tests"]
    assert tests["counts"]["passed"] == 2 and tests["failed"] == [] and tests["returncode"] == 0

    table = capsys.readouterr().out
    assert "backprop_b2000" in table and "overall: PASSED" in table


def test_default_test_selection():
    """The tests phase selects the CuPy cases and GPU tests, not this module's own tests."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider",
                          "-k", gpucheck.PYTEST_K, "tests"], cwd=str(ROOT), capture_output=True,
                         text=True, timeout=300).stdout
    ids = [line for line in out.splitlines() if "::" in line]
    assert len(ids) > 100 and sum("[cupy" in i for i in ids) > 100
    assert "tests/test_hebbian.py::test_parity_cupy" in ids
    assert not [i for i in ids if i.startswith("tests/test_gpucheck.py")]


def test_time_limit_interrupts():
    t0 = time.perf_counter()
    with pytest.raises(gpucheck.PhaseTimeout, match="budget of 0 s"):
        with gpucheck.time_limit(0.2, "sleep"):
            time.sleep(5)
    assert time.perf_counter() - t0 < 2
    with gpucheck.time_limit(5):  # restored: no alarm left behind
        pass
    time.sleep(0.3)


def test_one_phase_failing_keeps_the_report(tmp_path, monkeypatch):
    def slow(opts, entry, deadline):
        entry["partial"] = 1
        time.sleep(5)

    def broken(opts, entry, deadline):
        raise RuntimeError("kernel compilation failed")

    monkeypatch.setitem(gpucheck._PHASE_FUNCS, "parity", slow)
    monkeypatch.setitem(gpucheck._PHASE_FUNCS, "timings", broken)
    out = tmp_path / "r.json"
    opts = _opts(out=str(out), phases=["parity", "timings", "tests"], budget=["parity=0.3"])
    t0 = time.perf_counter()
    assert gpucheck.run_from_args(opts) == 1
    assert time.perf_counter() - t0 < 60
    report = json.loads(out.read_text())
    par, tim, tests = (report["phases"][k] for k in ("parity", "timings", "tests"))
    assert par["status"] == "timeout" and par["partial"] == 1 and par["seconds"] < 2
    assert tim["status"] == "error" and "kernel compilation failed" in tim["error"]
    assert "RuntimeError" in tim["traceback"]
    assert tests["status"] == "passed"  # ran after the two failures
    assert report["passed"] is False


def test_pytest_phase_timeout_kills_the_run(tmp_path):
    report = {"phases": {}}
    t0 = time.perf_counter()
    entry = gpucheck.run_phase("tests", gpucheck._phase_tests, _opts(pytest_k="strict"), report, 1.5)
    assert entry["status"] == "timeout" and "budget" in entry["error"]
    assert entry["counts"]["tests"] == 0 and entry["failed"] == []  # none finished in 1.5 s
    assert time.perf_counter() - t0 < 10


def test_parity_phase_stops_at_its_deadline():
    entry = {}
    ok = gpucheck._phase_parity(_opts(parity_only=None), entry, time.monotonic() - 1)
    assert not ok and entry["rows"] == [] and entry["skipped"] == entry["checks"]
    assert len(entry["checks"]) > 5 and entry["summary"]["skipped"] == len(entry["checks"])


def test_epoch_shortened_to_fit_and_scaled(cpu_xp):
    x, y, _ = timings.load_data(4000)
    assert x.shape == (4000, 784) and x.dtype == np.float32 and y.shape == (4000,)
    res = timings.time_epoch("backprop_b200", "numpy", (x, y), {"kh_hidden": 100}, 1e-3)
    assert res["samples"] == 4000 and res["extrapolated_from"] == 400  # the probe: 2 batches
    assert res["seconds_per_epoch"] > 0


def test_timings_phase_skips_when_budget_used_up(monkeypatch):
    entry = {}
    assert not timings.phase_timings(_opts(), entry, time.monotonic() - 1)
    assert all(r["cpu"]["error"].startswith("skipped") and r["speedup"] is None
               for r in entry["results"])


def test_pytest_log_counts(tmp_path):
    from bionp.gpucheck import pytest_log

    p = tmp_path / "log.jsonl"
    lines = [("t.py::a", "call", "passed"), ("t.py::b", "call", "failed"),
             ("t.py::c", "setup", "skipped"), ("t.py::d", "setup", "failed"),
             ("t.py::a", "teardown", "failed"), ("t.py::e", "call", "skipped")]
    p.write_text("".join(json.dumps({"nodeid": n, "when": w, "outcome": o}) + "\n"
                         for n, w, o in lines) + '{"nodeid": "t.py::f", "wh')  # cut by a kill
    counts, failed = pytest_log.read_log(str(p))
    assert counts == {"passed": 1, "failed": 1, "errors": 2, "skipped": 2, "tests": 5}
    assert failed == ["t.py::b", "t.py::d (setup)", "t.py::a (teardown)"]
    assert pytest_log.read_log(str(tmp_path / "missing.jsonl")) == (
        {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "tests": 0}, [])
