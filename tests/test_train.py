"""Trainer: history, evaluation, atomic checkpoints, bit-identical resume, divergence stop."""

import json
import os

import numpy as np
import pytest

import bionp as bnp
from bionp import nn, optim, rules
from bionp.testing import assert_equal
from bionp.train import Trainer, load_checkpoint, save_checkpoint


def _data(n=240, d=12, c=3, seed=0):
    g = bnp.random.Generator(seed)
    x = g.normal(size=(n, d))
    w = g.normal(size=(d, c))
    y = bnp.get_xp().argmax(x @ w, axis=1)
    return x, y


def _setup(rule_name="backprop", seed=1, lr=0.1):
    net = nn.MLP([12, 16, 3], activation="tanh", output_activation="identity", rng=seed)
    rule = {"backprop": rules.Backprop(), "fa": rules.FeedbackAlignment(rng=seed + 1),
            "kp": rules.KolenPollack(weight_decay=0.1, feedback_optimizer="sgd", rng=seed + 1),
            "kp_mirror": rules.KolenPollack(weight_decay=0.05, feedback_optimizer="mirror",
                                            rng=seed + 1),
            "np": rules.NodePerturbation(sigma=0.05, rng=seed + 1)}[rule_name]
    opt = optim.SGD(net, lr=lr, momentum=0.9)
    return net, rule, opt, nn.CrossEntropyLoss()


def test_fit_learns_and_records(xp):
    x, y = _data()
    net, rule, opt, loss = _setup()
    tr = Trainer(net, rule, opt, loss, batch_size=20, rng=3, progress=False)
    h = tr.fit(x, y, labels=y, epochs=4, x_test=x, labels_test=y, target_test=y)
    assert len(h.loss) == 4 * 12 and len(h.test_accuracy) == 4 and len(h.epoch_seconds) == 4
    assert h.test_accuracy[-1] > 80.0
    assert h.epoch_loss[-1] < h.epoch_loss[0]
    assert h.stopped is None and h.epochs_done == 4
    json.dumps(h.to_dict())


