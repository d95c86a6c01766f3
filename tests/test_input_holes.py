"""Three classes of bad input that used to pass: complex arrays, non-numeric or integer dtypes
where floats are meant, and NaN/Inf hyper-parameters.  Each public entry point refuses them
with a message naming the argument, before any state changes."""

from __future__ import annotations

import math

import numpy as np
import pytest

import bionp as bnp
from bionp import hebbian, nn, optim, rules
from bionp.dendritic import DendriticLayer
from bionp.random import Generator
from bionp.validation import check_float_dtype, check_real

NAN, INF = float("nan"), float("inf")


def _x(xp, dtype):
    x = xp.ones((5, 4), dtype=np.float32)
    if dtype == "object-none":
        return np.full((5, 4), None, dtype=object)
    if dtype == "str":
        return np.full((5, 4), "0.5")
    return x.astype(dtype)


BAD_DTYPES = [
    ("complex64", TypeError, r"x is complex \(complex64\).*real floats only"),
    ("complex128", TypeError, r"x is complex"),
    ("object-none", TypeError, r"dtype object, which is not numeric"),
    ("str", TypeError, r"dtype <U3, which is not numeric"),
    ("bool", TypeError, r"dtype bool where floats are expected.*astype\(numpy.float32\) / 255"),
    ("int8", TypeError, r"dtype int8 where floats are expected"),
    ("uint8", TypeError, r"dtype uint8 where floats are expected"),
]


def _weights(net):
    return [{k: bnp.asnumpy(v).copy() for k, v in p.items()} for p in net.parameters()]


@pytest.mark.parametrize("dtype, err, match", BAD_DTYPES)
def test_network_forward_and_gradients_refuse_non_float_input(xp, dtype, err, match):
    if dtype in ("object-none", "str") and xp is not np:
        pytest.skip("object and string arrays exist on the host only")
    net = nn.MLP([4, 3, 2], rng=0)
    before = _weights(net)
    x = _x(xp, dtype)
    with pytest.raises(err, match=match):
        net.forward(x)
    with pytest.raises(err, match=match):
        rules.Backprop().gradients(net, x, xp.zeros(5, dtype=xp.int64), nn.MSELoss())
    with pytest.raises(err, match=match):
        net.layers[0].forward(x)
    after = _weights(net)
    for a, b in zip(before, after):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("dtype, err, match", BAD_DTYPES)
def test_dendritic_layer_refuses_non_float_input(xp, dtype, err, match):
    if dtype in ("object-none", "str") and xp is not np:
        pytest.skip("object and string arrays exist on the host only")
    layer = DendriticLayer(4, 2, 2, 2, rng=0)
    with pytest.raises(err, match=match):
        layer.forward(_x(xp, dtype))


@pytest.mark.parametrize("dtype", ["complex64", "bool", "int8"])
def test_krotov_hopfield_refuses_non_float_input(xp, dtype):
    kh = hebbian.KrotovHopfield(5, rng=0, progress=False)
    with pytest.raises(TypeError, match="x"):
        kh.fit(_x(xp, dtype), epochs=1)


def test_losses_refuse_complex_outputs_and_object_targets(xp):
    out = xp.ones((5, 3), dtype=xp.float32)
    with pytest.raises(TypeError, match="out is complex"):
        nn.MSELoss()(out.astype(xp.complex64), xp.zeros(5, dtype=xp.int64))
    with pytest.raises(TypeError, match="out is complex"):
        nn.CrossEntropyLoss().grad(out.astype(xp.complex64), xp.zeros(5, dtype=xp.int64))
    with pytest.raises(TypeError, match="target must hold integer labels"):
        nn.MSELoss()(out, out.astype(xp.complex64))
    with pytest.raises(TypeError, match="target must hold integer labels"):
        nn.CrossEntropyLoss()(out, xp.zeros(5, dtype=bool))


def test_float16_and_integer_labels_still_accepted(xp):
    net = nn.MLP([4, 3, 2], rng=0)
    assert net.forward(xp.ones((5, 4), dtype=xp.float16)).dtype == net.dtype
    grads = rules.Backprop().gradients(net, xp.ones((5, 4), dtype=xp.float32),
                                       xp.zeros(5, dtype=xp.int32), nn.MSELoss())
    assert grads[0]["W"].shape == (3, 4)


