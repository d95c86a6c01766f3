"""Host synchronisations of a training step, counted on the strict stand-in.

On a GPU every read of a device value (``to_scalar``, ``asnumpy``) waits for all queued
kernels.  The design needs, per ``Trainer`` step, one: the batch loss (history and the
divergence stop); per epoch one more (are the weights finite?) plus the accuracy reads of
evaluation; per ``fit`` two (the data's values, checked once: NaN/Inf and the label range).
A Krotov-Hopfield update needs one (whether the k-th strongest current is tied), a
``partial_fit`` call one more (its input's values), and an epoch record a handful.  These tests hold the library to those numbers.
"""

from __future__ import annotations

import pytest

import bionp as bnp
from bionp import hebbian, nn, optim, rules
from bionp.dendritic import DendriticLayer
from bionp.testing import count_host_syncs
from bionp.train import Trainer

STEPS = 10
PER_STEP, PER_EPOCH, PER_FIT = 1, 1, 2


def _data():
    g = bnp.random.Generator(0)
    return g.uniform(0, 1, (200, 20), dtype="float32"), g.integers(0, 3, 200)


RULES = {
    "backprop": rules.Backprop,
    "feedback_alignment": lambda: rules.FeedbackAlignment(rng=1),
    "direct_feedback_alignment": lambda: rules.DirectFeedbackAlignment(rng=1),
    "kolen_pollack": lambda: rules.KolenPollack(rng=1),
    "weight_perturbation": lambda: rules.WeightPerturbation(rng=1),
    "node_perturbation": lambda: rules.NodePerturbation(rng=1),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_a_trainer_step_of_every_rule_syncs_once(rule):
    with bnp.backend("strict"):
        x, y = _data()
        net = nn.MLP([20, 16, 3], rng=0)
        trainer = Trainer(net, RULES[rule](), optim.SGD(net, lr=0.1), nn.CrossEntropyLoss(),
                          batch_size=20, rng=2, progress=False)
        with count_host_syncs() as syncs:
            trainer.fit(x, y, epochs=1, labels=False)
        assert syncs.count == STEPS * PER_STEP + PER_EPOCH + PER_FIT, syncs.sites
        with count_host_syncs() as syncs:
            trainer.fit(x, y, epochs=2, labels=False)
        assert syncs.count == 2 * (STEPS * PER_STEP + PER_EPOCH) + PER_FIT, syncs.sites


def test_dendritic_step_with_resampling_and_noisy_step_sync_once():
    with bnp.backend("strict"):
        x, y = _data()
        for layer in (DendriticLayer(20, 4, 5, 3, steps_to_resample=2, rng=0),
                      nn.NoisyDense(20, 4, sigma=0.1, rng=0),
                      nn.LearnableNoiseDense(20, 4, per_weight=True, rng=0)):
            net = nn.Sequential([layer, nn.Dense(4, 3, rng=1)], ["tanh", "identity"])
            trainer = Trainer(net, rules.Backprop(), optim.Adam(net, lr=0.01),
                              nn.CrossEntropyLoss(), batch_size=20, rng=2, progress=False)
            with count_host_syncs() as syncs:
                trainer.fit(x, y, epochs=1, labels=False)
            assert syncs.count == STEPS * PER_STEP + PER_EPOCH + PER_FIT, (layer, syncs.sites)


def test_evaluation_adds_its_reads_per_epoch_only():
    with bnp.backend("strict"):
        x, y = _data()
        net = nn.MLP([20, 16, 3], rng=0)
        trainer = Trainer(net, rules.Backprop(), optim.SGD(net, lr=0.1), nn.CrossEntropyLoss(),
                          batch_size=20, rng=2, progress=False)
        with count_host_syncs() as syncs:
            trainer.fit(x, y, epochs=1, x_test=x[:50], target_test=y[:50])
        # per fit: + x_test and target_test checked; per epoch: training and test accuracy,
        # test loss
        assert syncs.count == STEPS + PER_EPOCH + PER_FIT + 2 + 3, syncs.sites


def test_a_krotov_hopfield_update_syncs_once_and_partial_fit_checks_its_input():
    with bnp.backend("strict"):
        x, _ = _data()
        kh = hebbian.KrotovHopfield(30, rng=0, batch_size=20, progress=False)
        kh.fit(x[:20], epochs=1)  # initialisation
        with count_host_syncs() as syncs:
            for i in range(STEPS):
                kh.partial_fit(x[20 * i:20 * (i + 1)])
        assert syncs.count == 2 * STEPS, syncs.sites  # each call checks its own input
        with count_host_syncs() as syncs:
            kh.fit(x, epochs=1)
        assert syncs.count <= STEPS + 8, syncs.sites  # the data once, the epoch's record


def test_bad_values_are_still_refused_before_training():
    """Checked once per fit, not skipped: NaN data and labels out of range never train."""
    with bnp.backend("strict"):
        x, y = _data()
        net = nn.MLP([20, 16, 3], rng=0)
        before = [bnp.asnumpy(v).copy() for p in net.parameters() for v in p.values()]
        trainer = Trainer(net, rules.Backprop(), optim.SGD(net, lr=0.1), nn.CrossEntropyLoss(),
                          batch_size=20, rng=2, progress=False)
        bad_x = bnp.asarray(bnp.asnumpy(x).copy())
        bad_x[150, 3] = float("nan")
        with pytest.raises(ValueError, match="x contains non-finite values"):
            trainer.fit(bad_x, y, epochs=1)
        with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
            trainer.fit(x, y + 1, epochs=1)
        with pytest.raises(ValueError, match="x_test contains non-finite values"):
            trainer.fit(x, y, epochs=1, x_test=bad_x, target_test=y)
        after = [bnp.asnumpy(v) for p in net.parameters() for v in p.values()]
        for a, b in zip(before, after):
            assert (a == b).all()
        assert trainer.epoch == 0


def test_outside_the_trainer_every_call_checks_its_values():
    with bnp.backend("strict"):
        net = nn.MLP([4, 3], rng=0)
        x = bnp.asarray([[0.0, 1.0, float("inf"), 0.0]])
        with pytest.raises(ValueError, match="x contains non-finite values"):
            net.forward(x)
        with pytest.raises(ValueError, match="labels must lie"):
            nn.CrossEntropyLoss()(net.forward(bnp.asarray([[0.0, 1.0, 2.0, 0.0]])),
                                  bnp.asarray([7]))
