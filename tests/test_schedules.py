"""bionp.schedules: cosine and multistep learning rates per epoch and per step, the Trainer's
schedule hook, checkpoints that resume bit-identically under a schedule, bad input."""

import math

import pytest

import bionp as bnp
from bionp import nn, optim, rules
from bionp.checkpoint import CheckpointMismatchError
from bionp.schedules import CosineSchedule, FunctionSchedule, MultiStepSchedule, as_schedule
from bionp.testing import assert_equal
from bionp.train import Trainer


# -- the rates ------------------------------------------------------------------------

def test_cosine_per_epoch_values():
    s = CosineSchedule(0.1, 10)
    assert s.lr_at(0) == 0.1 and s(0) == 0.1
    assert s.lr_at(5) == pytest.approx(0.05)
    assert s.lr_at(2) == pytest.approx(0.05 * (1 + math.cos(math.pi * 0.2)))
    assert s.lr_at(10) == 0.0 and s.lr_at(25) == 0.0  # after T: min_lr
    # per epoch: the step inside the epoch changes nothing
    assert s.lr_at(3, 7, 8) == s.lr_at(3)
    lrs = [s.lr_at(e) for e in range(10)]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))  # strictly decreasing
    m = CosineSchedule(1.0, 4, min_lr=0.2)
    assert m.lr_at(2) == pytest.approx(0.6) and m.lr_at(4) == 0.2


def test_cosine_per_step_values_and_warmup():
    s = CosineSchedule(0.1, 2, per_step=True)
    assert s.lr_at(0, 0, 4) == 0.1
    # update 2 of 4 in epoch 1: t = 1.5 of T = 2
    assert s.lr_at(1, 2, 4) == pytest.approx(0.05 * (1 + math.cos(math.pi * 0.75)))
    assert s.lr_at(1, 0, 4) == pytest.approx(s.lr_at(1))  # epoch boundaries agree
    w = CosineSchedule(0.1, 5, warmup=2)
    assert [w.lr_at(e) for e in range(3)] == pytest.approx([0.05, 0.1, 0.1])
    ws = CosineSchedule(0.1, 5, warmup=1, per_step=True)
    assert [ws.lr_at(0, k, 4) for k in range(4)] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert ws.lr_at(1, 0, 4) == 0.1 and ws.lr_at(3, 0, 4) == pytest.approx(0.05)


