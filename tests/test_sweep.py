"""bionp.sweep: grids, seeds, the result store, resume, failures, Dask vs serial, analysis, CLI."""

import json
import math
import os
import socket
import subprocess
import sys
import time
import uuid
import warnings

import pytest

import bionp.sweep as sw
from bionp.sweep.store import ResultStore, new_header

try:
    import cloudpickle

    # Worker processes need not import this test module: ship its functions by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
except (ImportError, AttributeError):  # pragma: no cover
    pass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _have_distributed():
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


needs_dask = pytest.mark.skipif(not _have_distributed(), reason="dask.distributed not installed")


# -- task functions -------------------------------------------------------------------------------

def tiny(config, seed):
    """Deterministic metrics that depend on the config and the seed (integers: exact)."""
    return {"score": config["a"] * 1000 + seed % 1000, "seed_mod": seed % 7,
            "curve": [config["a"], seed % 11]}


def noisy_float(config, seed):
    from bionp.random import Generator

    g = Generator(seed)
    import numpy as np

    x = g.normal(0.0, 1.0, size=64, xp=np, dtype=np.float64)
    return {"mean": float(x.mean()) + config["a"], "np_scalar": np.float32(1.5), "arr": np.arange(3)}


class Counting:
    """Counts its calls with one marker file per call (works across processes)."""

    def __init__(self, folder, fail_on=None, interrupt_after=None, kill_once=None):
        self.folder = str(folder)
        self.fail_on = fail_on
        self.interrupt_after = interrupt_after
        self.kill_once = kill_once

    def calls(self, a=None):
        names = [n for n in os.listdir(self.folder) if n.startswith("call-")]
        return len(names) if a is None else sum(n.startswith(f"call-{a}-") for n in names)

    def __call__(self, config, seed):
        a = config["a"]
        if self.interrupt_after is not None and self.calls() >= self.interrupt_after:
            raise KeyboardInterrupt
        if self.kill_once is not None and a == self.kill_once:
            marker = os.path.join(self.folder, "killed")
            if not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)  # the worker process dies mid-task
        open(os.path.join(self.folder, f"call-{a}-{uuid.uuid4().hex}"), "w").close()
        if self.fail_on is not None and a == self.fail_on:
            raise ValueError(f"bad config a={a}")
        return tiny(config, seed)


def _keys(records):
    return [(r["config_hash"], r["repeat"]) for r in records]


def _metrics(records):
    return {(r["config_hash"], r["repeat"]): (r["seed"], r["metrics"]) for r in records}


# -- grid and configs -----------------------------------------------------------------------------

def test_grid_is_the_cartesian_product_in_a_fixed_order():
    g = sw.grid({"lr": [0.1, 0.01], "rule": ("bp", "fa"), "n": range(2)})
    assert len(g) == 8
    assert g[0] == {"lr": 0.1, "rule": "bp", "n": 0}
    assert g[1] == {"lr": 0.1, "rule": "bp", "n": 1}
    assert g[-1] == {"lr": 0.01, "rule": "fa", "n": 1}
    assert sw.grid({"lr": [0.1, 0.01], "rule": ("bp", "fa"), "n": range(2)}) == g
    both = sw.grid([{"rule": ["bp"]}, {"rule": ["wp"], "sigma": [0.1, 0.2]}])
    assert both == [{"rule": "bp"}, {"rule": "wp", "sigma": 0.1}, {"rule": "wp", "sigma": 0.2}]


@pytest.mark.parametrize("bad, match", [
    ({}, "empty"),
    ([], "grid\\(\\) takes"),
    ({"lr": []}, "'lr' has an empty list"),
    ({"lr": 0.1}, "must be a list.*'lr': \\[0.1\\]"),
    ({"rule": "bp"}, "must be a list"),
    ({1: [1]}, "names must be str"),
    ({"f": [print]}, "'f' is not JSON-serialisable"),
    ({"x": [float("nan")]}, "'x' is not JSON-serialisable"),
    ({"lr": [0.1, 0.1]}, "same as config 0"),
])
def test_grid_bad_input_is_a_clear_error(bad, match):
    with pytest.raises(sw.SweepConfigError, match=match):
        sw.grid(bad)


