"""DendriticLayer: equations, gradcheck on both compute paths, path agreement, parity, bad input."""

import numpy as np
import pytest

import bionp as bnp
from bionp.dendritic import DendriticLayer, after_step
from bionp.dendritic import compute as dcompute
from bionp.testing import assert_allclose, assert_equal, numerical_gradient, relative_error


def _layer(**kw):
    cfg = dict(in_dim=12, n_neurons=3, n_dendrite_inputs=4, n_dendrites=2, rng=1, init="he")
    cfg.update(kw)
    return DendriticLayer(**cfg)


def _reference_forward(layer, x):
    """The module's equation evaluated with explicit loops on host copies."""
    x = bnp.asnumpy(x).astype(np.float64)
    idx, w = bnp.asnumpy(layer.idx), bnp.asnumpy(layer.w).astype(np.float64)
    sw = bnp.asnumpy(layer.soma_w).astype(np.float64)
    db = np.zeros(idx.shape[0]) if layer.dendrite_b is None else bnp.asnumpy(layer.dendrite_b)
    sb = np.zeros(layer.n_neurons) if layer.soma_b is None else bnp.asnumpy(layer.soma_b)

    def f(z, name):
        if name == "identity":
            return z
        if name == "tanh":
            return np.tanh(z)
        return np.where(z > 0, z, (0.0 if name == "relu" else layer.leaky_slope) * z)

    out = np.zeros((x.shape[0], layer.n_neurons))
    for b in range(x.shape[0]):
        for n in range(layer.n_neurons):
            s = sb[n]
            for m in range(layer.n_dendrites):
                k = n * layer.n_dendrites + m
                d = sum(w[k, j] * x[b, idx[k, j]] for j in range(idx.shape[1])) + db[k]
                s += sw[n, m] * f(d, layer.dendrite_activation)
            out[b, n] = f(s, layer.soma_activation)
    return out


@pytest.mark.parametrize("path", ["gather", "dense", "auto"])
@pytest.mark.parametrize("soma", ["identity", "leaky_relu"])
def test_forward_matches_the_equation(xp, path, soma):
    with bnp.default_dtype("float64"):
        layer = _layer(path=path, soma_activation=soma)
        g = bnp.random.Generator(0)
        for p in layer.params().values():  # non-zero biases
            p[...] = g.normal(0, 0.5, p.shape)
        x = g.uniform(-1, 1, (5, 12))
        y = layer.forward(x)
        assert y.shape == (5, 3) and bnp.get_array_module(y) is xp
        assert_allclose(y, _reference_forward(layer, x), rtol=1e-12, atol=1e-14)
        y2, _ = layer.forward_cache(x)
        assert_allclose(y2, y, rtol=1e-12, atol=1e-15)


def _loss_and_delta(layer, x, R):
    B = x.shape[0]
    return (lambda: bnp.get_xp().sum(layer.forward(x) * R) / B), R / B


