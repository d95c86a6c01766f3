"""Conv2d: forward against direct references, float64 gradchecks, feedback, bad input."""

import numpy as np
import pytest

import bionp as bnp
from bionp import nn
from bionp.nn.conv import col2im, im2col
from bionp.testing import numerical_gradient, relative_error

# (in, out, kernel, stride, padding)
CONFIGS = [
    (1, 2, 3, 1, 0),
    (2, 3, 3, 2, 0),
    (3, 2, 3, 1, 2),
    (2, 4, (3, 2), 2, 2),
    (4, 1, 2, (1, 2), (0, 1)),
]


def _loop_reference(x, W, b, stride, padding):
    """z[n,o,i,j] = b[o] + sum_{c,u,v} W[o,c,u,v] x_pad[n,c,s_h i+u,s_w j+v] (explicit loops)."""
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, w = x.shape
    o, _, kh, kw = W.shape
    xp_ = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    xp_[:, :, ph:ph + h, pw:pw + w] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    z = np.zeros((n, o, oh, ow))
    for ni in range(n):
        for oi in range(o):
            for i in range(oh):
                for j in range(ow):
                    patch = xp_[ni, :, sh * i:sh * i + kh, sw * j:sw * j + kw]
                    z[ni, oi, i, j] = np.sum(patch * W[oi]) + (0.0 if b is None else b[oi])
    return z


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_conv_forward_equals_explicit_loop(conv_kernels, xp, cfg):
    cin, cout, k, s, p = cfg
    layer = nn.Conv2d(cin, cout, k, stride=s, padding=p, rng=1, dtype="float64")
    layer.b[...] = bnp.random.Generator(3).normal(0, 1, (cout,), dtype="float64")
    x = bnp.random.Generator(2).normal(0, 1, (3, cin, 7, 8), dtype="float64")
    z = layer.forward(x)
    ref = _loop_reference(bnp.asnumpy(x), bnp.asnumpy(layer.W), bnp.asnumpy(layer.b),
                          _pair(s), _pair(p))
    assert tuple(z.shape) == ref.shape
    assert relative_error(z, ref) <= 1e-6
    assert layer.output_shape_for((cin, 7, 8)) == ref.shape[1:]


def test_conv_forward_equals_scipy_correlate(conv_kernels, xp):
    signal = pytest.importorskip("scipy.signal")
    layer = nn.Conv2d(3, 2, 5, padding=2, rng=4, dtype="float64")
    x = bnp.random.Generator(5).normal(0, 1, (2, 3, 9, 9), dtype="float64")
    z = bnp.asnumpy(layer.forward(x))
    xh, Wh, bh = bnp.asnumpy(x), bnp.asnumpy(layer.W), bnp.asnumpy(layer.b)
    xpad = np.pad(xh, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for n in range(2):
        for o in range(2):
            ref = signal.correlate(xpad[n], Wh[o], mode="valid")[0] + bh[o]
            np.testing.assert_allclose(z[n, o], ref, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_conv_gradcheck_float64(conv_kernels, xp, cfg):
    cin, cout, k, s, p = cfg
    layer = nn.Conv2d(cin, cout, k, stride=s, padding=p, rng=6, dtype="float64")
    g = bnp.random.Generator(7)
    layer.b[...] = g.normal(0, 1, (cout,), dtype="float64")
    x = g.normal(0, 1, (2, cin, 6, 7), dtype="float64")
    R = g.normal(0, 1, (2,) + layer.output_shape_for((cin, 6, 7)), dtype="float64")

    def loss():  # L = <z, R>, so dL/dz = R
        return xp.sum(layer.forward(x) * R)

    z, cols = layer.forward_cache(x)
    grads, dx = layer.backward(x, R, cache=cols)
    assert relative_error(grads["W"], numerical_gradient(loss, layer.W)) <= 1e-6
    assert relative_error(grads["b"], numerical_gradient(loss, layer.b)) <= 1e-6
    assert relative_error(dx, numerical_gradient(loss, x)) <= 1e-6
    # without the forward cache the backward pass recomputes it: same numbers
    grads2, dx2 = layer.backward(x, R)
    assert relative_error(grads2["W"], grads["W"]) == 0 and relative_error(dx2, dx) == 0


def test_im2col_col2im_are_adjoint(conv_kernels, xp):
    g = bnp.random.Generator(8)
    x = g.normal(0, 1, (2, 3, 6, 5), dtype="float64")
    kernel, stride, padding = (3, 2), (2, 1), (1, 2)
    cols = im2col(x, kernel, stride, padding)
    C = g.normal(0, 1, tuple(cols.shape), dtype="float64")
    lhs = bnp.to_scalar(xp.sum(cols * C))
    rhs = bnp.to_scalar(xp.sum(x * col2im(C, x.shape, kernel, stride, padding)))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_conv_feedback_replaces_W_for_dx_only(xp):
    layer = nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=9, dtype="float64")
    other = nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=10, dtype="float64")
    g = bnp.random.Generator(11)
    x = g.normal(0, 1, (2, 2, 7, 7), dtype="float64")
    delta = g.normal(0, 1, (2, 3, 4, 4), dtype="float64")
    g_fb, dx_fb = layer.backward(x, delta, feedback=other.W)
    g_own, _ = layer.backward(x, delta)
    _, dx_other = other.backward(x, delta)
    assert relative_error(g_fb["W"], g_own["W"]) == 0  # dW does not depend on the feedback
    assert relative_error(dx_fb, dx_other) <= 1e-14   # dx is computed with B in place of W
    assert layer.backward(x, delta, need_input_grad=False)[1] is None


