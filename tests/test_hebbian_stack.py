"""HebbianStack, Dale's principle (E/I inputs) and weight grids."""

import numpy as np
import pytest

import bionp as bnp
from bionp.hebbian import HebbianStack, KrotovHopfield, draw_weights, layer_features
from bionp.hebbian.plotting import weight_grid
from bionp.random import Generator
from bionp.testing import assert_equal, relative_error


def _data(n=300, n_in=20, seed=0):
    return Generator(seed).uniform(0, 1, (n, n_in))


# --------------------------------------------------------------------------
# excitatory / inhibitory inputs
# --------------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 1.0])
def test_dale_mask_fraction(xp, fraction):
    kh = KrotovHopfield(8, inhibitory_fraction=fraction, rng=3).initialize(40)
    signs = bnp.asnumpy(kh.input_signs_)
    assert set(np.unique(signs)) <= {-1.0, 1.0}
    assert np.count_nonzero(signs < 0) == round(fraction * 40)
    W = bnp.asnumpy(kh.weights_)
    assert np.all(W * signs >= 0)


def test_no_weight_changes_sign(xp):
    x = _data()
    kh = KrotovHopfield(12, p=3.0, k=3, lr=0.2, batch_size=25, inhibitory_fraction=0.3, rng=4,
                        progress=False)
    kh.initialize(20)
    signs = bnp.asnumpy(kh.input_signs_)
    for epoch in range(6):  # large steps: many updates would cross zero without the clip
        for s in range(0, 300, 25):
            kh.partial_fit(x[s:s + 25], lr=0.2)
            assert np.all(bnp.asnumpy(kh.weights_) * signs >= 0)
    W = bnp.asnumpy(kh.weights_)
    assert np.count_nonzero(W == 0) > 0  # the clip was exercised
    kh.fit(x, epochs=3)
    assert np.all(bnp.asnumpy(kh.weights_) * bnp.asnumpy(kh.input_signs_) >= 0)


def test_dale_clip_semantics(xp):
    """An update that would cross zero sets the weight to zero; other weights follow the rule."""
    W0 = np.array([[0.01, -0.01, 0.5], [0.3, -0.2, 0.1], [0.2, -0.3, 0.4]])
    x = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    free = KrotovHopfield(3, p=2.0, k=2, lr=0.5, init=W0, dtype="float64", rng=0).initialize(3)
    free.partial_fit(bnp.asarray(x))
    dale = KrotovHopfield(3, p=2.0, k=2, lr=0.5, init=W0, dtype="float64", rng=0,
                          inhibitory_fraction=0.0).initialize(3)
    dale.input_signs_ = bnp.asarray(np.array([1.0, -1.0, 1.0]))
    dale.weights_ = bnp.asarray(W0.copy())
    dale.partial_fit(bnp.asarray(x))
    signs = np.array([1.0, -1.0, 1.0])
    expected = np.maximum(bnp.asnumpy(free.weights_) * signs, 0) * signs
    assert np.any(bnp.asnumpy(free.weights_) * signs < 0)  # the free rule crosses zero here
    assert relative_error(dale.weights_, expected) == 0.0


# --------------------------------------------------------------------------
# the stack
# --------------------------------------------------------------------------

def test_stack_layerwise_training(xp):
    x = _data()
    st = HebbianStack([10, 6], p=3.0, k=2, lr=0.05, batch_size=50, power=2.0, rng=0, progress=False)
    st.fit(x, epochs=[3, 2])
    assert len(st) == 2
    assert st.layers_[0].weights_.shape == (10, 20)
    assert st.layers_[1].weights_.shape == (6, 10)
    assert len(st.layers_[0].history_) == 3 and len(st.layers_[1].history_) == 2
    out = st.transform(x)
    assert out.shape == (300, 6)
    # the second layer was trained on the first layer's normalised rectified features
    h1 = layer_features(st.layers_[0], x, power=2.0)
    W0 = bnp.asnumpy(st.layers_[0].weights_).astype(np.float64)
    ref = np.maximum(bnp.asnumpy(x).astype(np.float64) @ W0.T, 0) ** 2
    norms = np.linalg.norm(ref, axis=1, keepdims=True)
    ref = ref / np.maximum(norms, np.finfo(np.float64).tiny)
    assert relative_error(h1, ref) < 1e-5
    assert relative_error(st.transform(x, n_layers=1), h1) == 0.0


def test_stack_reproducible_and_layer_rngs(xp):
    x = _data(n=120)
    a = HebbianStack([8, 4], k=2, batch_size=40, rng=11, progress=False).fit(x, epochs=2)
    b = HebbianStack([8, 4], k=2, batch_size=40, rng=11, progress=False).fit(x, epochs=2)
    for la, lb in zip(a.layers_, b.layers_):
        assert_equal(la.weights_, lb.weights_)


