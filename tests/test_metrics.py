"""bionp.metrics: accuracy, chunked gradient SNR (vs the tutorial's direct formula), cosine."""

import math

import numpy as np
import pytest

import bionp as bnp
from bionp.metrics import (accuracy, alignment_angle, compare_to_backprop, cosine_similarity,
                           gradient_snr)
from bionp.nn import MLP, CrossEntropyLoss, MSELoss
from bionp.random import Generator
from bionp.rules import (Backprop, DirectFeedbackAlignment, FeedbackAlignment, KolenPollack,
                         NodePerturbation, WeightPerturbation)


def test_accuracy(xp):
    out = xp.asarray([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert accuracy(out, xp.asarray([1, 0, 0, 0])) == 75.0
    onehot = xp.asarray([[0, 1], [1, 0], [1, 0], [1, 0]])
    assert accuracy(out, onehot) == 75.0
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        accuracy(out, xp.asarray([1, 0]))


def _direct_snr(rule, net, x, y, loss, layer, eps=1e-3):
    """The tutorial's formula on the stacked per-sample gradients (small sizes only)."""
    per = []
    for i in range(x.shape[0]):
        g = rule.gradients(net, x[i:i + 1], y[i:i + 1], loss)[layer]
        per.append(np.concatenate([bnp.asnumpy(g["W"]).ravel(), bnp.asnumpy(g["b"]).ravel()]))
    per = np.stack(per)
    return float(np.mean(np.abs(per.mean(0)) / (per.std(0) + eps)))


@pytest.mark.parametrize("make", [Backprop, lambda: FeedbackAlignment(rng=0),
                                  lambda: DirectFeedbackAlignment(rng=0),
                                  lambda: KolenPollack(weight_decay=0.2, rng=0)])
def test_snr_chunked_equals_direct(xp, make):
    g = Generator(0)
    x = g.normal(0, 1, (23, 5), dtype="float64")
    y = g.integers(0, 3, 23)
    net = MLP([5, 4, 4, 3], rng=1, dtype="float64")
    rule = make()
    # the rule's whole update (KP: with its decay) on request ...
    snr = gradient_snr(rule, net, x, y, MSELoss(), chunk_size=5, include_regularization=True)
    for layer in range(3):
        want = _direct_snr(rule, net, x, y, MSELoss(), layer)
        assert abs(snr[layer] - want) < 1e-9 * max(1.0, want)
    # ... and by default its error-driven part (KP without the decay: FA's with the same B)
    snr = gradient_snr(rule, net, x, y, MSELoss(), chunk_size=5)
    error_only = rule
    if isinstance(rule, KolenPollack):
        error_only = FeedbackAlignment(rng=0)
        error_only.B = rule.B
    for layer in range(3):
        want = _direct_snr(error_only, net, x, y, MSELoss(), layer)
        assert abs(snr[layer] - want) < 1e-9 * max(1.0, want)


def test_snr_node_perturbation_fast_path(xp):
    """The per-sample moments' mean is the batch estimate drawn with the same noise, and the
    SNR agrees statistically with the per-sample loop (fresh noise per sample)."""
    from bionp.metrics import gradient_moments

    g = Generator(0)
    x = g.normal(0, 1, (1000, 10), dtype="float64")
    y = g.integers(0, 5, 1000)
    net = MLP([10, 20, 5], rng=1, dtype="float64")
    n, sums, _ = gradient_moments(NodePerturbation(rng=5), net, x, y, MSELoss(), chunk_size=1000)
    batch = NodePerturbation(rng=5).gradients(net, x, y, MSELoss())
    for s_l, g_l in zip(sums, batch):
        for k in g_l:
            assert np.allclose(bnp.asnumpy(s_l[k]) / n, bnp.asnumpy(g_l[k]), rtol=1e-9, atol=1e-12)
    if xp is not np:
        return
    # average over 3 noise seeds each: one draw's SNR varies ~15% between seeds
    fast = np.mean([gradient_snr(NodePerturbation(rng=s), net, x, y, MSELoss(), chunk_size=128)
                    for s in range(3)], axis=0)
    slow = []
    for s in range(10, 13):
        slow_rule = NodePerturbation(rng=s)
        slow_rule.per_sample_deltas = lambda *a: None
        slow.append(gradient_snr(slow_rule, net, x, y, MSELoss()))
    slow = np.mean(slow, axis=0)
    for a, b in zip(fast, slow):
        assert abs(a - b) < 0.2 * b
    wp = gradient_snr(WeightPerturbation(rng=0), net, x[:200], y[:200], MSELoss())
    bp = gradient_snr(Backprop(), net, x[:200], y[:200], MSELoss())
    assert wp[0] < bp[0]


def test_snr_on_strict_backend(cpu_xp):
    g = Generator(0)
    x = g.normal(0, 1, (10, 5))
    y = g.integers(0, 3, 10)
    net = MLP([5, 4, 3], rng=1)
    for rule in (Backprop(), NodePerturbation(rng=0), WeightPerturbation(rng=0)):
        snr = gradient_snr(rule, net, x, y, CrossEntropyLoss(), chunk_size=4)
        assert len(snr) == 2 and all(math.isfinite(s) and s >= 0 for s in snr)


def test_cosine_and_angle(xp):
    a = [{"W": xp.asarray([[1.0, 0.0]]), "b": xp.asarray([0.0])}]
    b = [{"W": xp.asarray([[1.0, 1.0]]), "b": xp.asarray([0.0])}]
    assert cosine_similarity(a, b) == pytest.approx([1 / math.sqrt(2)])
    assert alignment_angle(a, b) == pytest.approx([45.0])
    assert cosine_similarity(a[0]["W"], a[0]["W"]) == pytest.approx([1.0])
    g = Generator(0)
    x = g.normal(0, 1, (12, 5))
    y = g.integers(0, 3, 12)
    net = MLP([5, 4, 3], rng=1)
    cos = compare_to_backprop(Backprop(), net, x, y, MSELoss())
    assert cos == pytest.approx([1.0, 1.0], abs=1e-6)
    fa = compare_to_backprop(FeedbackAlignment(rng=0), net, x, y, MSELoss())
    assert fa[1] == pytest.approx(1.0, abs=1e-6) and fa[0] < 0.999


def test_compare_to_backprop_reference(xp):
    g = Generator(0)
    x = g.normal(0, 1, (12, 5))
    y = g.integers(0, 3, 12)
    net = MLP([5, 4, 3], rng=1)
    fa = FeedbackAlignment(rng=0)
    cos = compare_to_backprop(fa, net, x, y, MSELoss(), reference=fa)
    assert cos == pytest.approx([1.0, 1.0], abs=1e-6)


def test_alignment_on_a_conv_net_skips_parameter_free_layers(xp):
    """Pooling and flatten layers have no gradient: nan; the output layer of FA is exact."""
    import math

    import bionp as bnp
    from bionp import metrics, nn, rules

    net = nn.models.lenet(rng=0)
    x = bnp.random.Generator(0).normal(0, 1, (8, 1, 32, 32), dtype="float32", xp=xp)
    y = xp.arange(8) % 10
    cos = metrics.compare_to_backprop(rules.FeedbackAlignment(rng=1), net, x, y,
                                      nn.CrossEntropyLoss())
    kinds = [type(layer).__name__ for layer in net.layers]
    assert len(cos) == len(kinds)
    for c, kind in zip(cos, kinds):
        assert math.isnan(c) == (kind in ("MaxPool2d", "AvgPool2d", "Flatten")), (kind, c)
    assert cos[-1] == pytest.approx(1.0, abs=1e-5)
