"""ResidualBlock and resnet20: float64 gradchecks (both shortcut options), shapes, rules'
refusals, training and checkpoints."""

import numpy as np
import pytest

import bionp as bnp
from bionp import nn, optim, rules
from bionp.testing import network_gradient_errors, numerical_gradient, relative_error
from bionp.train import Trainer


@pytest.mark.parametrize("cin, cout, stride, shortcut", [(3, 3, 1, "A"), (2, 4, 2, "A"),
                                                        (3, 5, 2, "B"), (3, 3, 1, "B")])
def test_block_gradcheck_float64(xp, cin, cout, stride, shortcut):
    block = nn.ResidualBlock(cin, cout, stride=stride, shortcut=shortcut, activation="tanh",
                             rng=1, dtype="float64")
    g = bnp.random.Generator(2)
    for k, v in block.params().items():  # batch norm away from its (1, 0) start
        if k.endswith("gamma") or k.endswith("beta"):
            v[...] = g.normal(0.8 if k.endswith("gamma") else 0.0, 0.3, tuple(v.shape),
                              dtype="float64")
    x = g.normal(0, 1, (3, cin, 5, 6), dtype="float64")
    out_shape = (3,) + block.output_shape_for((cin, 5, 6))
    R = g.normal(0, 1, out_shape, dtype="float64")

    def loss():
        return xp.sum(block.forward_cache(x)[0] * R)

    z, cache = block.forward_cache(x)
    assert tuple(z.shape) == out_shape
    grads, dx = block.backward(x, R, cache=cache)
    assert set(grads) == set(block.params())
    for k, p in block.params().items():
        assert relative_error(grads[k], numerical_gradient(loss, p)) <= 1e-6, k
    assert relative_error(dx, numerical_gradient(loss, x)) <= 1e-6


def test_block_evaluation_pass_and_bad_arguments(xp):
    block = nn.ResidualBlock(2, 4, stride=2, rng=0, dtype="float64")
    x = bnp.random.Generator(3).normal(0, 1, (4, 2, 6, 6), dtype="float64")
    # fresh running statistics (0, 1): evaluation is BN with the identity map
    eps = 1e-5
    u = block.conv1.forward(x) / np.sqrt(1 + eps)
    u = xp.maximum(u, 0)
    main = block.conv2.forward(u) / np.sqrt(1 + eps)
    short = xp.zeros_like(main)
    short[:, 1:3] = x[:, :, ::2, ::2]
    assert relative_error(block.forward(x), main + short) <= 1e-12
    with pytest.raises(ValueError, match="option A pads the channels evenly"):
        nn.ResidualBlock(2, 5, stride=2)
    with pytest.raises(ValueError, match="shortcut must be 'A'"):
        nn.ResidualBlock(2, 2, shortcut="C")
    with pytest.raises(ValueError, match="expects 2 input channels, got 3"):
        block.forward(xp.ones((1, 3, 6, 6)))


def test_small_resnet_gradcheck_with_cross_entropy(xp):
    net = nn.Sequential([nn.Conv2d(1, 2, 3, padding=1, bias=False, rng=0, dtype="float64"),
                         nn.BatchNorm2d(2, dtype="float64"),
                         nn.ResidualBlock(2, 2, activation="tanh", rng=1, dtype="float64"),
                         nn.ResidualBlock(2, 4, stride=2, activation="tanh", rng=2,
                                          dtype="float64"),
                         nn.AvgPool2d(3), nn.Flatten(), nn.Dense(4, 3, rng=3, dtype="float64")],
                        ["identity", "tanh", "tanh", "tanh", "identity", "identity", "identity"],
                        input_shape=(1, 6, 6))
    g = bnp.random.Generator(4)
    x, y = g.normal(0, 1, (5, 1, 6, 6), dtype="float64"), g.integers(0, 3, 5)
    grads = rules.Backprop().gradients(net, x, y, nn.CrossEntropyLoss())
    errors = network_gradient_errors(net, x, y, nn.CrossEntropyLoss(), grads)
    assert len(errors) == 1 + 2 + 6 + 6 + 2
    assert max(errors.values()) <= 1e-6, errors


