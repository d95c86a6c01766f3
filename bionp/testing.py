"""Helpers for testing code written against ``xp``: comparisons and gradchecks.

These are public so that users testing their own rules can use them too.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
from typing import Callable, Iterator

import numpy as np

from bionp.backend import asnumpy, get_array_module, to_scalar

__all__ = ["HostSyncs", "assert_allclose", "assert_equal", "count_host_syncs",
           "network_gradient_errors", "numerical_gradient", "relative_error"]


def assert_allclose(actual, desired, rtol=1e-7, atol=0.0, err_msg=""):
    """``numpy.testing.assert_allclose`` on host copies of arrays of any backend.

    Parameters
    ----------
    actual, desired : arrays (any backend) or numbers
    rtol, atol : float
    err_msg : str
    """
    np.testing.assert_allclose(asnumpy(actual), asnumpy(desired), rtol=rtol, atol=atol, err_msg=err_msg)


def assert_equal(actual, desired, err_msg=""):
    """Bitwise equality (``numpy.testing.assert_array_equal``) on host copies.

    Parameters
    ----------
    actual, desired : arrays (any backend) or numbers
    err_msg : str
    """
    np.testing.assert_array_equal(asnumpy(actual), asnumpy(desired), err_msg=err_msg)


def relative_error(a, b) -> float:
    """``max|a - b| / max(max|a|, max|b|, tiny)`` on host copies.

    Parameters
    ----------
    a, b : arrays (any backend)
    """
    a = asnumpy(a).astype(np.float64)
    b = asnumpy(b).astype(np.float64)
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0), np.finfo(float).tiny)
    return float(np.max(np.abs(a - b), initial=0.0) / scale)


def numerical_gradient(f: Callable[[], object], param, eps: float = 1e-6):
    r"""Central finite differences :math:`(f(\theta + h e_i) - f(\theta - h e_i)) / 2h`.

    ``f`` takes no arguments and returns a scalar (array or float) computed from
    ``param``, which is perturbed **in place** one entry at a time and restored.
    Use float64 parameters.

    Parameters
    ----------
    f : callable
        ``f()`` -> scalar.
    param : array
        Perturbed in place, entry by entry, and restored.
    eps : float, default 1e-6
        The step :math:`h`.
    """
    xp = get_array_module(param)
    grad = xp.zeros(param.shape, dtype=xp.float64)
    flat = param.reshape(-1)
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        old = to_scalar(flat[i])
        flat[i] = old + eps
        fp = float(to_scalar(f()))
        flat[i] = old - eps
        fm = float(to_scalar(f()))
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return grad


def network_gradient_errors(net, x, target, loss_fn, grads, eps: float = 1e-6) -> dict:
    r"""Relative error of ``grads`` (a rule's output for ``net`` on ``(x, target)``) against
    central differences of ``net.loss(x, target, loss_fn)`` for every parameter array.

    Returns ``{(layer index, parameter name): relative_error}``; a missing or extra gradient
    key raises ``AssertionError``.  Use a float64 network with deterministic layers.

    Parameters
    ----------
    net : Sequential or MLP
    x, target : arrays
    loss_fn : Loss
    grads : list of dict of arrays
        The gradients to check, aligned with ``net.layers``.
    eps : float, default 1e-6
        The finite-difference step.
    """
    errors = {}
    for l, layer in enumerate(net.layers):
        params = layer.params()
        assert set(grads[l]) == set(params), (l, sorted(grads[l]), sorted(params))
        for k, p in params.items():
            num = numerical_gradient(lambda: net.loss(x, target, loss_fn), p, eps=eps)
            errors[(l, k)] = relative_error(grads[l][k], num)
    return errors


@dataclasses.dataclass
class HostSyncs:
    """Device-to-host transfers counted by :func:`count_host_syncs`: ``count`` in total and
    ``sites``, a ``collections.Counter`` by calling line (``"train.py:412"``).

    Parameters
    ----------
    count : int
    sites : dict of str -> int
    """

    count: int = 0
    sites: dict = dataclasses.field(default_factory=dict)


@contextlib.contextmanager
def count_host_syncs() -> Iterator[HostSyncs]:
    """Count the explicit device-to-host transfers (``asnumpy``, ``to_scalar``, ``.get()``,
    ``.item()``) made on the strict stand-in inside the block.

    On a GPU each one waits for every queued kernel, so a training step should make only
    the ones its design needs; the strict backend counts them so that CPU tests can bound
    them (implicit transfers, ``float(a)`` or ``if a:``, are refused there outright)::

        with bnp.backend("strict"), count_host_syncs() as syncs:
            trainer.fit(x, y, epochs=1)
        assert syncs.count <= steps + 5, syncs.sites
    """
    from bionp._host_syncs import host_syncs  # noqa: PLC0415

    start = host_syncs["count"]
    before = collections.Counter(host_syncs["sites"])
    result = HostSyncs()
    try:
        yield result
    finally:
        result.count = host_syncs["count"] - start
        result.sites = collections.Counter(host_syncs["sites"]) - before
