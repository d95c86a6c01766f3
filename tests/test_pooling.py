"""MaxPool2d, AvgPool2d and Flatten: references, float64 gradchecks, ties, bad input."""

import numpy as np
import pytest

import bionp as bnp
from bionp import nn
from bionp.testing import numerical_gradient, relative_error

POOLS = [((2, 2), None), ((3, 3), (2, 2)), ((2, 3), (1, 2)), ((3, 2), (3, 1))]


def _reference(x, kernel, stride, op):
    (kh, kw), (sh, sw) = kernel, stride
    n, c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    z = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            z[:, :, i, j] = op(x[:, :, sh * i:sh * i + kh, sw * j:sw * j + kw], axis=(2, 3))
    return z


@pytest.mark.parametrize("cls, op", [(nn.MaxPool2d, np.max), (nn.AvgPool2d, np.mean)])
@pytest.mark.parametrize("kernel, stride", POOLS)
def test_pool_forward_and_gradcheck(conv_kernels, xp, cls, op, kernel, stride):
    layer = cls(kernel, stride)
    g = bnp.random.Generator(1)
    x = g.normal(0, 1, (2, 3, 7, 8), dtype="float64")  # continuous: no ties
    z = layer.forward(x)
    ref = _reference(bnp.asnumpy(x), layer.kernel_size, layer.stride, op)
    assert relative_error(z, ref) <= 1e-12
    z2, cache = layer.forward_cache(x)
    assert relative_error(z2, ref) <= 1e-12
    R = g.normal(0, 1, tuple(z.shape), dtype="float64")
    grads, dx = layer.backward(x, R, cache=cache)
    assert grads == {} and layer.params() == {} and layer.n_params == 0
    num = numerical_gradient(lambda: xp.sum(layer.forward(x) * R), x)
    assert relative_error(dx, num) <= 1e-6
    assert relative_error(layer.backward(x, R)[1], dx) == 0  # recomputed cache: same numbers


def test_maxpool_ties_go_to_the_first_maximum(conv_kernels, xp):
    x = bnp.asarray(np.array([[[[1.0, 3.0], [3.0, 3.0]]]]))
    layer = nn.MaxPool2d(2)
    _, dx = layer.backward(x, bnp.asarray(np.array([[[[5.0]]]])))
    np.testing.assert_array_equal(bnp.asnumpy(dx), [[[[0.0, 5.0], [0.0, 0.0]]]])


def test_overlapping_maxpool_adds_gradients_of_shared_maxima(conv_kernels, xp):
    # stride 1, kernel 2 on a row whose middle entry is every window's maximum
    x = bnp.asarray(np.array([[[[0.0, 9.0, 1.0]]]]))
    layer = nn.MaxPool2d((1, 2), stride=1)
    _, dx = layer.backward(x, bnp.asarray(np.array([[[[1.0, 2.0]]]])))
    np.testing.assert_array_equal(bnp.asnumpy(dx), [[[[0.0, 3.0, 0.0]]]])


def test_flatten_is_a_reshape_with_exact_gradient(xp):
    layer = nn.Flatten()
    g = bnp.random.Generator(2)
    x = g.normal(0, 1, (3, 2, 4, 5), dtype="float64")
    z = layer.forward(x)
    np.testing.assert_array_equal(bnp.asnumpy(z), bnp.asnumpy(x).reshape(3, -1))
    R = g.normal(0, 1, (3, 40), dtype="float64")
    grads, dx = layer.backward(x, R)
    assert grads == {}
    assert relative_error(dx, numerical_gradient(lambda: xp.sum(layer.forward(x) * R), x)) <= 1e-6
    assert layer.output_shape_for((2, 4, 5)) == (40,)
    layer.build((2, 4, 5))
    with pytest.raises(ValueError, match=r"built for samples of shape \(2, 4, 5\)"):
        layer.forward(g.normal(0, 1, (3, 2, 5, 4), dtype="float64"))
    with pytest.raises(ValueError, match=r"delta must have shape \(3, 40\)"):
        layer.backward(x, g.normal(0, 1, (3, 41), dtype="float64"))


@pytest.mark.parametrize("cls", [nn.MaxPool2d, nn.AvgPool2d])
def test_pool_bad_arguments_and_inputs(xp, cls):
    for bad in (0, -1, (2, 0), 1.5, (2, 2, 2)):
        with pytest.raises(ValueError, match="kernel_size"):
            cls(bad)
    for bad in (0, -2, (1, 0)):
        with pytest.raises(ValueError, match="stride"):
            cls(2, stride=bad)
    layer = cls(3)
    g = bnp.random.Generator(3)
    with pytest.raises(ValueError, match="height is 2, smaller than the kernel \\(3\\)"):
        layer.forward(g.normal(0, 1, (1, 1, 2, 5), dtype="float64"))
    with pytest.raises(ValueError, match=r"\(batch, C, height, width\).*\(4, 25\)"):
        layer.forward(g.normal(0, 1, (4, 25), dtype="float64"))
    x = g.normal(0, 1, (1, 2, 6, 6), dtype="float64")
    with pytest.raises(ValueError, match=r"delta must have shape \(1, 2, 2, 2\)"):
        layer.backward(x, g.normal(0, 1, (1, 2, 3, 3), dtype="float64"))
    with pytest.raises(ValueError, match="no weights"):
        layer.backward(x, g.normal(0, 1, (1, 2, 2, 2), dtype="float64"), feedback=x)
    # rows that do not fill a last window are left out (PyTorch's floor mode)
    assert layer.output_shape_for((2, 7, 8)) == (2, 2, 2)
