"""Feedback matrices of FA/KP on conv nets: shapes, fans of a 4-D kernel (in*kh*kw), and
init="like_weights" (each B drawn as its layer drew W)."""

import numpy as np
import pytest

import bionp as bnp
from bionp import nn, rules


def _lenet(init="he_uniform"):
    return nn.models.lenet(init=init, rng=0)


@pytest.mark.parametrize("cls", [rules.FeedbackAlignment, rules.KolenPollack])
def test_like_weights_draws_each_b_with_its_layers_initialiser(xp, cls):
    net = _lenet("he_uniform")
    B = cls(init="like_weights", rng=3).initialize(net).B
    assert [None if b is None else tuple(b.shape) for b in B] == \
        [None, None, (16, 6, 5, 5), None, (120, 16, 5, 5), None, (84, 120), (10, 84)]
    for l, fan_in in ((2, 6 * 25), (4, 16 * 25), (6, 120), (7, 84)):
        b = bnp.asnumpy(B[l])
        bound = np.sqrt(6.0 / fan_in)  # he_uniform by the kernel's fan-in in*kh*kw
        assert b.dtype == np.float32
        assert np.abs(b).max() <= bound and np.abs(b).max() > 0.9 * bound
        assert abs(b.std() - bound / np.sqrt(3)) < 0.1 * bound / np.sqrt(3)
        assert not np.array_equal(b, bnp.asnumpy(net.layers[l].W))  # drawn anew, not copied


def test_like_weights_follows_xavier_and_named_initialisers_use_kernel_fans(xp):
    net = _lenet("xavier_uniform")
    B = rules.FeedbackAlignment(init="like_weights", rng=3).initialize(net).B
    bound = np.sqrt(6.0 / (6 * 25 + 16 * 25))  # xavier: fan_in + fan_out of (16, 6, 5, 5)
    assert abs(float(bnp.asnumpy(B[2]).std()) - bound / np.sqrt(3)) < 0.1 * bound / np.sqrt(3)
    he = rules.FeedbackAlignment(init="he_normal", rng=3).initialize(_lenet()).B
    assert abs(float(bnp.asnumpy(he[4]).std()) - np.sqrt(2.0 / 400)) < 0.05 * np.sqrt(2.0 / 400)
    default = rules.FeedbackAlignment(rng=3).initialize(_lenet()).B  # N(0, 0.1^2) whatever the fans
    assert abs(float(bnp.asnumpy(default[4]).std()) - 0.1) < 0.005


def test_like_weights_same_seed_same_b(xp):
    a = rules.FeedbackAlignment(init="like_weights", rng=5).initialize(_lenet()).B
    b = rules.FeedbackAlignment(init="like_weights", rng=5).initialize(_lenet()).B
    for x, y in zip(a, b):
        assert (x is None and y is None) or np.array_equal(bnp.asnumpy(x), bnp.asnumpy(y))


def test_bad_feedback_init_refused_early():
    with pytest.raises(ValueError, match="unknown initialiser 'he_unifrom'.*known:.*he_uniform"):
        rules.FeedbackAlignment(init="he_unifrom")
    with pytest.raises(ValueError, match="unknown initialiser"):
        rules.KolenPollack(init="bogus")
    # DFA's D has another shape than any W: drawn by name only
    with pytest.raises(ValueError, match="unknown initialiser 'like_weights'"):
        rules.DirectFeedbackAlignment(init="like_weights")

    net = nn.MLP([4, 3, 2], rng=0)
    layer = net.layers[1]
    del layer.init
    with pytest.raises(ValueError, match=r"init='like_weights' draws B\[1\].*no 'init' attribute"):
        rules.FeedbackAlignment(init="like_weights").initialize(net)