def test_config_hash_is_canonical():
    assert sw.config_hash({"a": 1, "b": "x"}) == sw.config_hash({"b": "x", "a": 1})
    assert sw.config_hash({"a": 1}) != sw.config_hash({"a": 1.0})
    import numpy as np

    assert sw.config_hash({"a": np.int64(3), "t": (1, 2)}) == sw.config_hash({"a": 3, "t": [1, 2]})


def test_task_seeds_depend_only_on_rng_config_and_repeat():
    from bionp.sweep.configs import rng_state

    root = rng_state(0)
    h1, h2 = sw.config_hash({"a": 1}), sw.config_hash({"a": 2})
    s = sw.task_seed(root, h1, 0)
    assert s == sw.task_seed(rng_state(0), h1, 0)
    assert len({s, sw.task_seed(root, h1, 1), sw.task_seed(root, h2, 0),
                sw.task_seed(rng_state(1), h1, 0)}) == 4
    assert 0 <= s < 2**64
    # same seeds whichever configs share the sweep and in whatever order
    r1 = sw.run(tiny, [{"a": 1}, {"a": 2}], repeats=2, scheduler="serial", verbose=False)
    r2 = sw.run(tiny, [{"a": 3}, {"a": 2}, {"a": 1}], repeats=2, scheduler="serial", verbose=False)
    m2 = _metrics(r2)
    assert all(m2[k] == v for k, v in _metrics(r1).items())


# -- serial runs, the store, resume ---------------------------------------------------------------

def test_serial_run_writes_one_record_per_task_and_resumes(tmp_path):
    store = tmp_path / "s.jsonl"
    task = Counting(tmp_path)
    configs = sw.grid({"a": [1, 2, 3]})
    recs = sw.run(task, configs, repeats=2, store=store, scheduler="serial", verbose=False)
    assert task.calls() == 6 and len(recs) == 6
    assert [(r["config"]["a"], r["repeat"]) for r in recs] == [(a, r) for a in (1, 2, 3) for r in (0, 1)]
    lines = store.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "bionp-sweep-store" and header["version"] == 2
    assert all(line.endswith('"}') and ',"crc32":"' in line for line in lines)
    rec = json.loads(lines[1])
    for field in ("config", "config_hash", "repeat", "seed", "metrics", "seconds", "status",
                  "versions", "host", "finished", "traceback"):
        assert field in rec
    assert rec["status"] == "ok" and set(rec["versions"]) >= {"bionp", "numpy", "python"}
    again = sw.run(task, configs, repeats=2, store=store, scheduler="serial", verbose=False)
    assert task.calls() == 6, "a rerun must not redo finished tasks"
    assert _metrics(again) == _metrics(recs)
    more = sw.run(task, configs, repeats=3, store=store, scheduler="serial", verbose=False)
    assert task.calls() == 9 and len(more) == 9
    assert len(store.read_text().splitlines()) == 1 + 9
    on_disk = [json.loads(x) for x in store.read_text().splitlines()[1:]]
    assert all(r.pop("crc32") for r in on_disk)
    assert sw.load_results(store) == on_disk


def test_a_failing_config_is_recorded_and_the_sweep_goes_on(tmp_path):
    store = tmp_path / "s.jsonl"
    task = Counting(tmp_path, fail_on=2)
    recs = sw.run(task, sw.grid({"a": [1, 2, 3]}), store=store, scheduler="serial", verbose=False)
    assert [r["status"] for r in recs] == ["ok", "error", "ok"]
    assert "ValueError: bad config a=2" in recs[1]["error"]
    assert "Traceback" in recs[1]["traceback"] and "bad config" in recs[1]["traceback"]
    # retry_errors=False keeps the error; the default retries it, and the new record wins
    sw.run(task, sw.grid({"a": [1, 2, 3]}), store=store, scheduler="serial", verbose=False,
           retry_errors=False)
    assert task.calls(2) == 1
    task.fail_on = None
    recs = sw.run(task, sw.grid({"a": [1, 2, 3]}), store=store, scheduler="serial", verbose=False)
    assert task.calls(2) == 2 and task.calls() == 4
    assert [r["status"] for r in recs] == ["ok"] * 3
    assert [r["status"] for r in sw.load_results(store, history=True)] == ["ok", "error", "ok", "ok"]
    assert len(sw.load_results(store)) == 3