@pytest.mark.parametrize("path", ["gather", "dense"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("acts", [("leaky_relu", "identity"), ("tanh", "leaky_relu"),
                                  ("relu", "tanh")])
def test_gradcheck_every_parameter_and_input(xp, host_kernels, path, bias, acts):
    with bnp.default_dtype("float64"):
        layer = _layer(path=path, bias=bias, dendrite_activation=acts[0], soma_activation=acts[1])
        g = bnp.random.Generator(2)
        for p in layer.params().values():
            p[...] = g.normal(0, 0.7, p.shape)
        x = g.uniform(-1, 1, (5, 12))
        R = g.normal(0, 1, (5, 3))
        f, delta = _loss_and_delta(layer, x, R)
        grads, dx = layer.backward(x, delta)
        assert set(grads) == set(layer.params())
        for k, p in layer.params().items():
            assert grads[k].shape == p.shape and grads[k].dtype == p.dtype
            num = numerical_gradient(f, p, eps=1e-6)
            assert relative_error(grads[k], num) <= 1e-6, k
        num_x = numerical_gradient(f, x, eps=1e-6)
        assert relative_error(dx, num_x) <= 1e-6


def test_gather_and_dense_paths_agree(xp, host_kernels):
    with bnp.default_dtype("float64"):
        g = bnp.random.Generator(4)
        x = g.uniform(0, 1, (7, 30))
        delta = g.normal(0, 1, (7, 4))
        res = {}
        for path in ("gather", "dense"):
            layer = DendriticLayer(30, 4, 5, 3, path=path, rng=9, soma_activation="tanh")
            for p in layer.params().values():
                p[...] = bnp.random.Generator(1).normal(0, 0.5, p.shape)
            y, cache = layer.forward_cache(x)
            # small: gathered once and kept, unless compiled kernels need nothing gathered
            keep = path == "gather" and not dcompute.sparse_rows_dot_available(xp)
            assert (cache["G"] is not None) == keep
            grads, dx = layer.backward(x, delta, cache)
            res[path] = (y, grads, dx, layer.forward(x))
        (y1, g1, dx1, f1), (y2, g2, dx2, f2) = res["gather"], res["dense"]
        for a, b in [(y1, y2), (dx1, dx2), (f1, f2)] + [(g1[k], g2[k]) for k in g1]:
            assert relative_error(a, b) <= 1e-12


def test_auto_path_rule_and_chunked_forward(xp, monkeypatch):
    monkeypatch.setenv("BIONP_NUMBA", "0")  # SciPy's kernels (the choices without Numba)
    sparse = DendriticLayer(784, 2, 32, 3, rng=0)          # density 0.04: gather, dense dL/dx
    assert sparse._gather_forward() and not sparse._scatter_dx()
    dense = DendriticLayer(40, 2, 20, 3, rng=0)            # density 0.5: dense everywhere
    assert not dense._gather_forward() and not dense._scatter_dx()
    tiny = DendriticLayer(3000, 2, 8, 3, rng=0)            # density < 1/256: scatter dL/dx
    assert tiny._gather_forward() and tiny._scatter_dx()
    # forward in batch chunks gives the same output as one block
    with bnp.default_dtype("float64"):
        layer = DendriticLayer(50, 3, 3, 2, rng=5)
        x = bnp.random.Generator(0).uniform(0, 1, (40, 50))
        full = layer.forward(x)
        monkeypatch.setattr(dcompute, "GATHER_BUDGET", 3 * 2 * 3 * 7)  # chunks of 7 samples
        assert_allclose(layer.forward(x), full, rtol=1e-13, atol=1e-15)
        # a training pass keeps the gathered inputs while they are small enough ...
        y, cache = layer.forward_cache(x)
        assert cache["G"] is not None and tuple(cache["G"].shape) == (6, 3, 40)
        assert_allclose(y, full, rtol=1e-12, atol=1e-15)
        # ... too large to keep G: the dense formulation where the backend has no sparse
        # kernel (CuPy); with one (NumPy) the sparse product, and nothing gathered is kept
        monkeypatch.setattr(dcompute, "KEEP_GATHERED_BYTES", 3 * 2 * 3 * 39 * 8)
        y, cache = layer.forward_cache(x)
        assert cache["G"] is None
        assert (cache["xT"] is None) == (bnp.backend_name() == "cupy")
        assert_allclose(y, full, rtol=1e-12, atol=1e-15)


def test_float32_default_and_shapes(xp):
    layer = DendriticLayer(784, 10, 32, 23, rng=0)
    assert layer.w.dtype == np.float32 and layer.idx.dtype == np.int64
    assert layer.idx.shape == (230, 32) and layer.soma_w.shape == (10, 23)
    assert layer.n_params == 230 * 32 + 230 + 10 * 23 + 10 == layer.count_parameters()
    idx = bnp.asnumpy(layer.idx)
    assert idx.min() >= 0 and idx.max() < 784
    assert all(len(set(r)) == 32 for r in idx.tolist())
    assert np.all(np.diff(idx, axis=1) > 0)  # initial inputs sorted
    # He initialisation of the dense matrices, as the original implementation
    w = bnp.asnumpy(layer.w)
    assert abs(w.std() / np.sqrt(2 / 784) - 1) < 0.05
    x = bnp.random.Generator(1).uniform(0, 1, (16, 784))
    y, cache = layer.forward_cache(x)
    assert y.dtype == np.float32
    grads, dx = layer.backward(x, y / 16, cache, need_input_grad=False)
    assert dx is None and all(g.dtype == np.float32 for g in grads.values())
    cfg = layer.get_config()
    assert DendriticLayer(**cfg, rng=0).get_config() == cfg


def test_learns_a_small_regression(xp):
    g = bnp.random.Generator(3)
    x = g.uniform(0, 1, (64, 20))
    t = bnp.get_xp().tanh(x[:, :3] * 2 - x[:, 3:6])
    layer = DendriticLayer(20, 3, 5, 4, rng=2, init="he", steps_to_resample=10,
                           percentage_resample=0.2)
    losses = []
    for step in range(300):
        y, cache = layer.forward_cache(x)
        losses.append(bnp.to_scalar(((y - t) ** 2).mean()))
        grads, _ = layer.backward(x, (y - t) * np.float32(2 / 64 / 3), cache,
                                  need_input_grad=False)
        for k, p in layer.params().items():
            p -= grads[k] * np.float32(0.2)
        layer.after_update()
    assert layer.n_resamplings == 30
    assert losses[-1] < 0.3 * losses[0]


def test_after_update_and_after_step_hooks(xp):
    layer = _layer(steps_to_resample=3, percentage_resample=0.5)
    events = []
    layer.add_resample_callback(lambda lay, mask: events.append(bnp.to_scalar(mask.sum())))
    flags = [layer.after_update() for _ in range(9)]
    assert flags == [False, False, True] * 3 and layer.n_resamplings == 3
    assert events == [6 * 2] * 3
    off = _layer(synaptic_resampling=False, steps_to_resample=1)
    assert not any(off.after_update() for _ in range(5)) and off.n_resamplings == 0

    class Net:
        layers = [layer]

    class Opt:  # the state layout of bionp.optim
        params = [layer.params()]
        state = {"m": [{k: bnp.get_xp().ones_like(v) for k, v in layer.params().items()}]}

    opt = Opt()
    n = sum(after_step(Net(), opt, reset_optimizer_state=True) for _ in range(3))
    assert n == 1
    m = bnp.asnumpy(opt.state["m"][0]["w"])
    mask = bnp.asnumpy(layer.resampled_mask)
    assert np.all(m[mask] == 0) and np.all(m[~mask] == 1)
    assert np.all(bnp.asnumpy(opt.state["m"][0]["soma_w"]) == 1)

    class Trainer:  # what bionp.train.Trainer hands its after_step callback
        net, optimizer = Net(), opt

    from bionp.dendritic import trainer_callback

    cb = trainer_callback(reset_optimizer_state=True)
    assert [cb(Trainer()) for _ in range(3)] == [0, 0, 1] and layer.n_resamplings == 5


def test_state_dict_round_trip(xp):
    a = _layer(steps_to_resample=2)
    for _ in range(5):
        a.after_update()
    b = _layer(rng=77, steps_to_resample=2)
    b.load_state_dict(a.state_dict())
    for _ in range(4):
        a.after_update()
        b.after_update()
    assert_equal(a.idx, b.idx)
    assert_equal(a.w, b.w)


def test_numpy_and_strict_identical_with_resampling():
    from bionp.parity import dendritic as parity_dendritic

    for name in ("dendritic.layer", "dendritic.layer_dense", "dendritic.layer_probabilistic"):
        fn = {"dendritic.layer": parity_dendritic.parity_dendritic,
              "dendritic.layer_dense": parity_dendritic.parity_dendritic_dense,
              "dendritic.layer_probabilistic": parity_dendritic.parity_dendritic_probabilistic}[name]
        for dt in ("float32", "float64"):
            res = {}
            for b in ("numpy", "strict"):
                with bnp.backend(b), bnp.default_dtype(dt):
                    res[b] = {k: bnp.asnumpy(v) for k, v in fn(np.dtype(dt)).items()}
            assert set(res["numpy"]) == set(res["strict"])
            for k in res["numpy"]:
                np.testing.assert_array_equal(res["numpy"][k], res["strict"][k],
                                              err_msg=f"{name} {k}")
            # resampling really changed the connectivity
            assert res["numpy"]["idx"].shape == (12, 6)


def test_parity_checks_are_registered():
    from bionp.parity import run_checks

    rows = run_checks(names=["dendritic"], backends=["strict"], dtypes=("float64",))
    assert {r["check"] for r in rows} == {"dendritic.layer", "dendritic.layer_dense",
                                          "dendritic.layer_probabilistic",
                                          "dendritic.sequential_trainer"}
    assert all(r["passed"] for r in rows)


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, match", [
    (dict(n_dendrite_inputs=13), "exceeds in_dim"),
    (dict(in_dim=0), "in_dim must be an int >= 1"),
    (dict(n_neurons=-1), "n_neurons must be"),
    (dict(n_dendrites=0), "n_dendrites must be"),
    (dict(n_dendrite_inputs=0), "n_dendrite_inputs must be"),
    (dict(n_neurons=2.5), "n_neurons must be"),
    (dict(percentage_resample=1.5), r"percentage_resample must be a fraction in \[0, 1\]"),
    (dict(percentage_resample=-0.1), "percentage_resample"),
    (dict(steps_to_resample=0), "steps_to_resample must be an int >= 1"),
    (dict(leaky_slope=-0.5), r"leaky_slope must be a number in \[0, 1\]"),
    (dict(dendrite_activation="sigmoidal"), "dendrite_activation must be one of"),
    (dict(resampling="random"), "resampling must be one of"),
    (dict(path="sparse"), "path must be one of"),
    (dict(init="xavier"), "init must be one of"),
    (dict(n_dendrite_inputs=10, percentage_resample=0.5), "only 2 of in_dim=12 are free"),
    (dict(n_dendrite_inputs=12, resampling="probabilistic"), "probabilistic resampling needs"),
    (dict(prune_max=1.5), r"prune_max must be a probability in \[0, 1\]"),
    (dict(prune_max="high"), "prune_max must be"),
    (dict(prune_threshold=-0.1), "prune_threshold must be a weight size >= 0"),
    (dict(prune_steepness=0), "prune_steepness must be a number > 0"),
    (dict(prune_steepness=float("nan")), "prune_steepness must be"),
    (dict(steps_to_resample=2.5), "steps_to_resample must be an int >= 1"),
    (dict(percentage_resample="0.1"), "percentage_resample must be a fraction"),
])
def test_bad_construction(kw, match):
    with pytest.raises(ValueError, match=match):
        _layer(**kw)