def test_conv_float32_default_and_he_fans(xp):
    layer = nn.Conv2d(3, 8, 5, rng=0)
    assert layer.W.dtype == np.float32 and tuple(layer.W.shape) == (8, 3, 5, 5)
    a = np.sqrt(6.0 / (3 * 25))  # he_uniform: fan_in = C*kh*kw
    w = bnp.asnumpy(layer.W)
    assert np.abs(w).max() <= a and np.abs(w).max() > 0.8 * a
    assert layer.n_params == 8 * 3 * 25 + 8
    assert set(nn.Conv2d(3, 8, 5, bias=False, rng=0).params()) == {"W"}


@pytest.mark.parametrize("kwargs, match", [
    (dict(in_channels=0, out_channels=2, kernel_size=3), "in_channels"),
    (dict(in_channels=1, out_channels=-2, kernel_size=3), "out_channels"),
    (dict(in_channels=1, out_channels=2, kernel_size=0), "kernel_size"),
    (dict(in_channels=1, out_channels=2, kernel_size=(3, -1)), "kernel_size"),
    (dict(in_channels=1, out_channels=2, kernel_size=3, stride=0), "stride"),
    (dict(in_channels=1, out_channels=2, kernel_size=3, stride=-2), "stride"),
    (dict(in_channels=1, out_channels=2, kernel_size=3, padding=-1), "padding"),
    (dict(in_channels=1, out_channels=2, kernel_size=3, padding=(0, 1, 2)), "padding"),
    (dict(in_channels=1, out_channels=2, kernel_size=2.5), "kernel_size"),
])
def test_conv_constructor_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nn.Conv2d(**kwargs)


def test_conv_bad_inputs_name_expected_and_given(xp):
    layer = nn.Conv2d(3, 2, 5, rng=0, dtype="float64")
    before = bnp.asnumpy(layer.W).copy()
    g = bnp.random.Generator(1)
    with pytest.raises(ValueError, match=r"\(batch, 3, height, width\).*\(4, 75\)"):
        layer.forward(g.normal(0, 1, (4, 75), dtype="float64"))
    with pytest.raises(ValueError, match="expects 3 input channels, got 1"):
        layer.forward(g.normal(0, 1, (4, 1, 8, 8), dtype="float64"))
    with pytest.raises(ValueError, match="height is 4.*smaller than the kernel \\(5\\)"):
        layer.forward(g.normal(0, 1, (4, 3, 4, 8), dtype="float64"))
    with pytest.raises(ValueError, match="width is 3.*smaller than the kernel"):
        layer.output_shape_for((3, 8, 3))
    x = g.normal(0, 1, (2, 3, 8, 8), dtype="float64")
    with pytest.raises(ValueError, match=r"delta must have shape \(2, 2, 4, 4\)"):
        layer.backward(x, g.normal(0, 1, (2, 2, 5, 5), dtype="float64"))
    with pytest.raises(ValueError, match="feedback tensor must have W's shape"):
        layer.backward(x, g.normal(0, 1, (2, 2, 4, 4), dtype="float64"),
                       feedback=g.normal(0, 1, (2, 3, 3, 3), dtype="float64"))
    np.testing.assert_array_equal(bnp.asnumpy(layer.W), before)
    # padding lets a small image through: 4 + 2*1 >= 5
    assert nn.Conv2d(3, 2, 5, padding=1, rng=0).output_shape_for((3, 4, 4)) == (2, 2, 2)
