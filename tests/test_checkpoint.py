"""bionp.checkpoint: unreadable files refused with the path and the reason, setups compared,
all-or-nothing loading, old checkpoints, and the Trainer's fit/evaluation arguments."""

import json
import os
import warnings

import numpy as np
import pytest

import bionp as bnp
from bionp import nn, optim, rules
from bionp.checkpoint import (CheckpointError, CheckpointMismatchError, load_checkpoint,
                              read_checkpoint, save_checkpoint)
from bionp.train import Trainer


def _data(n=120, d=12, c=3, seed=0):
    g = bnp.random.Generator(seed)
    x = g.normal(size=(n, d))
    y = bnp.get_xp().argmax(x @ g.normal(size=(d, c)), axis=1)
    return x, y


def _trainer(seed=1, momentum=0.9, path=None, **kw):
    net = nn.MLP([12, 16, 3], activation="tanh", rng=seed)
    return Trainer(net, rules.KolenPollack(weight_decay=0.01, rng=seed + 1),
                   optim.SGD(net, lr=0.1, momentum=momentum), nn.CrossEntropyLoss(), batch_size=20,
                   rng=seed + 2, progress=False, checkpoint=path, **kw)


def _arrays(tr):
    out = [bnp.asnumpy(v).copy() for layer in tr.net.layers for v in layer.params().values()]
    out += [bnp.asnumpy(b).copy() for b in (tr.rule.B or []) if b is not None]
    for per in tr.optimizer.state.values():
        out += [bnp.asnumpy(v).copy() for d in per for v in d.values()]
    return out


def _assert_unchanged(before, tr):
    after = _arrays(tr)
    assert len(before) == len(after)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def written(tmp_path):
    x, y = _data()
    tr = _trainer(path=tmp_path / "ck.npz")
    tr.fit(x, y, epochs=1)
    return tmp_path / "ck.npz", tr


# -- unreadable files (issue 24) ----------------------------------------------------------------

def _refused(path, tr):
    before = _arrays(tr)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, tr.net, optimizer=tr.optimizer, rule=tr.rule, trainer=tr)
    msg = str(err.value)
    assert str(path) in msg and "allow_pickle" not in msg and "unsafely" not in msg, msg
    _assert_unchanged(before, tr)
    return msg


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_a_truncated_checkpoint_is_refused_naming_the_file(written, tmp_path, fraction):
    path, _ = written
    raw = path.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(raw[:int(len(raw) * fraction)])
    msg = _refused(cut, _trainer(seed=4))
    assert "cannot read checkpoint" in msg
    assert "BadZipFile" in msg or "truncated" in msg or "empty" in msg