def test_full_connectivity_without_resampling_is_allowed():
    layer = _layer(n_dendrite_inputs=12, synaptic_resampling=False)
    assert np.all(np.sort(bnp.asnumpy(layer.idx), axis=1) == np.arange(12))


def test_bad_input_arrays(xp):
    layer = _layer()
    g = bnp.random.Generator(0)
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 12\), got \(4, 11\)"):
        layer.forward(g.uniform(size=(4, 11)))
    with pytest.raises(ValueError, match="flatten images"):
        layer.forward(g.uniform(size=(4, 3, 4)))
    with pytest.raises(TypeError, match="bionp.asarray"):
        layer.forward([[0.0] * 12])
    x = g.uniform(size=(4, 12))
    x[1, 3] = float("nan")
    with pytest.raises(ValueError, match="1 NaN"):
        layer.forward(x)
    with pytest.raises(ValueError, match="1 NaN"):
        layer.forward_cache(x)
    x = g.uniform(size=(4, 12))
    x[2, 5] = -float("inf")
    x[0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"0 NaN, 2 Inf"):
        layer.forward_cache(x)
    # finite inputs whose row sums overflow are not refused (only a real NaN/Inf is)
    big = bnp.asarray(np.full((4, 12), 3e38), dtype=layer.dtype) if layer.dtype == np.float32 \
        else bnp.asarray(np.full((4, 12), 1.7e308))
    with np.errstate(over="ignore", invalid="ignore"):  # the layer's own sums overflow too
        layer.forward(big)
    x = g.uniform(size=(4, 12))
    with pytest.raises(ValueError, match=r"delta must have shape \(4, 3\)"):
        layer.backward(x, g.uniform(size=(4, 2)))
    with pytest.raises(TypeError, match="callable"):
        layer.add_resample_callback(3)


