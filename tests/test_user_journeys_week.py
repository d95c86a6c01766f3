"""The rest of a researcher's first week (issue 26), written as a user would, on the bundled
subset: Hebbian features with a readout, feedback alignment under Dale's principle with a
volume-dependent learning rate, a noise-robustness curve, a small sweep that is interrupted and
resumed, the parity check, and the diagnostics measured before the first update.  The other
journeys are in test_user_journeys.py (fit, checkpoints, evaluation data) and
test_user_journeys_firstuse.py (alignment, defaults)."""

from __future__ import annotations

import numpy as np
import pytest

import bionp as bnp
from bionp import data, hebbian, metrics, nn, optim, rules
from bionp import plasticity as bio
from bionp.robustness import robustness_curve
from bionp.train import Trainer


@pytest.fixture(scope="module")
def subset():
    with bnp.backend("numpy"):
        x, y = data.load("fashion-mnist-small", split="train")
        xt, yt = data.load("fashion-mnist-small", split="test")
    return x[:600], y[:600], xt[:300], yt[:300]


def test_krotov_hopfield_features_and_a_readout(subset):
    x, y, xt, yt = subset
    kh = hebbian.KrotovHopfield(40, p=2.0, k=2, delta=0.4, lr=0.04, batch_size=50, rng=0,
                                progress=False).fit(x, epochs=5)
    feats = kh.transform(xt, power=4.5)
    assert feats.shape == (300, 40) and np.all(bnp.asnumpy(feats) >= 0)
    clf = hebbian.BioClassifier(kh, n_classes=10, epochs=10, batch_size=50, lr=0.03, rng=1,
                                progress=False).fit(x, y)
    assert clf.score(xt, yt) > 40.0  # ten classes: chance is 10 % (54 % with these seeds)


def test_feedback_alignment_with_dale_and_a_volume_dependent_learning_rate(subset):
    x, y, xt, yt = subset
    net = nn.MLP([784, 32, 10], activation="relu", init="he_normal", rng=0)
    bio.convert(net, bio.BioConfig(transforms=("volume_dependent_lr",),
                                   apply_dales_principle=True), rng=1)
    trainer = Trainer(net, rules.FeedbackAlignment(rng=2), optim.SGD(net, lr=0.5, momentum=0.9),
                      nn.CrossEntropyLoss(), batch_size=50, rng=3, progress=False)
    h = trainer.fit(x, y, epochs=3, x_test=xt, target_test=yt)
    assert len(h.test_accuracy) == 3 and h.test_accuracy[-1] > 40.0, h.test_accuracy
    dale = next(t for t in net.plasticity if t.name == "enforce_dales_principle")
    assert len(dale.state["signs"]) == len(net.layers)
    for layer, sign in zip(net.layers, dale.state["signs"].values()):
        assert np.all(bnp.asnumpy(layer.W) * bnp.asnumpy(sign) >= 0)  # signs kept throughout


def test_a_noise_robustness_curve(subset):
    x, y, xt, yt = subset
    net = nn.MLP([784, 32, 10], activation="relu", init="he_normal", rng=0)
    Trainer(net, rules.Backprop(), optim.SGD(net, lr=0.05, momentum=0.9), nn.CrossEntropyLoss(),
            batch_size=50, rng=1, progress=False).fit(x, y, epochs=2)
    curve = robustness_curve(net, xt, yt, sigmas=(0.0, 0.1, 1.0), repeats=3, rng=2)
    means = [float(np.mean(a)) for a in curve.accuracy]
    assert curve.sigmas == [0.0, 0.1, 1.0] and len(curve.accuracy[1]) == 3
    assert means[0] > means[2] and means[2] < 40.0, means  # large noise destroys the net


def _task(config, seed):
    import os

    stop_at = os.environ.get("BIONP_TEST_STOP_AT")
    if stop_at is not None and config["a"] == int(stop_at):
        raise KeyboardInterrupt  # Ctrl-C in the middle of the sweep
    return {"score": config["a"] * 10 + seed % 7}


def test_a_small_sweep_interrupted_and_resumed(tmp_path, monkeypatch):
    from bionp import sweep

    store = tmp_path / "sweep.jsonl"
    configs = sweep.grid({"a": [1, 2, 3, 4]})
    monkeypatch.setenv("BIONP_TEST_STOP_AT", "3")
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        sweep.run(_task, configs, store=store, scheduler="serial", verbose=False, progress=False)
    done = sweep.load_results(store)
    assert sorted(r["config"]["a"] for r in done) == [1, 2]  # what finished was kept
    monkeypatch.delenv("BIONP_TEST_STOP_AT")
    records = sweep.run(_task, configs, store=store, scheduler="serial", verbose=False,
                        progress=False)
    assert sorted(r["config"]["a"] for r in records) == [1, 2, 3, 4]
    assert len(sweep.load_results(store)) == 4  # the first two were not run again


def test_the_parity_check_as_a_user_runs_it(capsys):
    from bionp.cli import main

    assert main(["parity", "--only", "rules.backprop", "optim", "--summary"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "strict" in out


def test_alignment_measured_before_the_first_update(subset):
    """diagnostics_at_start: index 0 is the untrained network, index e after e epochs."""
    x, y, _, _ = subset
    net = nn.MLP([784, 32, 10], activation="relu", init="he_normal", rng=0)
    rule = rules.KolenPollack(rng=1)
    x_al, y_al = x[:100], y[:100]

    def angle(trainer, epoch):
        return metrics.compare_to_backprop(rule, net, x_al, y_al, nn.CrossEntropyLoss())[-1]

    trainer = Trainer(net, rule, optim.SGD(net, lr=0.05, momentum=0.9), nn.CrossEntropyLoss(),
                      batch_size=50, rng=2, progress=False, diagnostics={"cos_out": angle},
                      diagnostics_at_start=True)
    h = trainer.fit(x, y, epochs=2)
    assert len(h.diagnostics["cos_out"]) == 3
    assert h.diagnostics["cos_out"][0] == pytest.approx(1.0, abs=1e-6)  # KP's output layer: exact
    h = trainer.fit(x, y, epochs=1)  # a second call does not measure "epoch 0" again
    assert len(h.diagnostics["cos_out"]) == 4


def test_accuracies_read_as_the_decimals_they_are(subset):
    x, y, xt, yt = subset
    net = nn.MLP([784, 16, 10], rng=0)
    trainer = Trainer(net, rules.Backprop(), optim.SGD(net, lr=0.1), nn.CrossEntropyLoss(),
                      batch_size=50, rng=1, progress=False)
    h = trainer.fit(x, y, epochs=1, x_test=xt[:250], target_test=yt[:250])
    acc = h.test_accuracy[0]
    assert repr(acc) == repr(round(acc, 1))  # k/250 in % has at most one decimal