def test_multistep_values():
    s = MultiStepSchedule(0.1, [2, 4], gamma=0.5)
    assert [s.lr_at(e) for e in range(6)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    f = MultiStepSchedule(1.0, [1.5], per_step=True)
    assert [f.lr_at(1, k, 4) for k in range(4)] == pytest.approx([1.0, 1.0, 0.1, 0.1])
    # biotorch's MNIST schedule: /10 at 50 and 75 of 100
    b = MultiStepSchedule(0.01, [50, 75])
    assert (b(49), b(50), b(74), b(75)) == pytest.approx((0.01, 1e-3, 1e-3, 1e-4))


def test_state_dict_and_repr():
    s = CosineSchedule(0.1, 10, warmup=1, per_step=True)
    assert s.state_dict() == {"name": "CosineSchedule", "config": {
        "base_lr": 0.1, "epochs": 10, "min_lr": 0.0, "warmup": 1, "per_step": True}}
    assert repr(s).startswith("CosineSchedule(base_lr=0.1, epochs=10")
    assert MultiStepSchedule(0.1, [3]).state_dict()["config"]["milestones"] == [3]
    assert as_schedule(None) is None and as_schedule(s) is s
    f = as_schedule(lambda e: 0.1 / (e + 1))
    assert isinstance(f, FunctionSchedule) and f.state_dict() is None and f.lr_at(1) == 0.05


@pytest.mark.parametrize("make, err, match", [
    (lambda: CosineSchedule(0, 10), ValueError, r"base_lr must lie in \(0, inf\), got 0"),
    (lambda: CosineSchedule(float("nan"), 10), ValueError, "base_lr must be finite"),
    (lambda: CosineSchedule("0.1", 10), TypeError, "base_lr must be a real number"),
    (lambda: CosineSchedule(0.1, 0), ValueError, "epochs must be >= 1, got 0"),
    (lambda: CosineSchedule(0.1, 2.5), TypeError, "epochs must be an int, got 2.5"),
    (lambda: CosineSchedule(0.1, 10, min_lr=0.2), ValueError, r"min_lr must lie in \[0, 0.1\]"),
    (lambda: CosineSchedule(0.1, 10, warmup=10), ValueError, "warmup must be < epochs=10"),
    (lambda: CosineSchedule(0.1, 10, warmup=-1), ValueError, "warmup must be >= 0"),
    (lambda: CosineSchedule(0.1, 10, per_step="yes"), TypeError, "per_step must be True or False"),
    (lambda: MultiStepSchedule(0.1, [5, 5]), ValueError, "strictly increasing, got \\[5, 5\\]"),
    (lambda: MultiStepSchedule(0.1, [0, 5]), ValueError, r"milestones\[0\] must lie in \(0"),
    (lambda: MultiStepSchedule(0.1, 5), TypeError, "milestones must be a sequence of epochs"),
    (lambda: MultiStepSchedule(0.1, [5], gamma=0), ValueError, r"gamma must lie in \(0, 1\]"),
    (lambda: MultiStepSchedule(0.1, [5], gamma=2), ValueError, r"gamma must lie in \(0, 1\]"),
    (lambda: FunctionSchedule(0.1), TypeError, "a callable epoch -> lr, got float"),
    (lambda: CosineSchedule(0.1, 10).lr_at(-1), ValueError, "epoch must be >= 0, got -1"),
    (lambda: CosineSchedule(0.1, 10).lr_at(0, 4, 4), ValueError,
     "step must be < steps_per_epoch=4"),
    (lambda: CosineSchedule(0.1, 10).lr_at(0, 0, 0), ValueError, "steps_per_epoch must be >= 1"),
    (lambda: CosineSchedule(0.1, 10).lr_at(1.5), TypeError, "epoch must be an int"),
    (lambda: FunctionSchedule(lambda e: -1.0).lr_at(0), ValueError,
     "learning rate the schedule gave for epoch 0 must lie in \\[0, inf\\), got -1.0"),
])
def test_bad_input_refused(make, err, match):
    with pytest.raises(err, match=match):
        make()


# -- in the Trainer -------------------------------------------------------------------

def _setup(schedule, seed=0, **kw):
    net = nn.MLP([6, 8, 3], activation="relu", init="he_normal", rng=seed)
    opt = optim.SGD(net, lr=1.0, momentum=0.9, weight_decay=1e-3)
    rates = []

    def record(trainer):
        rates.append(trainer.optimizer.lr)
        if kw.get("stop_at") == trainer.n_steps:
            raise KeyboardInterrupt

    tr = Trainer(net, rules.FeedbackAlignment(rng=seed + 1), opt, nn.CrossEntropyLoss(),
                 batch_size=8, rng=seed + 2, progress=False, schedule=schedule,
                 after_step=record, **{k: v for k, v in kw.items() if k != "stop_at"})
    return tr, rates


def _data():
    g = bnp.random.Generator(7)
    return g.normal(0, 1, (40, 6), dtype="float32"), g.integers(0, 3, 40)


def test_trainer_sets_the_rate_per_step_and_per_epoch(xp):
    x, y = _data()
    per_step = CosineSchedule(0.05, 3, per_step=True)
    tr, rates = _setup(per_step)
    tr.fit(x, y, epochs=3)
    assert rates == [per_step.lr_at(e, k, 5) for e in range(3) for k in range(5)]
    assert len(set(rates)) == 15
    per_epoch = MultiStepSchedule(0.05, [1, 2], gamma=0.5)
    tr, rates = _setup(per_epoch)
    tr.fit(x, y, epochs=3)
    assert rates == [0.05] * 5 + [0.025] * 5 + [0.0125] * 5
    # a plain function still works (once per epoch)
    tr, rates = _setup(lambda e: 0.01 * (e + 1))
    tr.fit(x, y, epochs=2)
    assert rates == [0.01] * 5 + [0.02] * 5


@pytest.mark.parametrize("schedule", [CosineSchedule(0.05, 3, warmup=1, per_step=True),
                                      MultiStepSchedule(0.05, [1.4], per_step=True),
                                      CosineSchedule(0.05, 3)])
def test_mid_epoch_resume_is_bit_identical(xp, tmp_path, schedule):
    x, y = _data()
    ref, ref_rates = _setup(schedule)
    href = ref.fit(x, y, epochs=3)
    ck = tmp_path / "sched.npz"
    first, first_rates = _setup(schedule, checkpoint=ck, checkpoint_every=3, stop_at=7)
    with pytest.raises(KeyboardInterrupt):  # stopped inside epoch 2 (5 updates per epoch)
        first.fit(x, y, epochs=3)
    again, again_rates = _setup(schedule, checkpoint=ck)
    h = again.fit(x, y, until_epoch=3, resume=True)
    assert first_rates[:6] + again_rates == ref_rates  # updates 7.. are redone from 6
    assert h.loss == href.loss and h.epoch_loss == href.epoch_loss
    for la, lb in zip(ref.net.layers, again.net.layers):
        for k, v in la.params().items():
            assert_equal(v, lb.params()[k])
    assert again.optimizer.lr == ref.optimizer.lr


def test_resume_under_another_schedule_refused(xp, tmp_path):
    x, y = _data()
    ck = tmp_path / "sched.npz"
    tr, _ = _setup(CosineSchedule(0.05, 3), checkpoint=ck)
    tr.fit(x, y, epochs=1)
    for other in (CosineSchedule(0.05, 4), MultiStepSchedule(0.05, [2]), None):
        again, _ = _setup(other, checkpoint=ck)
        before = [v.copy() for v in again.net.layers[0].params().values()]
        with pytest.raises(CheckpointMismatchError, match=r"learning-rate schedule.*CosineSchedule"
                                                          r".*'epochs': 3.*this trainer has"):
            again.fit(x, y, until_epoch=2, resume=True)
        assert again.epoch == 0 and again.n_steps == 0
        for b, v in zip(before, again.net.layers[0].params().values()):
            assert_equal(b, v)


def test_trainer_refuses_a_non_schedule():
    net = nn.MLP([6, 3], rng=0)
    with pytest.raises(TypeError, match="a Schedule or a callable epoch -> lr, got str"):
        Trainer(net, rules.Backprop(), optim.SGD(net, lr=0.1), nn.CrossEntropyLoss(),
                schedule="cosine")