def test_mixed_backends_refused():
    with bnp.backend("strict"):
        layer = _layer()
        with pytest.raises(bnp.MixedBackendError):
            layer.forward(np.zeros((2, 12), dtype=np.float32))


def _train_step_results(layer, x, delta):
    y, cache = layer.forward_cache(x)
    grads, dx = layer.backward(x, delta, cache)
    return y, grads, dx, layer.forward(x), cache


def test_gather_path_without_a_sparse_kernel_agrees(xp, host_kernels, monkeypatch):
    """The array formulation CuPy uses (gathered inputs kept, batched products, scatter-add)
    gives the numbers of the sparse-kernel formulation, on every backend."""
    with bnp.default_dtype("float64"):
        g = bnp.random.Generator(4)
        x = g.uniform(0, 1, (7, 30))
        delta = g.normal(0, 1, (7, 4))
        res = {}
        for kernel in (True, False):
            # with the kernel: the sparse products and the blocked dL/dw (batches whose
            # gathered inputs are too large to keep; test_gather_and_dense_paths_agree covers
            # the gathered inputs kept)
            monkeypatch.setattr(dcompute, "KEEP_GATHERED_BYTES", 0)
            if not kernel:
                monkeypatch.setattr(dcompute, "sparse_rows_matmul", lambda *a, **k: None)
                monkeypatch.setattr(dcompute, "sparse_rows_matmul_available", lambda xp: False)
            layer = DendriticLayer(30, 4, 5, 3, path="gather", rng=9, soma_activation="tanh")
            for p in layer.params().values():
                p[...] = bnp.random.Generator(1).normal(0, 0.5, p.shape)
            res[kernel] = _train_step_results(layer, x, delta)
        (y1, g1, dx1, f1, c1), (y2, g2, dx2, f2, c2) = res[True], res[False]
        if bnp.backend_name() != "cupy":
            assert c1["G"] is None and c1["xT"] is not None  # nothing gathered is kept
        assert c2["G"] is not None and tuple(c2["G"].shape) == (12, 5, 7)
        for a, b in [(y1, y2), (dx1, dx2), (f1, f2)] + [(g1[k], g2[k]) for k in g1]:
            assert relative_error(a, b) <= 1e-12


