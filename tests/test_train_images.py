"""Trainer.fit on images (N, C, H, W) for networks with a shaped input_shape: the same
training as flat rows, evaluation, predict, checkpoints and mid-epoch resume, bad shapes."""

import numpy as np
import pytest

import bionp as bnp
from bionp import nn, optim, rules
from bionp.testing import assert_equal
from bionp.train import Trainer


def _net(seed=0):
    layers = [nn.Conv2d(1, 3, 3, rng=seed + 1), nn.MaxPool2d(2), nn.Flatten(),
              nn.Dense(27, 3, init="he_normal", rng=seed + 2)]
    return nn.Sequential(layers, ["relu", "identity", "identity", "identity"],
                         input_shape=(1, 8, 8))


def _images(n=40, seed=3):
    g = bnp.random.Generator(seed)
    return g.normal(0, 1, (n, 1, 8, 8), dtype="float32"), g.integers(0, 3, n)


def _trainer(rule="fa", **kw):
    net = _net()
    rule = {"fa": lambda: rules.FeedbackAlignment(rng=4), "bp": rules.Backprop}[rule]()
    return Trainer(net, rule, optim.SGD(net, lr=0.05, momentum=0.9), nn.CrossEntropyLoss(),
                   batch_size=8, rng=5, progress=False, **kw)


def _weights(net):
    return [{k: v.copy() for k, v in layer.params().items()} for layer in net.layers]


def test_images_train_as_flat_rows_do(xp):
    x, y = _images()
    xt, yt = _images(n=12, seed=9)
    a = _trainer()
    ha = a.fit(x, y, epochs=3, x_test=xt, target_test=yt)
    b = _trainer()
    hb = b.fit(x.reshape(40, -1), y, epochs=3, x_test=xt.reshape(12, -1), target_test=yt)
    assert ha.loss == hb.loss and len(ha.loss) == 15
    assert ha.test_accuracy == hb.test_accuracy and len(ha.test_accuracy) == 3
    assert ha.train_accuracy == hb.train_accuracy
    assert ha.epoch_loss[-1] < ha.epoch_loss[0]
    for wa, wb in zip(_weights(a.net), _weights(b.net)):
        for k in wa:
            assert_equal(wa[k], wb[k])
    # evaluation and predict take either layout too (and chunk images by rows)
    a.eval_batch_size = 5
    assert_equal(a.predict(xt), b.predict(xt.reshape(12, -1)))
    assert a.evaluate(xt, yt)["accuracy"] == ha.test_accuracy[-1]
    assert tuple(a.predict(xt).shape) == (12, 3)


@pytest.mark.parametrize("every", [None, 3])
def test_images_checkpoint_and_mid_epoch_resume_bit_identical(xp, tmp_path, every):
    x, y = _images()
    ref = _trainer()
    href = ref.fit(x, y, epochs=3)
    ck = tmp_path / "images.npz"
    first = _trainer(checkpoint=ck, checkpoint_every=every)
    if every:  # stop inside epoch 2, after update 3 * 3 = 9 (5 updates per epoch)
        def stop(trainer):
            if trainer.n_steps == 9:
                raise KeyboardInterrupt
        first.after_step = stop
        with pytest.raises(KeyboardInterrupt):
            first.fit(x, y, epochs=3)
    else:
        first.fit(x, y, epochs=1)
    again = _trainer(checkpoint=ck, checkpoint_every=every)
    h = again.fit(x, y, until_epoch=3, resume=True)
    assert h.loss == href.loss and h.epoch_loss == href.epoch_loss
    for wa, wb in zip(_weights(ref.net), _weights(again.net)):
        for k in wa:
            assert_equal(wa[k], wb[k])
    fa_ref, fa_again = ref.rule.B, again.rule.B
    for B1, B2 in zip(fa_ref, fa_again):
        if B1 is not None:
            assert_equal(B1, B2)


def test_bad_image_shapes_refused_before_training(xp):
    x, y = _images()
    tr = _trainer(rule="bp")
    before = _weights(tr.net)
    with pytest.raises(ValueError, match=r"x must have shape \(samples, 1, 8, 8\).*input_shape "
                                         r"is \(1, 8, 8\).*got shape \(40, 1, 8, 7\)"):
        tr.fit(x[..., :7], y)
    with pytest.raises(ValueError, match=r"x must have shape \(samples, 1, 8, 8\).*got shape "
                                         r"\(40, 8, 8\)"):
        tr.fit(x[:, 0], y)
    with pytest.raises(ValueError, match=r"x_test must have shape \(samples, 1, 8, 8\).*got shape "
                                         r"\(12, 2, 8, 8\)"):
        tr.fit(x, y, x_test=xp.zeros((12, 2, 8, 8), dtype="float32"), target_test=y[:12])
    with pytest.raises(ValueError, match=r"x must be 2-D|x must have shape"):
        tr.fit(x.reshape(-1), y)
    assert tr.n_steps == 0 and tr.history.loss == []
    for wa, wb in zip(before, _weights(tr.net)):
        for k in wa:
            assert_equal(wa[k], wb[k])


def test_dense_network_still_wants_rows(xp):
    net = nn.MLP([64, 5, 3], rng=0)
    tr = Trainer(net, rules.Backprop(), optim.SGD(net, lr=0.1), nn.CrossEntropyLoss(),
                 batch_size=8, progress=False)
    x, y = _images()
    with pytest.raises(ValueError, match=r"x must be 2-D \(samples, features\), got shape "
                                         r"\(40, 1, 8, 8\) \(flatten images"):
        tr.fit(x, y)
    h = tr.fit(x.reshape(40, -1), y, epochs=1)
    assert len(h.loss) == 5 and np.isfinite(h.loss).all()
