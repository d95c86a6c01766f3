"""The image layers' compiled kernels (bionp.backend_conv) against their plain array code.

The kernels perform the array code's floating-point operations in its order, so every
comparison here is bit for bit (``array_equal``; NaN equal to NaN), on NumPy and on the
strict stand-in (which runs the same NumPy kernels), in float32 and float64.
"""

import numpy as np
import pytest

import bionp as bnp
from bionp import backend_conv, nn
from bionp.nn.conv import col2im, conv2d, im2col


# (N, C, H, W), kernel, stride, padding: odd sizes, rows/columns no window reaches
CONV_GEOMETRIES = [
    ((3, 2, 7, 9), (3, 3), (1, 1), (0, 0)),
    ((2, 3, 9, 8), (5, 5), (1, 1), (2, 2)),
    ((3, 2, 11, 9), (3, 2), (2, 2), (0, 0)),
    ((2, 1, 10, 7), (5, 3), (2, 1), (2, 1)),
    ((1, 4, 5, 6), (2, 3), (1, 2), (1, 0)),
    ((2, 2, 4, 4), (4, 4), (1, 1), (0, 0)),  # one output pixel
]
POOL_GEOMETRIES = [
    ((3, 2, 8, 10), (2, 2), (2, 2)),
    ((2, 3, 9, 7), (2, 2), (2, 2)),  # odd: the last row/column is in no window
    ((2, 2, 7, 8), (3, 3), (2, 2)),  # overlapping windows
    ((2, 2, 6, 9), (2, 3), (1, 2)),
    ((1, 3, 5, 5), (5, 5), (5, 5)),
]
DTYPES = ["float32", "float64"]


def _plain(monkeypatch, fn, *args, **kwargs):
    monkeypatch.setenv("BIONP_NUMBA", "0")
    try:
        return fn(*args, **kwargs)
    finally:
        monkeypatch.setenv("BIONP_NUMBA", "1")


def _same(a, b):
    np.testing.assert_array_equal(bnp.asnumpy(a), bnp.asnumpy(b))
    assert a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)


