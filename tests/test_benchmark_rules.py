"""benchmarks/rules.py: its bare-NumPy reference loop does the library's maths, and the
script runs and reports what its docstring promises."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import bionp as bnp
from bionp import nn, optim, rules
from bionp.train import Trainer

from _examples import ROOT, load_benchmark

SCRIPT = os.path.join(ROOT, "benchmarks", "rules.py")


def _load_script():
    return load_benchmark("rules")


def test_minimal_loop_matches_trainer_backprop():
    """Same weights after an epoch (float64) as Trainer + Backprop + SGD in the same order:
    the reference the benchmark times is the same computation, not a cheaper one."""
    bench = _load_script()
    g = bnp.random.Generator(3)
    with bnp.default_dtype("float64"):
        x = bnp.asnumpy(g.random((600, 784), xp=np))
        labels = bnp.asnumpy(g.integers(0, 10, size=600, xp=np))
        t = np.eye(10)[labels]
        net = nn.MLP([784, 500, 10], activation="sigmoid", output_activation="sigmoid", rng=0)
        params = [p.copy() for layer in net.parameters() for p in layer.values()]
        initial = [p.copy() for p in params]
        Trainer(net, rules.Backprop(), optim.SGD(net, lr=0.1), nn.MSELoss(), batch_size=200,
                shuffle=False, progress=False).fit(x, t, epochs=1)
    losses = bench.minimal_backprop_epoch(params, x, t, np.arange(600))
    assert len(losses) == 3 and losses[-1] < losses[0]
    expected = [p for layer in net.parameters() for p in layer.values()]
    for got, want, start in zip(params, expected, initial):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        assert float(np.abs(got - start).max()) > 1e-6  # every parameter was updated


def test_minimal_wp_loop_matches_trainer_weight_perturbation():
    """The weight-perturbation floor the benchmark times is the rule's computation with the
    rule's draws: the same weights after an epoch (float64) as Trainer + WeightPerturbation
    + SGD given generators of one seed."""
    bench = _load_script()
    g = bnp.random.Generator(4)
    with bnp.default_dtype("float64"):
        x = bnp.asnumpy(g.random((600, 784), xp=np))
        t = np.eye(10)[bnp.asnumpy(g.integers(0, 10, size=600, xp=np))]
        net = nn.MLP([784, 500, 10], activation="sigmoid", output_activation="sigmoid", rng=0)
        params = [p.copy() for layer in net.parameters() for p in layer.values()]
        initial = [p.copy() for p in params]
        rule = rules.WeightPerturbation(sigma=0.1, rng=bnp.random.Generator(9))
        Trainer(net, rule, optim.SGD(net, lr=0.1), nn.MSELoss(), batch_size=200,
                shuffle=False, progress=False).fit(x, t, epochs=1)
    drawing = bench.minimal_wp_epoch(params, x, t, np.arange(600), bnp.random.Generator(9))
    assert drawing > 0
    expected = [p for layer in net.parameters() for p in layer.values()]
    for got, want, start in zip(params, expected, initial):
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12)
        assert float(np.abs(got - start).max()) > 1e-6  # every parameter was updated


def test_script_reports_the_references():
    env = dict(os.environ, BIONP_DATA=os.path.join(ROOT, "no-such-dir"))
    r = subprocess.run([sys.executable, SCRIPT, "--n-train", "400", "--repeats", "1",
                        "--dtypes", "float32", "--no-torch", "--rules", "backprop",
                        "weight_perturbation", "--threads", "1"],
                       capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)["results"]["float32"]
    for key in ("numpy_minimal_seconds", "backprop_over_numpy_minimal",
                "weight_noise_draw_seconds", "weight_noise_draw_over_backprop",
                "flop_floor_seconds", "fit_data_check_seconds",
                "weight_perturbation_floor_seconds", "weight_perturbation_over_floor",
                "weight_perturbation_floor_draw_seconds",
                "backprop_over_numpy_minimal_less_fixed_costs",
                "backprop_over_numpy_minimal_less_fixed_costs_and_backup"):
        assert res[key] > 0, key
    # the ratio without the fixed costs and the backup is made of the reported parts
    parts = (res["seconds_per_epoch"]["backprop"]
             - res["backprop_fixed_cost_over_numpy_minimal_seconds"]
             - res["divergence_backup_seconds"]) / res["numpy_minimal_seconds"]
    rounding = 2e-4 / res["numpy_minimal_seconds"] * (1 + parts) + 1e-3  # 4 and 3 decimals
    assert abs(res["backprop_over_numpy_minimal_less_fixed_costs_and_backup"] - parts) < rounding
    assert set(res["median_of_rounds"]) == {"backprop_over_numpy_minimal",
                                            "weight_perturbation_over_backprop",
                                            "weight_perturbation_over_floor"}
    assert all(v > 0 for v in res["median_of_rounds"].values())
    assert res["step_overhead_seconds"]["bionp"] > 0
    assert res["step_overhead_seconds"]["numpy_minimal"] > 0
    fixed = (res["step_overhead_seconds"]["bionp"] - res["step_overhead_seconds"]["numpy_minimal"]
             + res["fit_data_check_seconds"])
    assert abs(res["backprop_fixed_cost_over_numpy_minimal_seconds"] - fixed) < 2e-4


@pytest.mark.parametrize("flag", ["--help"])
def test_script_help(flag):
    r = subprocess.run([sys.executable, SCRIPT, flag], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 0 and "--threads" in r.stdout


def test_the_backup_free_trainer_does_the_same_arithmetic():
    """benchmarks/fixed_costs.py times the divergence backup as backprop's epoch minus that
    of a Trainer whose SGD ignores the backup: both must train to the same bits."""
    costs = load_benchmark("fixed_costs")
    g = bnp.random.Generator(8)
    x = g.random((300, 784))
    t = bnp.data.one_hot(g.integers(0, 10, size=300), 10).astype(x.dtype)
    nets = []
    for opt_cls in (optim.SGD, costs.SGDWithoutBackup):
        net = nn.MLP([784, 500, 10], activation="sigmoid", output_activation="sigmoid", rng=0)
        tr = Trainer(net, rules.Backprop(), opt_cls(net, lr=0.1), nn.MSELoss(), batch_size=100,
                     rng=0, progress=False)
        tr.fit(x, t, epochs=2, labels=False)
        nets.append([bnp.asnumpy(v).tobytes() for p in net.parameters() for v in p.values()])
    assert nets[0] == nets[1]
