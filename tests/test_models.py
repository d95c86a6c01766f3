"""bionp.nn.models: LeNet's shapes, every rule on it, and a short training run on the bundled
Fashion-MNIST subset padded to 32x32."""

import numpy as np
import pytest

import bionp as bnp
from bionp import data, nn, optim, rules
from bionp.train import Trainer


def _padded(split, n):
    x, y = data.load("fashion-mnist-small", split=split)
    img = np.pad(bnp.asnumpy(x[:n]).reshape(-1, 1, 28, 28), ((0, 0), (0, 0), (2, 2), (2, 2)))
    return bnp.asarray(img.reshape(n, -1).astype(np.float32)), y[:n]


def test_lenet_shapes_and_arguments(xp):
    net = nn.models.lenet(rng=0)
    assert net.shapes == [(1, 32, 32), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5),
                          (120, 1, 1), (120,), (84,), (10,)]
    assert net.n_params == (6 * 25 + 6) + (16 * 6 * 25 + 16) + (120 * 16 * 25 + 120) \
        + (120 * 84 + 84) + (84 * 10 + 10)
    assert net.dtype == np.float32
    rgb = nn.models.lenet(in_channels=3, n_classes=7, rng=0)
    assert rgb.input_shape == (3, 32, 32) and rgb.output_shape == (7,)
    assert [a.name for a in net.activations] == ["relu", "identity", "relu", "identity", "relu",
                                                 "identity", "identity", "identity"]
    with pytest.raises(ValueError, match="at least 32x32.*pad 28x28"):
        nn.models.lenet(input_size=28)
    with pytest.raises(ValueError, match="in_channels"):
        nn.models.lenet(in_channels=0)
    x, _ = _padded("test", 4)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 1, 32, 32\).*\(4, 784\)"):
        net.forward(x[:, :784])


@pytest.mark.parametrize("make", [rules.Backprop, lambda: rules.FeedbackAlignment(rng=1),
                                  lambda: rules.KolenPollack(feedback_optimizer="sgd", rng=1),
                                  lambda: rules.DirectFeedbackAlignment(rng=1),
                                  lambda: rules.WeightPerturbation(rng=1),
                                  lambda: rules.NodePerturbation(rng=1)])
def test_every_rule_steps_lenet(xp, make):
    net = nn.models.lenet(rng=0)
    x, y = _padded("test", 8)
    rule = make()
    opt = optim.SGD(net, lr=0.01)
    grads = rule.gradients(net, x, y, nn.CrossEntropyLoss())
    assert [sorted(g) for g in grads] == [sorted(layer.params()) for layer in net.layers]
    opt.step(grads)
    rule.update_after_step(net, grads, 0.01)


def test_lenet_learns_fashion_mnist_subset(xp):
    x, y = _padded("train", 1500)
    xt, yt = _padded("test", 500)
    net = nn.models.lenet(rng=0)
    tr = Trainer(net, rules.Backprop(), optim.SGD(net, lr=0.05, momentum=0.9),
                 nn.CrossEntropyLoss(), batch_size=50, rng=1, progress=False)
    h = tr.fit(x, y, epochs=2, x_test=xt, labels_test=yt)
    assert h.epoch_loss[-1] < 0.8 * h.epoch_loss[0]
    assert h.test_accuracy[-1] > 60.0  # 10 classes: chance is 10 %