def test_bad_metrics_are_an_error_record_and_numpy_values_are_converted():
    recs = sw.run(lambda c, s: [1, 2], [{"a": 1}], scheduler="serial", verbose=False)
    assert recs[0]["status"] == "error" and "must return a dict" in recs[0]["error"]
    recs = sw.run(lambda c, s: {"f": object()}, [{"a": 1}], scheduler="serial", verbose=False)
    assert recs[0]["status"] == "error" and "not JSON-serialisable" in recs[0]["error"]
    recs = sw.run(noisy_float, [{"a": 1}], scheduler="serial", verbose=False)
    assert recs[0]["metrics"]["np_scalar"] == 1.5 and recs[0]["metrics"]["arr"] == [0, 1, 2]


def test_metrics_given_as_arrays_of_any_backend_are_stored_as_numbers(xp):
    import bionp as bnp

    def fn(config, seed):
        a = xp.asarray([1.0, 2.0], dtype=xp.float64)
        return {"vec": a, "total": xp.sum(a), "n": config["a"]}

    rec = sw.run(fn, [{"a": 1}], scheduler="serial", verbose=False)[0]
    assert rec["status"] == "ok", rec["traceback"]
    assert rec["metrics"] == {"vec": [1.0, 2.0], "total": 3.0, "n": 1}
    assert bnp.backend_name() in ("numpy", "strict", "cupy")


def test_a_task_choosing_its_backend_and_dtype_does_not_leak_them():
    import bionp as bnp

    def fn(config, seed):
        bnp.use(config["backend"])
        bnp.set_dtype("float64")
        return {"dtype": bnp.get_dtype().name}

    recs = sw.run(fn, [{"backend": "strict"}], scheduler="serial", verbose=False)
    assert recs[0]["metrics"] == {"dtype": "float64"}
    assert (bnp.backend_name(), bnp.get_dtype().name) == ("numpy", "float32")
    with bnp.backend("strict"):  # a scoped choice of the caller is neither lost nor made global
        sw.run(fn, [{"backend": "numpy"}], scheduler="serial", verbose=False)
        assert bnp.backend_name() == "strict"
    assert (bnp.backend_name(), bnp.get_dtype().name) == ("numpy", "float32")


def test_load_results_filters_by_status(tmp_path):
    store = tmp_path / "s.jsonl"
    sw.run(Counting(tmp_path, fail_on=2), sw.grid({"a": [1, 2, 3]}), store=store,
           scheduler="serial", verbose=False)
    assert [r["config"]["a"] for r in sw.load_results(store, status="ok")] == [1, 3]
    assert [r["config"]["a"] for r in sw.load_results(store, status="error")] == [2]
    with pytest.raises(ValueError, match="status must be"):
        sw.load_results(store, status="failed")
    with pytest.raises(FileNotFoundError, match="no sweep result store"):
        sw.load_results(tmp_path / "missing.jsonl")


def test_an_interrupted_serial_sweep_resumes_without_redoing_finished_tasks(tmp_path):
    store = tmp_path / "s.jsonl"
    task = Counting(tmp_path, interrupt_after=4)
    configs = sw.grid({"a": [1, 2, 3, 4, 5]})
    with pytest.raises(KeyboardInterrupt):
        sw.run(task, configs, repeats=2, store=store, scheduler="serial", verbose=False)
    assert task.calls() == 4
    assert len(sw.load_results(store)) == 4
    task.interrupt_after = None
    recs = sw.run(task, configs, repeats=2, store=store, scheduler="serial", verbose=False)
    assert task.calls() == 10, "the 4 finished tasks were run again"
    assert len(recs) == 10 and len(set(_keys(recs))) == 10
    assert all(r["status"] == "ok" for r in recs)
    ref = sw.run(tiny, configs, repeats=2, scheduler="serial", verbose=False)
    assert _metrics(recs) == _metrics(ref)


