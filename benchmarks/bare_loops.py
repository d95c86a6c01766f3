"""The bare NumPy loops that ``benchmarks/rules.py`` times next to bionp: a backprop epoch,
a weight-perturbation epoch and the epoch's matrix products alone, each with preallocated
buffers and in-place operations (the same maths as bionp's Trainer; tested in
``tests/test_benchmark_rules.py``)."""

from __future__ import annotations

import time

import numpy as np


def _sigmoid(z):
    """``z`` <- 1 / (1 + exp(-z)) in place (what bionp's Sigmoid computes)."""
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1
    np.reciprocal(z, out=z)


def minimal_backprop_epoch(params, x, t, order, batch=200, lr=0.1):
    r"""One backprop epoch of the 784-500-10 sigmoid MLP (MSE, SGD) as a bare NumPy loop.

    The same maths as ``Trainer(MLP, Backprop(), SGD)``: per batch
    :math:`a_1 = \sigma(x W_1^T + b_1)`, :math:`a_2 = \sigma(a_1 W_2^T + b_2)`,
    :math:`\delta_2 = \tfrac{2}{B}(a_2 - t) a_2 (1 - a_2)`,
    :math:`\delta_1 = (\delta_2 W_2) a_1 (1 - a_1)`, :math:`W_l \leftarrow W_l - \eta
    \delta_l^T a_{l-1}`; every buffer allocated once, every elementwise step in place.

    ``params``: ``[W1, b1, W2, b2]`` NumPy arrays, updated in place; ``order``: the sample
    order.  Returns the batch losses.
    """
    W1, b1, W2, b2 = params
    dt = x.dtype.type
    z1, tmp1 = np.empty((batch, W1.shape[0]), dt), np.empty((batch, W1.shape[0]), dt)
    z2, tmp2 = np.empty((batch, W2.shape[0]), dt), np.empty((batch, W2.shape[0]), dt)
    grads = [np.empty_like(p) for p in params]
    gW1, gb1, gW2, gb2 = grads

    losses = []
    for i in range(x.shape[0] // batch):
        idx = order[i * batch:(i + 1) * batch]
        xb, tb = x[idx], t[idx]
        np.matmul(xb, W1.T, out=z1)
        z1 += b1
        _sigmoid(z1)  # a1
        np.matmul(z1, W2.T, out=z2)
        z2 += b2
        _sigmoid(z2)  # a2
        np.subtract(z2, tb, out=tmp2)  # e
        losses.append(float(np.einsum("ij,ij->", tmp2, tmp2)) / batch)
        tmp2 *= dt(2.0 / batch)
        tmp2 *= z2
        np.subtract(1, z2, out=z2)
        tmp2 *= z2  # delta2
        np.matmul(tmp2.T, z1, out=gW2)
        np.sum(tmp2, axis=0, out=gb2)
        np.matmul(tmp2, W2, out=tmp1)
        tmp1 *= z1
        np.subtract(1, z1, out=z1)
        tmp1 *= z1  # delta1
        np.matmul(tmp1.T, xb, out=gW1)
        np.sum(tmp1, axis=0, out=gb1)
        for p, gr in zip(params, grads):
            gr *= dt(lr)
            p -= gr
    return losses


def minimal_wp_epoch(params, x, t, order, rng, batch=200, lr=0.1, sigma=0.1,
                     clock=time.perf_counter):
    r"""One weight-perturbation epoch of the same MLP as a bare NumPy loop, its floor: per
    batch the clean loss, the N(0, σ²) draws of every parameter from ``rng`` (parameter by
    parameter, as the rule draws them) into one preallocated array, the perturbed loss and
    :math:`\theta \mathrel{-}= \eta\,(L(\theta+\varepsilon) - L(\theta))\,\varepsilon/\sigma^2`:
    two forward passes and a draw, what no implementation of the rule can skip.  Returns
    the seconds spent drawing (timed inside the loop, right after matrix products)."""
    dt = x.dtype.type
    flat = np.empty(sum(p.size for p in params), dt)
    eps = [v.reshape(p.shape) for v, p in
           zip(np.split(flat, np.cumsum([p.size for p in params])[:-1]), params)]
    pert = [np.empty_like(p) for p in params]
    z = [np.empty((batch, params[0].shape[0]), dt), np.empty((batch, params[2].shape[0]), dt)]

    def loss(W1, b1, W2, b2, xb, tb):
        for W, b, inp, out in ((W1, b1, xb, z[0]), (W2, b2, z[0], z[1])):
            np.matmul(inp, W.T, out=out)
            out += b
            _sigmoid(out)
        z[1] -= tb
        return float(np.einsum("ij,ij->", z[1], z[1])) / batch

    drawing = 0.0
    with np.errstate(over="ignore"):
        for i in range(x.shape[0] // batch):
            idx = order[i * batch:(i + 1) * batch]
            xb, tb = x[idx], t[idx]
            base = loss(*params, xb, tb)
            t0 = clock()
            for e in eps:
                rng.normal(0.0, sigma, e.shape, dtype=e.dtype, xp=np, out=e)
            drawing += clock() - t0
            for p, e, q in zip(params, eps, pert):
                np.add(p, e, out=q)
            flat *= dt(-lr * (loss(*pert, xb, tb) - base) / sigma ** 2)
            for p, e in zip(params, eps):
                p += e
    return drawing


def gemm_epoch(params, x, order, batch=200):
    """The epoch's matrix products alone, at the shapes of :func:`minimal_backprop_epoch`
    (the batch gathered, then forward of both layers, both weight gradients and the hidden
    delta, each into a preallocated ``out=``): the GEMM-efficiency floor of a backprop
    epoch with this BLAS (nothing else in the epoch is unavoidable arithmetic)."""
    W1, _, W2, _ = params
    dt = x.dtype.type
    z1, t1 = (np.empty((batch, W1.shape[0]), dt) for _ in range(2))
    z2 = np.empty((batch, W2.shape[0]), dt)
    gW1, gW2 = np.empty_like(W1), np.empty_like(W2)
    for i in range(x.shape[0] // batch):
        xb = x[order[i * batch:(i + 1) * batch]]
        np.matmul(xb, W1.T, out=z1)
        np.matmul(z1, W2.T, out=z2)
        np.matmul(z2.T, z1, out=gW2)
        np.matmul(z2, W2, out=t1)
        np.matmul(t1.T, xb, out=gW1)