def test_same_seed_same_training_on_cpu_backends():
    res = {}
    for name in ("numpy", "strict"):
        with bnp.backend(name):
            x, y = _data()
            net, rule, opt, loss = _setup("fa")
            Trainer(net, rule, opt, loss, batch_size=20, rng=3, progress=False).fit(x, y, epochs=2)
            res[name] = [bnp.asnumpy(layer.W) for layer in net.layers]
    for a, b in zip(res["numpy"], res["strict"]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("rule_name", ["backprop", "kp", "kp_mirror", "np"])
def test_resume_is_bit_identical(xp, tmp_path, rule_name):
    x, y = _data()
    net, rule, opt, loss = _setup(rule_name)
    Trainer(net, rule, opt, loss, batch_size=20, rng=5, progress=False).fit(x, y, epochs=4)
    ref = [layer.W.copy() for layer in net.layers]

    ck = tmp_path / "run.npz"
    net, rule, opt, loss = _setup(rule_name)
    Trainer(net, rule, opt, loss, batch_size=20, rng=5, progress=False, checkpoint=ck).fit(x, y, epochs=2)
    # a fresh process would rebuild everything from scratch, with other seeds even
    net, rule, opt, loss = _setup(rule_name, seed=99)
    tr = Trainer(net, rule, opt, loss, batch_size=20, rng=77, progress=False, checkpoint=ck)
    h = tr.fit(x, y, until_epoch=4, resume=True)
    assert h.epochs_done == 4 and len(h.loss) == 4 * 12
    for a, b in zip(ref, net.layers):
        assert_equal(a, b.W)


@pytest.mark.parametrize("rule_name,shuffle", [("kp_mirror", True), ("fa", "once"),
                                               ("np", False)])
def test_mid_epoch_checkpoint_resumes_bit_identically(xp, tmp_path, rule_name, shuffle):
    """Saved from after_step at update 17 (epoch 2, update 5 of 12), loaded into objects built
    with other seeds: the rest of the run equals the uninterrupted one bit for bit."""
    from bionp import plasticity as bio

    def make(seed, **kw):
        net, rule, opt, loss = _setup(rule_name, seed=seed)
        cfg = bio.BioConfig(apply_dales_principle=True, transforms=("fuzzy_learning_rates",))
        bio.convert(net, cfg, rng=seed + 10)
        return Trainer(net, rule, opt, loss, batch_size=20, rng=seed + 5, shuffle=shuffle,
                       progress=False, **kw)

    x, y = _data()
    ref = make(1)
    ref.fit(x, y, epochs=3, labels=y)
    ck = tmp_path / "mid.npz"

    def save(trainer):
        if trainer.n_steps == 17:
            trainer.save(ck)

    make(1, after_step=save).fit(x, y, epochs=2)
    tr = make(40, checkpoint=ck)
    h = tr.fit(x, y, until_epoch=3, labels=y, resume=True)
    assert (h.epochs_done, len(h.loss), tr.n_steps) == (3, 36, 36)
    assert h.loss == ref.history.loss and h.epoch_loss == ref.history.epoch_loss
    assert h.train_accuracy[-1] == ref.history.train_accuracy[-1]
    for a, b in zip(ref.net.layers, tr.net.layers):
        assert_equal(a.W, b.W)
        assert_equal(a.b, b.b)
    assert ref.rng.get_state() == tr.rng.get_state()
    assert tr.net.plasticity.find("enforce_dales_principle").violations(tr.net) == 0


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    x, y = _data()
    net, rule, opt, loss = _setup()
    ck = tmp_path / "ck.npz"
    save_checkpoint(ck, net, optimizer=opt, rule=rule)
    before = ck.read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt("interrupted mid-write")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(ck, net, optimizer=opt, rule=rule)
    assert ck.read_bytes() == before  # the good checkpoint is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]  # no temporary left behind


def test_checkpoint_mismatch_and_garbage(tmp_path):
    net, rule, opt, loss = _setup()
    ck = tmp_path / "ck.npz"
    save_checkpoint(ck, net)
    other = nn.MLP([12, 7, 3], rng=0)
    with pytest.raises(ValueError, match="shape"):
        load_checkpoint(ck, other)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_checkpoint(bad, net)
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a bionp checkpoint"):
        load_checkpoint(tmp_path / "plain.npz", net)


def test_divergence_on_nan_loss(xp):
    """The loss turns NaN at the 4th update: training stops and the weights that gave
    the last finite loss (those before the 3rd step) are restored."""
    x, y = _data()
    net, _, opt, loss = _setup()

    class NaNAfter(rules.Backprop):
        calls = 0
        snapshots = []

        def gradients(self, net, x, target, loss_fn):
            g = super().gradients(net, x, target, loss_fn)
            NaNAfter.calls += 1
            NaNAfter.snapshots.append([layer.W.copy() for layer in net.layers])
            if NaNAfter.calls >= 4:
                self.last_loss = self.last_loss * float("nan")
            return g

    tr = Trainer(net, NaNAfter(), opt, loss, batch_size=20, rng=3, progress=False)
    h = tr.fit(x, y, epochs=2)
    assert h.stopped is not None and "nan" in h.stopped.lower() and "epoch 1, update 4" in h.stopped
    assert len(h.loss) == 3 and h.epochs_done == 0
    for a, layer in zip(NaNAfter.snapshots[2], net.layers):
        assert_equal(a, layer.W)


def test_divergence_on_non_finite_weights(xp):
    x, y = _data()
    net, rule, opt, loss = _setup()
    good = [layer.W.copy() for layer in net.layers]

    def poison(trainer):
        trainer.net.layers[0].W[0, 0] = float("nan")

    tr = Trainer(net, rule, opt, loss, batch_size=20, rng=3, progress=False, after_step=poison)
    h = tr.fit(x, y, epochs=1)
    assert h.stopped is not None
    for layer in net.layers:
        assert bool(bnp.to_scalar(xp.all(xp.isfinite(layer.W))))
    del good


def test_bad_arguments():
    net, rule, opt, loss = _setup()
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(net, rule, opt, loss, batch_size=0)
    with pytest.raises(TypeError, match="gradients"):
        Trainer(net, object(), opt, loss)
    tr = Trainer(net, rule, opt, loss, batch_size=500, progress=False)
    x, y = _data()
    with pytest.raises(ValueError, match="no complete batch"):
        tr.fit(x, y, epochs=1)
    with pytest.raises(ValueError, match="samples"):
        tr.fit(x, y[:10], epochs=1)


def test_accuracies_from_integer_or_one_hot_targets(xp):
    """No labels= / labels_test=: the accuracies come from the targets, on every backend."""
    from bionp import data

    x, y = _data()
    net, rule, opt, loss = _setup()
    ref = Trainer(net, rule, opt, loss, batch_size=20, rng=3, progress=False)
    h_ref = ref.fit(x, y, labels=y, epochs=2, x_test=x, labels_test=y, target_test=y)
    net, rule, opt, loss = _setup()
    t = data.one_hot(y, 3)
    tr = Trainer(net, rule, opt, loss, batch_size=20, rng=3, progress=False)
    h = tr.fit(x, t, epochs=2, validation_data=(x, t))
    assert h.train_accuracy == h_ref.train_accuracy and h.test_accuracy == h_ref.test_accuracy
    assert len(h.test_loss) == 2
    with pytest.raises(ValueError, match="labels_test"):
        tr.fit(x, t, x_test=x, target_test=t * 0.9)