def test_truncated_last_line_is_ignored_reported_and_repaired(tmp_path):
    store = tmp_path / "s.jsonl"
    configs = sw.grid({"a": [1, 2, 3]})
    ref = sw.run(tiny, configs, store=store, scheduler="serial", verbose=False)
    text = store.read_text()
    good = text.splitlines(keepends=True)
    store.write_text("".join(good[:-1]) + good[-1][: len(good[-1]) // 2])  # a crash mid-write
    with pytest.warns(sw.TruncatedRecordWarning, match="truncated last record"):
        recs = sw.load_results(store)
    assert recs == ref[:2]
    with pytest.warns(sw.TruncatedRecordWarning):
        again = sw.run(tiny, configs, store=store, scheduler="serial", verbose=False)
    assert _metrics(again) == _metrics(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(sw.load_results(store)) == 3
    lines = store.read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(x) for x in lines)


def _flip_digit(line: str, old: str, new: str) -> str:
    assert old in line
    return line.replace(old, new, 1)


def test_a_changed_byte_in_any_line_is_refused_by_its_checksum(tmp_path):
    store = tmp_path / "s.jsonl"
    sw.run(tiny, [{"a": 1}, {"a": 2}], store=store, scheduler="serial", verbose=False)
    good = store.read_text()
    header, records = sw.read_store(store)
    assert "crc32" not in header and all("crc32" not in r for r in records)
    lines = good.splitlines(keepends=True)
    cases = {
        "a date in the header (still valid JSON)": (0, '"created":"2', '"created":"3'),
        "a number in a record": (1, '"repeat":0', '"repeat":1'),
        "the checksum itself": (2, ',"crc32":"', ',"crc32":"0'),
    }
    for what, (i, old, new) in cases.items():
        bad = lines.copy()
        bad[i] = _flip_digit(bad[i], old, new)
        store.write_text("".join(bad))
        with pytest.raises(sw.StoreCorruptError, match=f"line {i + 1}"):
            sw.read_store(store)
        with pytest.raises(sw.StoreCorruptError):  # a sweep refuses it too, and keeps it
            sw.run(tiny, [{"a": 3}], store=store, scheduler="serial", verbose=False)
        assert store.read_text() == "".join(bad), what
    store.write_text(lines[0] + lines[1].replace(',"crc32":"', ',"crc":"'))
    with pytest.raises(sw.StoreCorruptError, match="no crc32 checksum"):
        sw.read_store(store)


def test_version_1_stores_without_checksums_are_read_and_appended_as_version_1(tmp_path):
    store = tmp_path / "old.jsonl"
    sw.run(tiny, [{"a": 1}], store=store, scheduler="serial", verbose=False, rng=0)
    header, records = sw.read_store(store)
    v1 = [dict(header, version=1), *records]
    store.write_text("".join(json.dumps(x, separators=(",", ":")) + "\n" for x in v1))
    assert sw.read_store(store) == (v1[0], records)
    sw.run(tiny, [{"a": 1}, {"a": 2}], store=store, scheduler="serial", verbose=False, rng=0)
    lines = store.read_text().splitlines()
    assert len(lines) == 3 and not any("crc32" in line for line in lines)
    assert [r["config"]["a"] for r in sw.read_store(store)[1]] == [1, 2]


def test_store_errors_are_clear(tmp_path):
    other = tmp_path / "other.jsonl"
    other.write_text('{"hello": 1}\n')
    with pytest.raises(sw.StoreError, match="not a bionp sweep result store"):
        sw.run(tiny, [{"a": 1}], store=other, scheduler="serial", verbose=False)
    newer = tmp_path / "newer.jsonl"
    newer.write_text(json.dumps({"format": "bionp-sweep-store", "version": 99}) + "\n")
    with pytest.raises(sw.IncompatibleStoreError, match="format version 99.*newer bionp"):
        sw.run(tiny, [{"a": 1}], store=newer, scheduler="serial", verbose=False)
    with pytest.raises(sw.IncompatibleStoreError):
        sw.load_results(newer)
    store = tmp_path / "s.jsonl"
    sw.run(tiny, [{"a": 1}], store=store, scheduler="serial", verbose=False, rng=0)
    with pytest.raises(sw.StoreError, match="another root seed.*`seed = ...` in a sweep file"):
        sw.run(tiny, [{"a": 2}], store=store, scheduler="serial", verbose=False, rng=1)
    recs = sw.run(tiny, [{"a": 1}], store=store, scheduler="serial", verbose=False, rng=None)
    assert recs[0]["seed"] == sw.load_results(store)[0]["seed"]  # rng=None reuses the store's
    with ResultStore(store, new_header({"entropy": 0, "spawn_key": []})):
        with pytest.raises(sw.StoreLockedError, match="in use by another running sweep"):
            sw.run(tiny, [{"a": 3}], store=store, scheduler="serial", verbose=False)
    lines = store.read_text().splitlines()
    store.write_text("\n".join([lines[0], "{not json", lines[1]]) + "\n")
    with pytest.raises(sw.StoreCorruptError, match="line 2"):
        sw.load_results(store)


def test_unknown_parameters_and_other_bad_arguments(tmp_path):
    def fn(config, seed):
        return {"x": config["lr"]}

    fn.params = ["lr", "rule"]
    with pytest.raises(sw.SweepConfigError, match="unknown parameter 'lrr'.*Did you mean 'lr'"):
        sw.run(fn, [{"lrr": 0.1}], scheduler="serial", verbose=False)
    with pytest.raises(sw.SweepConfigError, match="unknown parameter 'epochs'"):
        sw.run(tiny, [{"a": 1, "epochs": 2}], params=["a"], scheduler="serial", verbose=False)
    with pytest.raises(sw.SweepConfigError, match="unknown parameter 'zz'"):
        sw.run(fn, [{"lr": 0.1}], defaults={"zz": 1}, scheduler="serial", verbose=False)
    recs = sw.run(fn, [{"lr": 0.1}], defaults={"rule": "bp", "lr": 1.0}, scheduler="serial", verbose=False)
    assert recs[0]["config"] == {"rule": "bp", "lr": 0.1} and recs[0]["metrics"] == {"x": 0.1}
    with pytest.raises(sw.SweepConfigError, match="no configs"):
        sw.run(tiny, [], scheduler="serial", verbose=False)
    with pytest.raises(sw.SweepConfigError, match="pass bionp.sweep.grid"):
        sw.run(tiny, {"a": [1, 2]}, scheduler="serial", verbose=False)
    with pytest.raises(sw.SweepConfigError, match="parameter 'f' is not JSON-serialisable"):
        sw.run(tiny, [{"a": 1, "f": lambda: 0}], scheduler="serial", verbose=False)
    with pytest.raises(sw.SweepConfigError, match="repeats"):
        sw.run(tiny, [{"a": 1}], repeats=0, scheduler="serial", verbose=False)
    with pytest.raises(sw.SweepConfigError, match="n_workers must be an int >= 1"):
        sw.run(tiny, [{"a": 1}], n_workers=0, verbose=False)
    with pytest.raises(sw.SweepError, match="either client= or scheduler="):
        sw.run(tiny, [{"a": 1}], client=object(), scheduler="serial", verbose=False)


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@needs_dask
def test_unreachable_scheduler_is_a_clear_error_within_the_timeout():
    t0 = time.perf_counter()
    with pytest.raises(sw.SchedulerUnreachableError, match="could not connect.*within 2 s"):
        sw.run(tiny, [{"a": 1}], scheduler=f"tcp://127.0.0.1:{_free_port()}", timeout=2, verbose=False)
    assert time.perf_counter() - t0 < 10
    with pytest.raises(sw.SchedulerUnreachableError, match="does not exist"):
        sw.run(tiny, [{"a": 1}], scheduler="no-such-scheduler.json", verbose=False)


def test_serial_path_with_dask_hidden(monkeypatch, tmp_path):
    ref = sw.run(tiny, sw.grid({"a": [1, 2]}), repeats=2, scheduler="serial", verbose=False)
    for name in ("dask", "dask.distributed", "distributed"):
        monkeypatch.setitem(sys.modules, name, None)
    recs = sw.run(tiny, sw.grid({"a": [1, 2]}), repeats=2, verbose=False)  # default: falls back
    assert _metrics(recs) == _metrics(ref)
    with pytest.raises(sw.DaskUnavailableError, match="pip install 'bionp\\[distributed\\]'"):
        sw.run(tiny, [{"a": 1}], scheduler="local", verbose=False)
    with pytest.raises(sw.DaskUnavailableError, match="needs dask.distributed"):
        sw.run(tiny, [{"a": 1}], scheduler="tcp://127.0.0.1:1", verbose=False)


def test_importing_bionp_sweep_does_not_import_dask():
    code = ("import sys, bionp, bionp.sweep; bionp.sweep.grid({'a': [1]});"
            "print(any(m == 'dask' or m.startswith(('dask.', 'distributed')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": ROOT})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_cached_makes_once_per_process():
    made = []
    key = ("test", uuid.uuid4().hex)
    assert sw.cached(key, lambda: made.append(1) or "v") == "v"
    assert sw.cached(key, lambda: made.append(1) or "w") == "v"
    assert made == [1]


# -- analysis -------------------------------------------------------------------------------------

def _fake(rule, lr, repeat, acc, status="ok"):
    return {"config": {"rule": rule, "lr": lr}, "config_hash": f"{rule}{lr}", "repeat": repeat,
            "status": status, "metrics": {"acc": [10.0, acc]} if status == "ok" else {}}


def test_summarize_best_and_plots(tmp_path):
    recs = [_fake("bp", 0.1, 0, 80.0), _fake("bp", 0.1, 1, 82.0), _fake("bp", 0.01, 0, 70.0),
            _fake("fa", 0.1, 0, 75.0), _fake("fa", 0.1, 1, 77.0), _fake("fa", 0.01, 0, 60.0),
            _fake("fa", 0.01, 1, 0.0, status="error")]
    with pytest.warns(UserWarning, match="1 failed record"):
        rows = sw.summarize(recs, "acc", by=["rule", "lr"])
    assert rows[0] == {"rule": "bp", "lr": 0.1, "mean": 81.0, "std": pytest.approx(math.sqrt(2)),
                       "n": 2, "n_nan": 0, "min": 80.0, "max": 82.0}
    assert rows[1]["std"] == 0.0 and rows[1]["n"] == 1
    with pytest.warns(UserWarning):
        by_rule = sw.summarize(recs, "acc", by="rule")
    assert by_rule[0]["mean"] == pytest.approx((80 + 82 + 70) / 3)
    with pytest.warns(UserWarning):
        top = sw.best(recs, "acc")
    assert (top["rule"], top["lr"]) == ("bp", 0.1)
    with pytest.warns(UserWarning):
        low = sw.best(recs, "acc", mode="min")
    assert (low["rule"], low["lr"]) == ("fa", 0.01)
    ok = [r for r in recs if r["status"] == "ok"]
    with pytest.raises(KeyError, match="known metrics: \\['acc'\\]"):
        sw.summarize(ok, "loss")
    with pytest.raises(ValueError, match="mode"):
        sw.best(ok, "acc", mode="top")
    assert "81 ± 1.4" in sw.format_summary(sw.summarize(ok, "acc"))
    p1 = sw.plot_metric_vs_param(ok, "acc", "lr", tmp_path / "lr.png", hue="rule")
    p2 = sw.plot_rule_comparison(ok, "acc", tmp_path / "rules.png")
    assert p1 is not None and p2 is not None
    for name in ("lr.png", "rules.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- sweep files and the CLI ----------------------------------------------------------------------

TASKS_PY = '''
def train(config, seed):
    return {"score": config["a"] * 1000 + seed % 1000, "epochs": config["epochs"]}
train.params = ["a", "epochs"]
'''


def test_sweep_file_toml_and_json_via_cli(tmp_path, capsys):
    from bionp.cli import main

    (tmp_path / "tasks.py").write_text(TASKS_PY)
    (tmp_path / "s.toml").write_text(
        'function = "tasks.py:train"\nrepeats = 2\nscheduler = "serial"\n'
        '[defaults]\nepochs = 3\n[grid]\na = [1, 2]\n')
    assert main(["sweep", str(tmp_path / "s.toml"), "--metric", "score", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "4 tasks: 4 ok, 0 errors" in out and "best" in out
    recs = sw.load_results(tmp_path / "s.jsonl")
    assert len(recs) == 4 and recs[0]["config"] == {"epochs": 3, "a": 1}
    (tmp_path / "s.json").write_text(json.dumps({
        "function": "tasks.py:train", "store": "out/j.jsonl", "repeats": 2,
        "defaults": {"epochs": 3}, "grid": {"a": [1, 2]}}))
    assert main(["sweep", str(tmp_path / "s.json"), "--scheduler", "serial", "--quiet"]) == 0
    assert _metrics(sw.load_results(tmp_path / "out" / "j.jsonl")) == _metrics(recs)
    (tmp_path / "bad.toml").write_text('function = "tasks.py:train"\ngrdi = {a = [1]}\n')
    assert main(["sweep", str(tmp_path / "bad.toml"), "--quiet"]) == 2
    assert "unknown key(s) ['grdi']" in capsys.readouterr().err
    (tmp_path / "typo.toml").write_text('function = "tasks.py:train"\nscheduler = "serial"\n'
                                        '[grid]\nb = [1]\n')
    assert main(["sweep", str(tmp_path / "typo.toml"), "--quiet"]) == 2
    assert "unknown parameter 'b'" in capsys.readouterr().err


# -- Dask -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    if not _have_distributed():
        pytest.skip("dask.distributed not installed")
    from dask.distributed import Client

    cluster = sw.local_cluster(2, dashboard_address=None)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@needs_dask
def test_local_cluster_results_equal_the_serial_run_exactly(client, tmp_path):
    configs = sw.grid({"a": [1, 2, 3, 4]})
    ref = sw.run(noisy_float, configs, repeats=2, scheduler="serial", verbose=False)
    recs = sw.run(noisy_float, configs, repeats=2, client=client, store=tmp_path / "d.jsonl",
                  verbose=False)
    assert _metrics(recs) == _metrics(ref)
    assert _keys(recs) == _keys(ref)
    assert os.getpid() not in {r["pid"] for r in recs}, "the tasks should run in worker processes"
    assert _metrics(sw.load_results(tmp_path / "d.jsonl")) == _metrics(ref)


@needs_dask
def test_default_starts_and_closes_its_own_local_cluster(capsys):
    configs = sw.grid({"a": [1, 2, 3]})
    recs = sw.run(noisy_float, configs, n_workers=2, progress=False)
    assert _metrics(recs) == _metrics(sw.run(noisy_float, configs, scheduler="serial", verbose=False))
    err = capsys.readouterr().err
    assert "local Dask cluster with 2 single-threaded worker processes" in err and "dashboard" in err


@needs_dask
def test_a_killed_worker_loses_and_duplicates_nothing(client, tmp_path):
    store = tmp_path / "k.jsonl"
    task = Counting(tmp_path, kill_once=3)
    configs = sw.grid({"a": [1, 2, 3, 4, 5, 6]})
    recs = sw.run(task, configs, client=client, store=store, verbose=False)
    assert os.path.exists(tmp_path / "killed"), "the worker was not killed"
    assert [r["status"] for r in recs] == ["ok"] * 6
    stored = sw.load_results(store, history=True)
    assert sorted(_keys(stored)) == sorted(_keys(recs)) and len(stored) == 6
    assert _metrics(stored) == _metrics(sw.run(tiny, configs, scheduler="serial", verbose=False))


@needs_dask
def test_an_interrupted_dask_sweep_resumes(client, tmp_path):
    store = tmp_path / "i.jsonl"
    task = Counting(tmp_path)
    configs = sw.grid({"a": [1, 2, 3, 4, 5, 6]})
    seen = []

    def stop_after_two(record):
        seen.append(record)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sw.run(task, configs, client=client, store=store, callback=stop_after_two, verbose=False)
    done = sw.load_results(store)
    assert len(done) == 2
    done_a = {r["config"]["a"] for r in done}
    time.sleep(0.5)  # let cancelled tasks settle
    before = {a: task.calls(a) for a in done_a}
    recs = sw.run(task, configs, client=client, store=store, verbose=False)
    assert {a: task.calls(a) for a in done_a} == before, "finished configs were run again"
    assert len(recs) == 6 and all(r["status"] == "ok" for r in recs)
    assert len(sw.load_results(store, history=True)) == 6


@needs_dask
def test_gpu_worker_pool_gives_each_worker_its_own_device():
    """On the CPU: only the per-worker environment is checked (no CuPy call is made)."""
    from dask.distributed import Client

    cluster = sw.gpu_cluster(devices=[0, 1], dashboard_address=None)
    try:
        with Client(cluster) as c:
            c.wait_for_workers(2, timeout=30)
            envs = c.run(lambda: (os.environ.get("CUDA_VISIBLE_DEVICES"),
                                  os.environ.get("BIONP_BACKEND"), os.environ.get("OMP_NUM_THREADS")))
    finally:
        cluster.close()
    assert sorted(envs.values()) == [("0", "cupy", "1"), ("1", "cupy", "1")]
    with pytest.raises(sw.SweepError, match="distinct"):
        sw.gpu_cluster(devices=[0, 0])


@needs_dask
def test_a_function_from_a_file_workers_cannot_import_runs_on_the_cluster(client, tmp_path):
    from bionp.sweep.sweepfile import import_function

    (tmp_path / "filetasks.py").write_text(TASKS_PY)
    fn = import_function("filetasks.py:train", str(tmp_path))
    configs = sw.grid({"a": [1, 2], "epochs": [1]})
    recs = sw.run(fn, configs, client=client, verbose=False)
    assert [r["status"] for r in recs] == ["ok", "ok"], recs[0]["traceback"]
    assert _metrics(recs) == _metrics(sw.run(fn, configs, scheduler="serial", verbose=False))
    with pytest.raises(sw.SweepError, match="cannot be pickled"):
        import threading

        lock = threading.Lock()
        sw.run(lambda c, s: {"x": lock.locked()}, [{"a": 1}], client=client, verbose=False)


@needs_dask
def test_workers_that_cannot_import_bionp_are_a_clear_error(client, monkeypatch):
    """A task on such a worker would crash it; the sweep checks every worker first."""
    import types

    from bionp.sweep import clusters

    fake = types.ModuleType("module_only_in_the_driver")
    exec("def check():\n    return {}\n", fake.__dict__)
    fake.check.__module__ = fake.__name__
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    monkeypatch.setattr(clusters, "_worker_check", fake.check)
    with pytest.raises(sw.SweepError, match="2 of 2 Dask workers cannot run bionp tasks.*"
                                            "module_only_in_the_driver"):
        sw.run(tiny, [{"a": 1}], client=client, verbose=False)


def _report_random_threads(config, seed):
    import bionp.random

    return {"threads": bionp.random.get_num_threads()}


def test_a_task_runs_with_one_generator_thread_and_the_setting_is_restored():
    import bionp.random

    before = bionp.random.get_num_threads()
    bionp.random.set_num_threads(3)
    try:
        out = sw.execute_task(_report_random_threads, {}, 0, blas_threads=1)
        assert out["status"] == "ok" and out["metrics"] == {"threads": 1}
        assert bionp.random.get_num_threads() == 3
    finally:
        bionp.random.set_num_threads(before)
    assert sw.BLAS_ENV["BIONP_NUM_THREADS"] == "1"