def test_weight_gradient_in_blocks_of_dendrites(xp, monkeypatch):
    """dL/dw gathered group by group (a last, smaller group included) equals one block."""
    monkeypatch.setenv("BIONP_NUMBA", "0")  # the blocked gather is the path without Numba
    with bnp.default_dtype("float64"):
        g = bnp.random.Generator(6)
        layer = DendriticLayer(40, 5, 6, 3, rng=2, path="gather")  # 15 dendrites
        layer.resample()  # unsorted inputs within dendrites
        x = g.uniform(0, 1, (9, 40))
        delta = g.normal(0, 1, (9, 5))
        y, cache = layer.forward_cache(x)
        cache = dict(cache, G=None)  # backends without a sparse kernel keep G: use x.T here too
        ref, _ = layer.backward(x, delta, cache, need_input_grad=False)
        for per in (1, 4, 15):  # 15 groups, 4 groups (4+4+4+3), one group
            monkeypatch.setattr(dcompute, "GATHER_BLOCK_BYTES", per * 6 * 9 * 8)
            layer._gather_buf = None
            grads, _ = layer.backward(x, delta, cache, need_input_grad=False)
            assert_allclose(grads["w"], ref["w"], rtol=1e-13, atol=1e-15)
            assert layer._gather_buf.size == per * 6 * 9  # one reused buffer of one group
        # the reference is the exact gradient (the gradcheck covers the default block size)
        num = numerical_gradient(lambda: bnp.get_xp().sum(layer.forward(x) * delta), layer.w,
                                 eps=1e-6)
        assert relative_error(ref["w"], num) <= 1e-6


def test_load_state_dict_refuses_bad_indices(xp):
    layer = _layer()
    state = {k: (v.copy() if hasattr(v, "copy") else v) for k, v in layer.state_dict().items()}
    w_before = bnp.asnumpy(layer.w).copy()
    bad = state["idx"].copy()
    bad[0, 0] = 12
    state["w"] = state["w"] + 1
    with pytest.raises(ValueError, match=r"must lie in \[0, 12\), got .* to 12"):
        layer.load_state_dict({**state, "idx": bad})
    assert_equal(layer.w, w_before)  # nothing was copied
    with pytest.raises(ValueError, match="idx: expected shape"):
        layer.load_state_dict({**state, "idx": bad[:2]})
