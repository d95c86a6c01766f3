"""One plain test per hole the generated bad-input suite (tests/fuzz, issue 24) found."""

import numpy as np
import pytest

import bionp as bnp
from bionp import data, hebbian, nn, optim, rules, sweep
from bionp.random import Generator


def test_layer_hyper_parameters_checked_before_any_draw():
    g = Generator(0)
    before = g.get_state()
    for kw, msg in (({"init_scale": float("nan")}, "init_scale"),
                    ({"init_scale": "abc"}, "init_scale"),
                    ({"bias_init": "ones"}, "bias_init")):
        with pytest.raises((ValueError, TypeError), match=msg):
            nn.Dense(3, 2, rng=g, **kw)
    with pytest.raises(ValueError, match="bn_momentum"):
        nn.ResidualBlock(2, 2, bn_momentum=float("nan"), rng=g)
    with pytest.raises(TypeError, match="eps"):
        nn.BatchNorm1d(3, eps=None)
    assert g.get_state() == before


def test_seed_errors_name_the_argument_and_numpy_ints_are_ints():
    with pytest.raises(ValueError, match="rng must be"):
        nn.Dense(3, 2, rng=-1)
    with pytest.raises(TypeError, match="noise_rng"):
        nn.NoisyDense(3, 2, noise_rng=2.5)
    with pytest.raises(ValueError, match="rng"):
        hebbian.BioClassifier(hebbian.KrotovHopfield(3), rng=-1)
    assert nn.Dense(np.int64(3), np.int64(2)).W.shape == (2, 3)
    assert nn.Conv2d(1, 2, np.int64(3)).W.shape == (2, 1, 3, 3)


def test_networks_refuse_empty_batches_and_fa_draws_nothing_on_bad_input():
    net = nn.MLP([4, 3, 2], rng=0)
    with pytest.raises(ValueError, match="x is empty"):
        net.forward(np.zeros((0, 4), np.float32))
    g = Generator(1)
    before = g.get_state()
    rule = rules.FeedbackAlignment(rng=g)
    with pytest.raises(ValueError):
        rule.gradients(net, np.zeros((2, 5), np.float32), np.array([0, 1]), nn.MSELoss())
    assert rule.B is None and g.get_state() == before
    with pytest.raises(ValueError, match="initialiser"):
        rules.FeedbackAlignment(init="")


def test_trainer_checks_all_data_before_the_first_update():
    from bionp.train import Trainer

    net = nn.MLP([4, 3, 2], rng=0)
    w0 = net.layers[0].W.copy()
    tr = Trainer(net, rules.Backprop(), optim.SGD(net, lr=0.1), nn.CrossEntropyLoss(),
                 batch_size=2, progress=False)
    x = np.ones((4, 4), np.float32)
    x[3, 0] = np.nan  # in the last batch
    with pytest.raises(ValueError, match="x contains non-finite"):
        tr.fit(x, np.array([0, 1, 0, 1]), epochs=1)
    with pytest.raises(ValueError, match="labels"):
        tr.fit(np.ones((4, 4), np.float32), np.array([0, 1, 0, 7]), epochs=1)
    with pytest.raises(TypeError, match="x must be an array"):
        tr.fit(None, np.array([0, 1, 0, 1]), epochs=1)
    np.testing.assert_array_equal(net.layers[0].W, w0)


def test_optimiser_refuses_non_float_gradients():
    net = nn.MLP([4, 2], rng=0)
    opt = optim.SGD(net, lr=0.1)
    for bad in (np.zeros((2, 4), complex), np.zeros((2, 4), np.int64), [[0.0] * 4] * 2):
        with pytest.raises(TypeError, match="gradient 0.W"):
            opt.step([{"W": bad, "b": np.zeros(2, np.float32)}])


def test_preprocessing_checks():
    with pytest.raises(TypeError, match="eps"):
        data.standardize(np.ones((3, 2), np.float32), eps="abc")
    with pytest.raises(ValueError, match="x_train is empty"):
        data.standardize(np.ones((0, 2), np.float32))
    with pytest.raises(TypeError, match="x must be an array"):
        data.normalize_rows(None)
    with pytest.raises(TypeError, match="y must be an array"):
        data.one_hot(None)
    with pytest.raises(TypeError, match="x must be an array"):
        data.stratified_subset(None, np.arange(3), 1)