def test_a_flipped_byte_is_refused_or_harmless(written, tmp_path):
    """A flipped byte in the data is caught by the archive's CRC; one in a field nothing reads
    (a timestamp) leaves the content intact. Either way nothing wrong is loaded."""
    path, tr = written
    raw = bytearray(path.read_bytes())
    _, reference = read_checkpoint(path)
    refused = 0
    for pos in range(40, len(raw), max(1, len(raw) // 25)):
        bad = bytearray(raw)
        bad[pos] ^= 0xFF
        f = tmp_path / f"flip{pos}.npz"
        f.write_bytes(bytes(bad))
        try:
            _, arrays = read_checkpoint(f)
        except CheckpointError as exc:
            assert str(f) in str(exc) and "allow_pickle" not in str(exc)
            refused += 1
            continue
        assert set(arrays) == set(reference)
        for k in arrays:
            np.testing.assert_array_equal(arrays[k], reference[k])
    assert refused >= 20


def test_files_that_are_not_checkpoints(tmp_path):
    tr = _trainer()
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    assert "pickled Python objects, which bionp never loads" in _refused(pickled, tr)
    text = tmp_path / "notes.npz"
    text.write_text("hello, not an archive\n")
    assert "never loads pickled" in _refused(text, tr)
    single = tmp_path / "one.npy"
    np.save(single, np.zeros(3))
    assert "single .npy array" in _refused(single, tr)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    assert "not a bionp checkpoint" in _refused(plain, tr)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    assert "empty" in _refused(empty, tr)
    assert "directory" in _refused(tmp_path, tr)
    assert "no such file" in _refused(tmp_path / "missing.npz", tr)


def test_a_damaged_record_is_refused(written, tmp_path):
    path, tr = written
    _, arrays = read_checkpoint(path)
    bad = tmp_path / "bad.npz"
    np.savez(bad, __meta__=np.frombuffer(b"{not json", dtype=np.uint8), **arrays)
    assert "metadata record is damaged" in _refused(bad, tr)
    meta, arrays = read_checkpoint(path)
    arrays.pop("rule/B/1")
    np.savez(bad, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    assert "rule/B/1" in _refused(bad, tr)


# -- setups compared, all or nothing ----------------------------------------------------------

def test_state_an_object_refuses_puts_everything_back(written):
    """The record matches (SGD is SGD) but the momentum buffers are missing: the optimiser
    refuses after the network was assigned, and the network is put back."""
    path, _ = written
    tr = _trainer(seed=7, momentum=0.0)
    before = _arrays(tr)
    epoch, rng = tr.epoch, tr.rng.get_state()
    with pytest.raises(CheckpointMismatchError, match="nothing was loaded") as err:
        load_checkpoint(path, tr.net, optimizer=tr.optimizer, rule=tr.rule, trainer=tr)
    assert str(path) in str(err.value)
    _assert_unchanged(before, tr)
    assert (tr.epoch, tr.rng.get_state()) == (epoch, rng)


def test_network_and_missing_state_mismatches(written, tmp_path):
    path, tr = written
    other = nn.MLP([12, 7, 3], activation="tanh", rng=0)
    with pytest.raises(CheckpointMismatchError, match=r"shape \(16, 12\)"):
        load_checkpoint(path, other)
    same = nn.Sequential([nn.Dense(12, 16, rng=0), nn.Dense(16, 3, rng=1)], ["tanh", "identity"])
    load_checkpoint(path, same)  # an MLP is a Sequential of the same layers
    np.testing.assert_array_equal(bnp.asnumpy(same.layers[1].W), bnp.asnumpy(tr.net.layers[1].W))
    relu = nn.MLP([12, 16, 3], activation="relu", rng=0)
    with pytest.raises(CheckpointMismatchError, match="relu"):
        load_checkpoint(path, relu)
    net_only = tmp_path / "net.npz"
    save_checkpoint(net_only, tr.net)
    with pytest.raises(CheckpointMismatchError, match="no rule"):
        load_checkpoint(net_only, tr.net, rule=tr.rule)
    with pytest.raises(CheckpointMismatchError, match="no trainer state"):
        load_checkpoint(net_only, tr.net, trainer=tr)


def test_strict_false_loads_what_fits_with_a_warning(written):
    path, tr = written
    fa = rules.FeedbackAlignment(rng=0)
    net = nn.MLP([12, 16, 3], activation="tanh", rng=5)
    with pytest.warns(UserWarning, match="KolenPollack"):
        load_checkpoint(path, net, rule=fa, strict=False)
    np.testing.assert_array_equal(bnp.asnumpy(net.layers[0].W), bnp.asnumpy(tr.net.layers[0].W))


def test_an_old_checkpoint_without_the_record_loads_with_a_warning(written, tmp_path):
    path, tr = written
    meta, arrays = read_checkpoint(path)
    meta["format"] = "bionp-checkpoint-1"
    for key in ("setup", "saved"):
        meta.pop(key)
    for key in ("step", "n_steps", "epoch_rng", "epoch_shape", "epoch_elapsed"):
        meta["trainer"].pop(key)
    old = tmp_path / "old.npz"
    np.savez(old, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    fresh = _trainer(seed=3)
    with pytest.warns(UserWarning, match="older bionp"):
        load_checkpoint(old, fresh.net, optimizer=fresh.optimizer, rule=fresh.rule, trainer=fresh)
    assert (fresh.epoch, fresh.step) == (1, 0)
    for a, b in zip(_arrays(tr), _arrays(fresh)):
        np.testing.assert_array_equal(a, b)


def test_resuming_inside_an_epoch_with_other_data_is_refused(tmp_path):
    x, y = _data()
    path = tmp_path / "mid.npz"

    def stop(trainer):
        if trainer.n_steps == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _trainer(path=path, checkpoint_every=1, after_step=stop).fit(x, y, epochs=1)
    tr = _trainer(seed=8, path=path)
    before = _arrays(tr)
    with pytest.raises(CheckpointMismatchError, match="120 samples in batches of 20"):
        tr.fit(x[:100], y[:100], until_epoch=1, resume=True)
    _assert_unchanged(before, tr)
    assert (tr.epoch, tr.step, tr.history.loss) == (0, 0, [])
    tr.fit(x, y, until_epoch=1, resume=True)  # the same data: continues at update 3
    assert tr.n_steps == 6 and len(tr.history.loss) == 6


def test_a_killed_write_leaves_no_temporary_behind_after_the_next(written):
    path, tr = written
    stale = path.parent / f".{path.name}.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    tr.save()
    assert sorted(p.name for p in path.parent.iterdir()) == ["ck.npz"]


# -- fit's arguments --------------------------------------------------------------------------

def test_fit_and_trainer_arguments_are_checked():
    x, y = _data()
    with pytest.raises(ValueError, match="checkpoint=PATH"):
        _trainer(checkpoint_every=5)
    with pytest.raises(ValueError, match="checkpoint_every"):
        _trainer(path="x.npz", checkpoint_every=0)
    tr = _trainer()
    with pytest.raises(ValueError, match="not both"):
        tr.fit(x, y, epochs=1, until_epoch=2)
    with pytest.raises(ValueError, match="until_epoch"):
        tr.fit(x, y, until_epoch=-1)
    with pytest.raises(ValueError, match="needs Trainer\\(checkpoint=PATH\\)"):
        tr.fit(x, y, resume=True)
    with pytest.raises(ValueError, match="without target_test or labels_test"):
        tr.fit(x, y, x_test=x)
    with pytest.raises(ValueError, match="without x_test"):
        tr.fit(x, y, labels_test=y)
    with pytest.raises(ValueError, match="not both"):
        tr.fit(x, y, x_test=x, labels_test=y, validation_data=(x, y))
    with pytest.raises(ValueError, match="validation_data must be"):
        tr.fit(x, y, validation_data=(x,))
    with pytest.raises(ValueError, match="target_test must have 120 rows"):
        tr.fit(x, y, x_test=x, target_test=y[:10])
    with pytest.raises(ValueError, match="labels must have 120 rows"):
        tr.fit(x, y, labels=y[:5])
    with pytest.raises(ValueError, match="one-hot"):
        tr.fit(x, y, validation_data=(x, bnp.get_xp().full((120, 3), 1 / 3)))
    assert tr.epoch == 0 and tr.history.loss == []
    with pytest.warns(UserWarning, match=r"fit\(epochs=0\) has nothing to do"):
        tr.fit(x, y, epochs=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr.fit(x, y, epochs=1)
    assert tr.epoch == 1 and len(tr.history.train_accuracy) == 1
    assert not os.path.exists("x.npz")