def test_resnet20_shapes_refusals_and_a_training_step(xp):
    net = nn.models.resnet20(rng=0)
    assert net.shapes[0] == (3, 32, 32) and net.shapes[-4] == (64, 8, 8)
    assert net.shapes[-1] == (10,)
    # conv 432 + BN 32; stage 1: 3 x (2 x 2304 + 64); stage 2: 13952 + 2 x 18560;
    # stage 3: 55552 + 2 x 73984; dense 650: 269,722 (the paper's "0.27M")
    assert net.n_params == 269_722
    assert sum(isinstance(layer, nn.ResidualBlock) for layer in net.layers) == 9
    option_b = 269_722 + (16 * 32 + 64) + (32 * 64 + 128)  # two 1x1 convolutions + BN
    assert nn.models.resnet20(shortcut="B", rng=0).n_params == option_b
    g = bnp.random.Generator(5)
    x, y = g.uniform(0, 1, (4, 3, 32, 32)), g.integers(0, 10, 4)
    loss = nn.CrossEntropyLoss()
    # FA, KP, sign symmetry, DFA and weight mirrors train it (tests/test_residual_feedback.py,
    # tests/test_residual_dfa_wm.py); the perturbation rules refuse
    for rule, what in ((rules.WeightPerturbation(rng=1), "WeightPerturbation compares"),
                       (rules.NodePerturbation(rng=1), "NodePerturbation perturbs")):
        with pytest.raises(ValueError, match=what):
            rule.gradients(net, x, y, loss)
    # refused before the training pass: no running statistic moved
    np.testing.assert_array_equal(bnp.asnumpy(net.layers[1].running_mean), 0)
    np.testing.assert_array_equal(bnp.asnumpy(net.layers[2].bn1.running_var), 1)
    opt = optim.SGD(net, lr=0.05, momentum=0.9)
    grads = rules.Backprop().gradients(net, x, y, loss)
    opt.step(grads)
    assert bool(bnp.to_scalar(xp.all(xp.isfinite(net.forward(x)))))
    with pytest.raises(ValueError, match="multiple of 4"):
        nn.models.resnet20(input_size=30)


def test_residual_checkpoint_resume_is_bit_identical(tmp_path):
    g = bnp.random.Generator(6)
    x, y = g.uniform(0, 1, (24, 1 * 8 * 8)), g.integers(0, 3, 24)

    def setup():
        net = nn.Sequential([nn.Conv2d(1, 2, 3, padding=1, bias=False, rng=0),
                             nn.BatchNorm2d(2), nn.ResidualBlock(2, 4, stride=2, rng=1),
                             nn.AvgPool2d(4), nn.Flatten(), nn.Dense(4, 3, rng=2)],
                            ["identity", "relu", "relu", "identity", "identity", "identity"],
                            input_shape=(1, 8, 8))
        return net, optim.SGD(net, lr=0.05, momentum=0.9)

    net, opt = setup()
    Trainer(net, rules.Backprop(), opt, nn.CrossEntropyLoss(), batch_size=8, rng=1,
            progress=False).fit(x, y, epochs=3)
    ref = {k: bnp.asnumpy(v).copy() for k, v in net.layers[2].state_dict().items()}
    ck = tmp_path / "res.npz"
    net, opt = setup()
    Trainer(net, rules.Backprop(), opt, nn.CrossEntropyLoss(), batch_size=8, rng=1,
            progress=False, checkpoint=ck).fit(x, y, epochs=1)
    net, opt = setup()
    Trainer(net, rules.Backprop(), opt, nn.CrossEntropyLoss(), batch_size=8, rng=1,
            progress=False, checkpoint=ck).fit(x, y, until_epoch=3, resume=True)
    now = net.layers[2].state_dict()
    assert set(now) == set(ref) and "bn1.running_var" in now
    for k in ref:
        np.testing.assert_array_equal(bnp.asnumpy(now[k]), ref[k])