def test_stack_specs_and_dale(xp):
    x = _data(n=120)
    layers = [{"n_hidden": 8, "p": 2.0}, KrotovHopfield(5, k=2, rng=0, progress=False), 4]
    st = HebbianStack(layers, k=3, batch_size=40, inhibitory_fraction=0.25, rng=2, progress=False)
    assert st.layers_[0].k == 3 and st.layers_[0].p == 2.0
    assert st.layers_[1].inhibitory_fraction is None  # a ready layer is used as given
    st.fit(x, epochs=2)
    for layer in (st.layers_[0], st.layers_[2]):
        signs = bnp.asnumpy(layer.input_signs_)
        assert np.all(bnp.asnumpy(layer.weights_) * signs >= 0)
        assert np.count_nonzero(signs < 0) == round(0.25 * layer.weights_.shape[1])


def test_stack_bad_input():
    with pytest.raises(ValueError, match="non-empty list"):
        HebbianStack([])
    with pytest.raises(TypeError, match=r"layers\[1\] must be"):
        HebbianStack([4, "x"])
    st = HebbianStack([4, 3], k=2)
    with pytest.raises(RuntimeError, match="not trained"):
        st.transform(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="epochs has 1 entries for 2 layers"):
        st.fit(np.ones((5, 3), dtype=np.float32), epochs=[1])
    with pytest.raises(ValueError, match="power must be > 0"):
        HebbianStack([4], power=0.0)


# --------------------------------------------------------------------------
# weight grids
# --------------------------------------------------------------------------

def test_draw_weights_grey_png(xp, tmp_path):
    W = Generator(0).normal(0, 1, (10, 28 * 28))
    path = tmp_path / "grey.png"
    fig = draw_weights(W, 2, 5, (28, 28), path=path, title="units")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.axes


def test_draw_weights_rgb_png_more_tiles_than_units(xp, tmp_path):
    W = Generator(0).normal(0, 1, (5, 3 * 32 * 32))
    path = tmp_path / "rgb.png"
    draw_weights(W, 3, 4, (3, 32, 32), path=path)  # 12 tiles, 5 units: blank tiles
    assert path.stat().st_size > 0
    grid = weight_grid(W, 3, 4, (3, 32, 32))
    assert grid.shape == (96, 128, 3)
    assert grid.min() >= 0 and grid.max() <= 1
    assert np.all(grid[64:, :, :] == 0.5)  # the third row is blank


def test_weight_grid_symmetric_scale():
    W = np.zeros((4, 4))
    W[0, 0] = -2.0
    W[1, 1] = 1.0
    grid = weight_grid(W, 2, 2, (2, 2), scale="global")
    assert grid.min() == -1.0 and grid.max() == 0.5  # scaled by max|W| = 2, zero stays zero
    # channel-first RGB: pixel (0, 0) of unit 0 takes its three channels from W[0, 0::4]
    Wc = np.zeros((1, 12))
    Wc[0, [0, 4, 8]] = [1.0, 0.0, -1.0]
    rgb = weight_grid(Wc, 1, 1, (3, 2, 2))
    np.testing.assert_allclose(rgb[0, 0], [1.0, 0.5, 0.0])


def test_draw_weights_into_axes(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot(1, 1, 1)
    out = draw_weights(np.ones((3, 4)), 1, 3, (2, 2), ax=ax)
    assert out is fig


def test_draw_weights_bad_input():
    W = np.zeros((4, 784))
    with pytest.raises(ValueError, match="784 inputs"):
        draw_weights(W, 2, 2, (32, 32))
    with pytest.raises(ValueError, match="image_shape must be"):
        draw_weights(np.zeros((4, 12)), 2, 2, (2, 2, 3))
    with pytest.raises(ValueError, match="rows must be a positive int"):
        draw_weights(W, 0, 2, (28, 28))
    with pytest.raises(ValueError, match="must be 2-D"):
        draw_weights(np.zeros(784), 1, 1, (28, 28))


def test_weight_grid_unit_scale():
    from bionp.hebbian.plotting import weight_grid

    W = np.array([[1.0, -2.0, 0.5, 0.0], [10.0, 5.0, -10.0, 2.5]])
    grid = weight_grid(W, 1, 2, (2, 2), scale="unit")
    np.testing.assert_allclose(grid[:, :2].ravel(), [0.5, -1.0, 0.25, 0.0])
    np.testing.assert_allclose(grid[:, 2:].ravel(), [1.0, 0.5, -1.0, 0.25])
    glob = weight_grid(W, 1, 2, (2, 2), scale="global")
    np.testing.assert_allclose(glob[:, :2].ravel(), [0.1, -0.2, 0.05, 0.0])
    with pytest.raises(ValueError, match="scale must be 'global' or 'unit'"):
        weight_grid(W, 1, 2, (2, 2), scale="tile")


def test_weight_grid_default_is_per_unit():
    """A unit with small weights stays legible by default (issue 26: "global" washed it out)."""
    W = np.array([[1e-3, -2e-3, 0.0, 0.0], [10.0, 5.0, -10.0, 2.5]])
    grid = weight_grid(W, 1, 2, (2, 2))
    np.testing.assert_allclose(grid[:, :2].ravel(), [0.5, -1.0, 0.0, 0.0])