# -- the generator: loc/scale/low/high ---------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda g: g.normal(0, NAN, 3), "scale must be finite"),
    (lambda g: g.normal(INF, 1, 3), "loc must be finite"),
    (lambda g: g.normal(0, -INF, 3), "scale must be finite"),
    (lambda g: g.normal(0, -0.5, 3), "scale must be non-negative"),
    (lambda g: g.normal(0, np.array([1.0, NAN]), 2), "scale contains non-finite"),
    (lambda g: g.normal(0, np.array([1.0, -1.0]), 2), "scale must be non-negative"),
    (lambda g: g.uniform(NAN, 1, 3), "low must be finite"),
    (lambda g: g.uniform(0, INF, 3), "high must be finite"),
    (lambda g: g.laplace(0, NAN, 3), "scale must be finite"),
    (lambda g: g.laplace(-INF, 1, 3), "loc must be finite"),
])
def test_generator_refuses_non_finite_parameters_and_keeps_its_counter(xp, call, match):
    g = Generator(3)
    before = g.get_state()
    with pytest.raises(ValueError, match=match):
        call(g)
    assert g.get_state() == before
    assert bnp.asnumpy(g.normal(0, 1, 4)).tolist() == bnp.asnumpy(Generator(3).normal(0, 1, 4)).tolist()


@pytest.mark.parametrize("call, match", [
    (lambda g: g.normal(0, 1j, 3), "scale must be a real number"),
    (lambda g: g.normal(True, 1, 3), "loc must be a real number"),
    (lambda g: g.uniform(0, np.array(["a"]), 1), "high must hold real numbers"),
    (lambda g: g.normal(np.array([1 + 1j]), 1, 1), "loc must hold real numbers"),
])
def test_generator_refuses_non_real_parameters(call, match):
    g = Generator(3)
    before = g.get_state()
    with pytest.raises(TypeError, match=match):
        call(g)
    assert g.get_state() == before


# -- hyper-parameters ---------------------------------------------------------------------------

def _net():
    return nn.MLP([4, 3, 2], rng=0)


@pytest.mark.parametrize("make, name", [
    (lambda v: optim.SGD(_net(), lr=v), "lr"),
    (lambda v: optim.SGD(_net(), lr=0.1, momentum=v), "momentum"),
    (lambda v: optim.SGD(_net(), lr=0.1, weight_decay=v), "weight_decay"),
    (lambda v: optim.Adam(_net(), lr=v), "lr"),
    (lambda v: optim.Adam(_net(), eps=v), "eps"),
    (lambda v: optim.Adam(_net(), betas=(0.9, v)), r"betas\[1\]"),
    (lambda v: rules.WeightPerturbation(sigma=v), "sigma"),
    (lambda v: rules.NodePerturbation(sigma=v), "sigma"),
    (lambda v: rules.KolenPollack(weight_decay=v), "weight_decay"),
    (lambda v: rules.KolenPollack(feedback_lr=v), "feedback_lr"),
    (lambda v: rules.KolenPollack(feedback_lr_scale=v), "feedback_lr_scale"),
    (lambda v: rules.FeedbackAlignment(scale=v), "scale"),
    (lambda v: rules.DirectFeedbackAlignment(scale=v), "scale"),
])
@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_hyperparameters_must_be_finite(make, name, value):
    with pytest.raises(ValueError, match=rf"{name} must be finite, got"):
        make(value)


@pytest.mark.parametrize("make, name", [
    (lambda v: optim.SGD(_net(), lr=v), "lr"),
    (lambda v: rules.WeightPerturbation(sigma=v), "sigma"),
    (lambda v: rules.KolenPollack(weight_decay=v), "weight_decay"),
])
@pytest.mark.parametrize("value", [1j, "0.1", None, True])
def test_hyperparameters_must_be_real_numbers(make, name, value):
    with pytest.raises(TypeError, match=rf"{name} must be a real number"):
        make(value)


# -- the helpers themselves ----------------------------------------------------------------------

def test_check_real_intervals():
    assert check_real("a", 3) == 3.0 and isinstance(check_real("a", np.float32(2)), float)
    assert check_real("a", 0, low=0) == 0.0
    with pytest.raises(ValueError, match=r"a must lie in \(0, inf\), got 0"):
        check_real("a", 0, low=0, low_open=True)
    with pytest.raises(ValueError, match=r"a must lie in \[0, 1\), got 1"):
        check_real("a", 1, low=0, high=1, high_open=True)
    assert math.isclose(check_real("a", 0.999, low=0, high=1, high_open=True), 0.999)


def test_check_float_dtype_accepts_floats_only():
    for dt in (np.float16, np.float32, np.float64):
        check_float_dtype(np.zeros(2, dtype=dt))
    for dt in (np.int64, np.uint8, bool, np.complex128, object):
        with pytest.raises(TypeError):
            check_float_dtype(np.zeros(2, dtype=dt), "data")


@pytest.mark.parametrize("make", [
    lambda: nn.Conv2d(1, 2, 3, rng=0), lambda: nn.MaxPool2d(2), lambda: nn.AvgPool2d(2),
    lambda: nn.Flatten(), lambda: nn.BatchNorm2d(1),
])
@pytest.mark.parametrize("dtype", ["complex64", "int8", "bool"])
def test_image_layers_refuse_non_float_input(xp, make, dtype):
    layer = make()
    with pytest.raises(TypeError, match="x (is complex|has dtype)"):
        layer.forward(xp.ones((2, 1, 8, 8), dtype=dtype))
