"""KolenPollack's alignment phase: an extra decay of W and B for the first ``align_steps``
updates, so W - B shrinks by (1 - lr (lambda + lambda_a)) per step, then by (1 - lr lambda);
its step count survives checkpoints; bad values are refused with nothing changed."""

import numpy as np
import pytest

import bionp as bnp
from bionp import optim
from bionp.nn import MLP, CrossEntropyLoss, MSELoss
from bionp.random import Generator
from bionp.rules import KolenPollack
from bionp.testing import assert_equal
from bionp.train import Trainer


def _gap(kp, net):
    return [bnp.asnumpy(layer.W) - bnp.asnumpy(B) for B, layer in zip(kp.B[1:], net.layers[1:])]


def test_W_minus_B_shrinks_by_the_align_decay_then_by_the_decay(xp):
    g = Generator(3)
    x, y = g.normal(0, 1, (64, 6), dtype="float64"), g.integers(0, 3, 64)
    net = MLP([6, 8, 8, 3], rng=1, dtype="float64")
    kp = KolenPollack(weight_decay=0.01, align_decay=0.2, align_steps=30,
                      feedback_optimizer="sgd", rng=2).initialize(net)
    opt, lr = optim.SGD(net, lr=0.5), 0.5
    before = _gap(kp, net)
    for step in range(50):
        assert kp.decay == pytest.approx(0.21 if step < 30 else 0.01)
        grads = kp.gradients(net, x, y, MSELoss())
        opt.step(grads)
        kp.update_after_step(net, grads, opt.lr)
    assert kp.updates == 50
    factor = (1 - lr * 0.21) ** 30 * (1 - lr * 0.01) ** 20
    for b, a in zip(before, _gap(kp, net)):
        np.testing.assert_allclose(a, factor * b, rtol=1e-8, atol=1e-12)
    # the same rule without the phase keeps far more of the random start
    assert factor < 0.05 * (1 - lr * 0.01) ** 50


def test_mirror_optimiser_counts_updates_and_resumes_bit_identically(xp, tmp_path):
    g = Generator(0)
    x = g.normal(0, 1, (120, 12))
    y = bnp.get_xp().argmax(x @ g.normal(0, 1, (12, 3)), axis=1)

    def make(seed, **kw):
        net = MLP([12, 16, 16, 3], activation="relu", output_activation="identity", rng=seed)
        return Trainer(net, KolenPollack(align_decay=0.5, align_steps=9, rng=seed + 1),
                       optim.SGD(net, lr=0.05, momentum=0.9, nesterov=True), CrossEntropyLoss(),
                       batch_size=20, rng=seed + 2, progress=False, **kw)

    ref = make(1)
    ref.fit(x, y, epochs=3)  # 18 updates: the phase ends inside epoch 2
    assert ref.rule.updates == 18 and ref.rule.decay == ref.rule.weight_decay
    ck = tmp_path / "kp.npz"
    make(1, checkpoint=ck).fit(x, y, epochs=1)  # saved after 6 updates, inside the phase
    tr = make(50, checkpoint=ck)
    tr.fit(x, y, until_epoch=3, resume=True)
    assert tr.rule.updates == 18 and tr.history.loss == ref.history.loss
    for a, b in zip(ref.rule.B[1:], tr.rule.B[1:]):
        assert_equal(a, b)


@pytest.mark.parametrize("kw, match", [
    ({"align_decay": -0.1}, "align_decay"), ({"align_decay": float("nan")}, "align_decay"),
    ({"align_decay": "big"}, "align_decay"),
    ({"align_steps": -1}, "align_steps must be >= 0, got -1"),
    ({"align_steps": 2.5}, "align_steps must be an int"),
])
def test_bad_align_settings_are_refused(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        KolenPollack(**kw)


def test_bad_update_count_in_a_state_changes_nothing(xp):
    net = MLP([5, 4, 3], rng=1, dtype="float64")
    kp = KolenPollack(align_decay=0.1, align_steps=5, feedback_optimizer="sgd", rng=0)
    x, y = Generator(0).normal(0, 1, (8, 5), dtype="float64"), Generator(1).integers(0, 3, 8)
    kp.gradients(net, x, y, MSELoss())
    kp.update_after_step(net, None, 0.1)
    good = kp.state_dict()
    assert good["updates"] == 1
    B = bnp.asnumpy(kp.B[1]).copy()
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(ValueError, match="'updates' must be an int >= 0"):
            kp.load_state_dict({**good, "updates": bad, "B": [None, kp.B[1] * 0]})
        assert kp.updates == 1
        np.testing.assert_array_equal(bnp.asnumpy(kp.B[1]), B)
    kp.load_state_dict({**good, "updates": np.int64(4)})  # as read back from a file
    assert kp.updates == 4 and kp.decay == pytest.approx(kp.weight_decay + 0.1)
    cfg = kp.get_config()
    assert cfg["align_decay"] == 0.1 and cfg["align_steps"] == 5
    assert KolenPollack(**{k: v for k, v in cfg.items() if k != "name"}).get_config() == cfg