@pytest.fixture
def compiled(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv("BIONP_NUMBA", "1")
    return monkeypatch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, kernel, stride, padding", CONV_GEOMETRIES)
def test_im2col_col2im_conv_output_match_the_array_code(compiled, cpu_xp, dtype, shape, kernel,
                                                        stride, padding):
    g = bnp.random.Generator(1)
    x = g.normal(0, 1, shape, dtype=dtype)
    cols = im2col(x, kernel, stride, padding)
    assert backend_conv.im2col(cpu_xp, x, kernel, stride, padding) is not None  # kernel used
    _same(cols, _plain(compiled, im2col, x, kernel, stride, padding))
    C = g.normal(0, 1, tuple(cols.shape), dtype=dtype)
    dx = col2im(C, shape, kernel, stride, padding)
    assert backend_conv.col2im(cpu_xp, C, shape, kernel, stride, padding) is not None
    _same(dx, _plain(compiled, col2im, C, shape, kernel, stride, padding))
    W = g.normal(0, 1, (3, shape[1]) + kernel, dtype=dtype)
    b = g.normal(0, 1, (3,), dtype=dtype)
    for bias in (b, None):
        z = conv2d(x, W, bias, stride, padding)[0]
        _same(z, _plain(compiled, conv2d, x, W, bias, stride, padding)[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, kernel, stride, padding", CONV_GEOMETRIES[:4])
def test_conv_layer_backward_matches_the_array_code(compiled, cpu_xp, dtype, shape, kernel,
                                                    stride, padding):
    layer = nn.Conv2d(shape[1], 3, kernel, stride=stride, padding=padding, rng=2, dtype=dtype)
    g = bnp.random.Generator(3)
    x = g.normal(0, 1, shape, dtype=dtype)
    z, cache = layer.forward_cache(x)
    z0, cache0 = _plain(compiled, layer.forward_cache, x)
    _same(z, z0)
    _same(cache, cache0)
    delta = g.normal(0, 1, tuple(z.shape), dtype=dtype)
    grads, dx = layer.backward(x, delta, cache=cache)
    grads0, dx0 = _plain(compiled, layer.backward, x, delta, cache=cache0)
    _same(dx, dx0)
    for k in grads:
        _same(grads[k], grads0[k])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, kernel, stride", POOL_GEOMETRIES)
@pytest.mark.parametrize("values", ["continuous", "ties", "nonfinite"])
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the array code's 0 * inf
def test_maxpool_matches_the_array_code(compiled, cpu_xp, dtype, shape, kernel, stride, values):
    """Maxima, the argmax cache (first maximum in row-major window order at ties; a NaN is
    the maximum and the first NaN wins, as ``argmax`` decides) and the scattered gradient."""
    g = bnp.random.Generator(4)
    if values == "continuous":
        xh = bnp.asnumpy(g.normal(0, 1, shape, dtype=dtype))
    else:  # few distinct values: most windows have tied maxima
        xh = bnp.asnumpy(g.integers(0, 3, shape)).astype(dtype)
    if values == "nonfinite":
        flat = xh.reshape(-1)
        flat[::7] = np.nan
        flat[3::11] = np.inf
        flat[5::13] = -np.inf
    x = bnp.asarray(xh)
    layer = nn.MaxPool2d(kernel, stride)
    out_hw = layer.output_shape_for(shape[1:])[1:]
    assert backend_conv.maxpool_forward(cpu_xp, x, kernel, stride, out_hw) is not None
    z, arg = layer.forward_cache(x)
    z0, arg0 = _plain(compiled, layer.forward_cache, x)
    _same(z, z0)
    _same(arg, arg0)
    _same(layer.forward(x), _plain(compiled, layer.forward, x))
    dh = bnp.asnumpy(g.normal(0, 1, tuple(z.shape), dtype=dtype))
    if values == "nonfinite":  # a non-finite delta spreads NaN over its window (0 * inf)
        dh.reshape(-1)[::5] = np.inf
    delta = bnp.asarray(dh)
    dx = layer.backward(x, delta, cache=arg)[1]
    _same(dx, _plain(compiled, layer.backward, x, delta, cache=arg0)[1])


def test_maxpool_kernel_ties_go_to_the_first_maximum(compiled, cpu_xp):
    x = bnp.asarray(np.array([[[[1.0, 3.0, 2.0, 2.0], [3.0, 3.0, 2.0, 2.0]]]]))
    layer = nn.MaxPool2d(2)
    z, arg = layer.forward_cache(x)
    np.testing.assert_array_equal(bnp.asnumpy(arg), [[[[1, 0]]]])
    _, dx = layer.backward(x, bnp.asarray(np.array([[[[5.0, 7.0]]]])), cache=arg)
    np.testing.assert_array_equal(bnp.asnumpy(dx), [[[[0.0, 5.0, 7.0, 0.0],
                                                      [0.0, 0.0, 0.0, 0.0]]]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_vjp_matches_the_array_code(compiled, cpu_xp, dtype):
    g = bnp.random.Generator(5)
    zh = bnp.asnumpy(g.normal(0, 1, (4, 3, 5, 7), dtype=dtype))
    zh.reshape(-1)[::9] = 0.0
    zh.reshape(-1)[1::9] = -0.0
    zh.reshape(-1)[2::17] = np.nan
    z = bnp.asarray(zh)
    grad = g.normal(0, 1, (4, 3, 5, 7), dtype=dtype)
    relu = nn.activations.get_activation("relu")
    a = relu.forward(z)
    _same(relu.vjp(z, a, grad), _plain(compiled, relu.vjp, z, a, grad))
    assert backend_conv.relu_vjp(cpu_xp, z, grad) is not None


def test_switch_off_gives_none_and_the_array_code(cpu_xp, monkeypatch):
    """BIONP_NUMBA=0: no kernel (every dispatch function returns None), the layers run
    their array code; other dtypes than float32/float64 never take a kernel."""
    monkeypatch.setenv("BIONP_NUMBA", "0")
    assert not backend_conv.kernels_available(cpu_xp)
    x = bnp.random.Generator(6).normal(0, 1, (2, 2, 6, 6), dtype="float64")
    assert backend_conv.im2col(cpu_xp, x, (3, 3), (1, 1), (0, 0)) is None
    assert backend_conv.col2im(cpu_xp, im2col(x, (3, 3)), x.shape, (3, 3)) is None
    assert backend_conv.maxpool_forward(cpu_xp, x, (2, 2), (2, 2), (3, 3)) is None
    assert backend_conv.relu_vjp(cpu_xp, x, x) is None
    z, arg = nn.MaxPool2d(2).forward_cache(x)
    assert backend_conv.maxpool_backward(cpu_xp, z, arg, x.shape, (2, 2), (2, 2)) is None
    assert backend_conv.conv_output(cpu_xp, im2col(x, (3, 3))[:2], x[0, 0, 0, :2],
                                    (2, 2, 2, 4)) is None
    monkeypatch.setenv("BIONP_NUMBA", "1")
    if backend_conv.kernels_available(cpu_xp):
        assert backend_conv.im2col(cpu_xp, x.astype("float16"), (3, 3), (1, 1), (0, 0)) is None


def test_lenet_step_same_numbers_with_and_without_kernels(compiled, cpu_xp):
    """A whole LeNet backprop step (forward, backward, gradients) in float32: identical."""
    from bionp import rules

    net = nn.models.lenet(rng=0)
    g = bnp.random.Generator(7)
    x = g.uniform(0, 1, (8, 1, 32, 32), dtype="float32")
    y = g.integers(0, 10, 8)
    loss = nn.CrossEntropyLoss()
    grads = rules.Backprop().gradients(net, x, y, loss)
    grads0 = _plain(compiled, rules.Backprop().gradients, net, x, y, loss)
    for gl, gl0 in zip(grads, grads0):
        assert gl.keys() == gl0.keys()
        for k in gl:
            _same(gl[k], gl0[k])


def test_bad_shapes_are_refused(compiled, cpu_xp):
    x = bnp.random.Generator(8).normal(0, 1, (2, 2, 6, 6), dtype="float64")
    cols = im2col(x, (3, 3))
    with pytest.raises(ValueError, match="cols must have shape"):
        backend_conv.col2im(cpu_xp, cols[:5], x.shape, (3, 3))
    z, arg = nn.MaxPool2d(2).forward_cache(x)
    with pytest.raises(ValueError, match="arg must have delta's shape"):
        backend_conv.maxpool_backward(cpu_xp, z, arg[:1], x.shape, (2, 2), (2, 2))
