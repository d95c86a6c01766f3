"""What a researcher does in a first week, written as they would write it, on the bundled subset.

Each journey asserts the outcome a user expects (issue 26): three ``fit`` calls train three
epochs; a checkpoint saved in the middle of an epoch resumes to the uninterrupted run's
weights bit for bit; a checkpoint of another setup is refused with the file named and nothing
changed; evaluation data given as ``x_test, target_test`` or ``validation_data`` is evaluated.
"""

import warnings

import numpy as np
import pytest

import bionp as bnp
from bionp import data, nn, optim, rules
from bionp import plasticity as bio
from bionp.checkpoint import CheckpointMismatchError
from bionp.train import Trainer, load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def subset():
    with bnp.backend("numpy"):
        x, y = data.load("fashion-mnist-small", split="train")
        xt, yt = data.load("fashion-mnist-small", split="test")
    return x[:600], y[:600], xt[:300], yt[:300]


def _weights(net):
    return [bnp.asnumpy(v).copy() for layer in net.layers for v in layer.params().values()]


def _same(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def _setup(rule="kp", opt="sgd", seed=0, dale=False, checkpoint=None, **kw):
    net = nn.MLP([784, 24, 10], activation="relu", init="he_normal", rng=seed)
    if dale:
        bio.convert(net, bio.BioConfig(apply_dales_principle=True), rng=seed + 7)
    r = {"kp": lambda: rules.KolenPollack(weight_decay=0.01, rng=seed + 1),
         "fa": lambda: rules.FeedbackAlignment(rng=seed + 1), "bp": rules.Backprop}[rule]()
    o = optim.SGD(net, lr=0.05, momentum=0.9) if opt == "sgd" else optim.Adam(net, lr=1e-3)
    return Trainer(net, r, o, nn.CrossEntropyLoss(), batch_size=50, rng=seed + 2, progress=False,
                   checkpoint=checkpoint, **kw)


# -- journey: fit in a loop, one epoch at a time ---------------------------------------------

def test_three_fit_calls_train_three_epochs(subset):
    x, y, xt, yt = subset
    looped = _setup()
    for _ in range(3):
        h = looped.fit(x, y, epochs=1, x_test=xt, labels_test=yt)
    assert h.epochs_done == 3 and len(h.test_accuracy) == 3 and len(h.loss) == 3 * 12
    once = _setup()
    once.fit(x, y, epochs=3, x_test=xt, labels_test=yt)
    _same(_weights(looped.net), _weights(once.net))
    assert looped.history.test_accuracy == once.history.test_accuracy
    # reaching a total is spelled until_epoch=; a call with nothing to do says so
    with pytest.warns(UserWarning, match=r"fit\(until_epoch=3\) has nothing to do: 3 epochs"):
        looped.fit(x, y, until_epoch=3)
    assert looped.epoch == 3


# -- journey: checkpoint from after_step in the middle of an epoch, resume elsewhere ---------

def test_mid_epoch_checkpoint_resumes_bit_identically(subset, tmp_path):
    x, y, _, _ = subset
    straight = _setup(opt="adam")
    straight.fit(x, y, epochs=3)

    path = tmp_path / "mid.npz"

    def save_at_step_17(trainer):  # epoch 2, update 5 of 12
        if trainer.n_steps == 17:
            save_checkpoint(path, trainer.net, optimizer=trainer.optimizer, rule=trainer.rule,
                            trainer=trainer)

    _setup(opt="adam", after_step=save_at_step_17).fit(x, y, epochs=2)
    # fresh objects, other seeds: everything comes from the file
    resumed = _setup(opt="adam", seed=5)
    resumed.rule = rules.KolenPollack(weight_decay=0.01, rng=123)
    load_checkpoint(path, resumed.net, optimizer=resumed.optimizer, rule=resumed.rule,
                    trainer=resumed)
    assert (resumed.epoch, resumed.step) == (1, 5)
    resumed.fit(x, y, until_epoch=3)
    _same(_weights(straight.net), _weights(resumed.net))
    assert resumed.history.epoch_loss == straight.history.epoch_loss
    assert resumed.history.loss == straight.history.loss


def test_checkpoint_every_step_option_resumes_from_the_file(subset, tmp_path):
    x, y, _, _ = subset
    straight = _setup()
    straight.fit(x, y, epochs=2)
    path = tmp_path / "every.npz"

    def crash_at_update_10(trainer):
        if trainer.n_steps == 10:
            raise KeyboardInterrupt("the machine went down")

    with pytest.raises(KeyboardInterrupt):
        _setup(checkpoint=path, checkpoint_every=7,
               after_step=crash_at_update_10).fit(x, y, epochs=2)
    # the last write was at update 7, inside epoch 1; resume into fresh objects
    resumed = _setup(checkpoint=path, checkpoint_every=7, seed=9)
    resumed.rule = rules.KolenPollack(weight_decay=0.01, rng=44)
    resumed.fit(x, y, until_epoch=2, resume=True)
    assert resumed.n_steps == 24
    _same(_weights(straight.net), _weights(resumed.net))


# -- journey: load a checkpoint into the wrong setup ------------------------------------------

def _state(trainer):
    out = _weights(trainer.net)
    for name, per in trainer.optimizer.state.items():
        out += [bnp.asnumpy(v).copy() for d in per for v in d.values()]
    for b in getattr(trainer.rule, "B", None) or []:
        if b is not None:
            out.append(bnp.asnumpy(b).copy())
    return out, trainer.epoch, trainer.rng.get_state()


@pytest.mark.parametrize("saved,given,words", [
    (dict(rule="kp"), dict(rule="fa"), ["KolenPollack", "FeedbackAlignment"]),
    (dict(rule="kp"), dict(rule="bp"), ["KolenPollack", "Backprop"]),
    (dict(rule="fa", dale=True), dict(rule="fa"), ["dales_principle", "no plasticity transforms"]),
    (dict(rule="bp", opt="sgd"), dict(rule="bp", opt="adam"), ["SGD", "Adam"]),
])
def test_a_checkpoint_of_another_setup_is_refused_with_nothing_changed(subset, tmp_path, saved,
                                                                       given, words):
    x, y, _, _ = subset
    path = tmp_path / "run.npz"
    _setup(checkpoint=path, **saved).fit(x[:200], y[:200], epochs=1)
    other = _setup(seed=3, **given)
    other.fit(x[:200], y[:200], epochs=1)  # some state of its own, to see that it is kept
    other.checkpoint = str(path)
    before = _state(other)
    with pytest.raises(CheckpointMismatchError) as err:
        other.fit(x[:200], y[:200], until_epoch=2, resume=True)
    msg = str(err.value)
    assert str(path) in msg and all(w in msg for w in words), msg
    after = _state(other)
    _same(before[0], after[0])
    assert before[1:] == after[1:]


def test_kp_checkpoint_refused_by_a_direct_load_too(subset, tmp_path):
    x, y, _, _ = subset
    kp = _setup(rule="kp")
    kp.fit(x[:200], y[:200], epochs=1)
    path = tmp_path / "kp.npz"
    kp.save(path)
    fa = _setup(rule="fa")
    with pytest.raises(CheckpointMismatchError, match="KolenPollack"):
        load_checkpoint(path, fa.net, optimizer=fa.optimizer, rule=fa.rule, trainer=fa)
    # the network alone still loads (for evaluation, say)
    load_checkpoint(path, fa.net)
    _same(_weights(kp.net), _weights(fa.net))


# -- journey: evaluation data in the spelling the user chose ----------------------------------

def test_evaluation_data_is_evaluated_in_every_spelling(subset):
    x, y, xt, yt = subset
    h = _setup(rule="bp").fit(x, y, epochs=2, x_test=xt, target_test=yt)
    assert len(h.test_accuracy) == 2 and len(h.test_loss) == 2 and h.test_accuracy[-1] > 30
    assert len(h.train_accuracy) == 2  # from the integer targets
    t, tt = data.one_hot(y, 10), data.one_hot(yt, 10)
    h2 = _setup(rule="bp").fit(x, t, epochs=2, validation_data=(xt, tt))
    assert h2.test_accuracy == h.test_accuracy and h2.train_accuracy == h.train_accuracy
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h3 = _setup(rule="bp").fit(x, y, epochs=2, labels=False, validation_data=(xt, yt))
    assert h3.train_accuracy == [] and h3.test_accuracy == h.test_accuracy
    # regression-like targets cannot give an accuracy: refused before any training
    trainer = _setup(rule="bp")
    with pytest.raises(ValueError, match="labels_test"):
        trainer.fit(x, t, epochs=1, x_test=xt, target_test=tt * 0.8 + 0.02)
    assert trainer.epoch == 0 and trainer.history.loss == []