def test_generator_argument_checks():
    g = Generator(0)
    before = g.get_state()
    for bad in ("3", [1, "a"], True):
        with pytest.raises(TypeError, match="size"):
            g.normal(size=bad)
    with pytest.raises(TypeError, match="state"):
        g.set_state(None)
    with pytest.raises(ValueError, match="state"):
        g.set_state({"bit_generator": "Philox4x64-10"})
    with pytest.raises(TypeError, match="permutation needs n"):
        g.permutation(float("nan"))
    with pytest.raises(TypeError, match="choice needs a"):
        g.choice(None)
    assert g.get_state() == before


def test_sweep_argument_and_file_checks(tmp_path):
    with pytest.raises(sweep.SweepConfigError, match="blas_threads"):
        sweep.run(lambda c, s: {}, [{"a": 1}], blas_threads="abc", verbose=False)
    with pytest.raises(sweep.SweepConfigError, match="timeout"):
        sweep.run(lambda c, s: {}, [{"a": 1}], timeout=None, verbose=False)
    with pytest.raises(sweep.SweepConfigError, match="names must be str"):
        sweep.grid({"": [1]})
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(sweep.StoreError, match="folder.jsonl"):
        sweep.read_store(tmp_path / "folder.jsonl")
    (tmp_path / "s.toml").mkdir()
    with pytest.raises(sweep.SweepConfigError, match="s.toml"):
        sweep.load_sweep_file(tmp_path / "s.toml")
    (tmp_path / "b.toml").write_bytes(b"\x93NUMPY")
    with pytest.raises(sweep.SweepConfigError, match="b.toml"):
        sweep.load_sweep_file(tmp_path / "b.toml")
    (tmp_path / "f.toml").write_text('function = "nowhere.py:f"\n[grid]\na = [1]\n')
    with pytest.raises(sweep.SweepConfigError, match="f.toml"):
        sweep.load_sweep_file(tmp_path / "f.toml")


def test_activation_dict_without_a_name():
    with pytest.raises(ValueError, match="'name'"):
        nn.get_activation({"a": 1})


def test_check_number_of_a_huge_int():
    from bionp.validation import check_number

    with pytest.raises(ValueError, match="delta"):
        check_number("delta", -2**70, low=0)
    assert bnp.get_dtype() == np.float32


def test_every_bit_of_a_gzip_header_is_refused_or_loads_the_same_data(monkeypatch, tmp_path):
    """Found by the long run: a flip in gzip's header (MTIME, XFL, OS) leaves the payload
    and its MD5 intact, so the file loads the same data and the cache manifest records the
    file's new signature; any other flip is refused and leaves the cache as it was."""
    import json  # noqa: PLC0415
    import sys  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    sys.path.insert(0, str(Path(__file__).parent))
    from _data_files import isolate, patch_files, snapshot, write_mnist_like  # noqa: PLC0415

    cache = isolate(monkeypatch, tmp_path)
    root = tmp_path / "d"
    patch_files(monkeypatch, "mnist", write_mnist_like(root / "mnist", gz=True))
    target = root / "mnist" / "train-images-idx3-ubyte.gz"
    good = data.load("mnist", root=root)
    raw = target.read_bytes()

    def without_source(files):
        return {k: (json.loads(v) | {"source": None}) if k.endswith(".json") else v
                for k, v in files.items()}

    accepted = 0
    for pos in range(10):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[pos] ^= 1 << bit
            target.write_bytes(bytes(flipped))
            pre = snapshot(cache)
            try:
                got = data.load("mnist", root=root)
            except data.DataError as exc:
                assert target.name.split(".")[0] in str(exc)
                assert snapshot(cache) == pre, f"byte {pos} bit {bit}: refused, cache changed"
            else:
                accepted += 1
                assert all(np.array_equal(a, b) for a, b in zip(got, good))
                assert without_source(snapshot(cache)) == without_source(pre)
            target.write_bytes(raw)
    assert 0 < accepted < 80  # MTIME/XFL/OS flips load; magic, method and flags do not
