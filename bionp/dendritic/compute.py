r"""The forward and backward passes of :class:`bionp.dendritic.DendriticLayer`: its
compute paths, the buffers they keep, and the choice between them.

Notation as in :mod:`bionp.dendritic.layer` (``D = N·M`` dendrites of ``n`` synapses;
:math:`\epsilon` the error at the dendrites, :math:`\gamma` at the somata).

Two compute paths give the same numbers (to rounding):

``"gather"``
    work ∝ ``batch · D · n`` (``D = N·M`` dendrites).  With Numba installed (the
    ``[fast]`` extra) NumPy and the strict stand-in compute all three products —
    the dendrite sums, :math:`\partial L/\partial w` (the product :math:`\epsilon^\top
    x` sampled at the synapses, :func:`bionp.kernels.sparse_rows_dot`) and
    :math:`\partial L/\partial x` — with the compiled kernels of :mod:`bionp._kernels`,
    which read the rows of ``x.T`` in place and gather nothing (at the seed's size and
    batch 128 a training step's three products take ~0.5× the time of the formulation
    below; the seed's model then trains at ~0.9× the vanilla MLP's epoch).  Otherwise,
    where the backend has a compiled sparse kernel (NumPy and the strict stand-in:
    SciPy's CSR products, :func:`bionp.kernels.sparse_rows_matmul`) the dendrite sums
    :math:`S x^\top` of an evaluation and :math:`\partial L/\partial x = (S^\top
    \epsilon^\top)^\top` are products with the sparse ``(D, in_dim)`` matrix :math:`S`
    of the synapses, which never materialise the gathered inputs.  A training
    forward pass (:meth:`DendriticLayer.forward_cache`) instead gathers ``G =
    x.T[idx]`` of shape ``(D, n, batch)`` once, if it is at most
    ``KEEP_GATHERED_BYTES`` (4 MiB: batch 128 at the seed's size), and keeps it: the
    dendrite sums and :math:`\partial L/\partial w` are then two batched
    matrix-vector products with ``G``.  Larger batches take the sparse product, and
    :math:`\partial L/\partial w` gathers the inputs of one group of dendrites
    at a time (``x.T`` rows, dendrite-major) into one reused buffer of
    ``GATHER_BLOCK_BYTES`` (512 KiB, which stays in the CPU's cache beside ``x.T``) and
    multiplies.  Without the kernel (CuPy) ``G`` is kept up to ``GATHER_BUDGET``
    elements, and :math:`\partial L/\partial x` is a scatter-add (``xp.add.at``).
``"dense"``
    the original implementation's formulation: ``w`` scattered into a dense
    ``(D, in_dim)`` matrix :math:`W_d` (rebuilt from ``w``/``idx`` when used, so
    it never goes stale), ``x @ W_d.T``, :math:`(\epsilon^\top x)` gathered at
    ``idx``, and :math:`\epsilon W_d`.  Work ∝ ``batch · D · in_dim``.

``path="auto"`` chooses per operation by the density
:math:`\rho = n/\mathrm{in\_dim}`, with crossovers measured with NumPy/OpenBLAS
on one core (784 inputs, 230 dendrites, batch 128–256): forward pass and
:math:`\partial L/\partial w` by the gather path when :math:`\rho \le 1/16` (at
:math:`\rho = 32/784` and batch 128 the sparse product takes ~0.45× the time of
the dense matmul, the blocked weight gradient ~0.6× that of the dense one);
:math:`\partial L/\partial x` by the sparse kernel on the gather path where there
is one (~0.4× the dense matmul's time at the seed's size), else by the dense
matmul unless :math:`\rho < 1/256` (a scatter-add costs ~6 ns per synapse and
sample against ~0.025 ns per multiply-add of the matmul, i.e. it is 10–20×
slower at the seed's size).  A forward pass of more than
``GATHER_BUDGET`` gathered elements is done in batch chunks (evaluation of a
whole test set).
"""

from __future__ import annotations

import copy as _copy

from bionp.backend import check_same_backend
from bionp.kernels import (
    sparse_rows_dot,
    sparse_rows_dot_available,
    sparse_rows_matmul,
    sparse_rows_matmul_available,
    take_rows,
)

__all__ = ["ACTIVATIONS", "DendriticComputePaths", "GATHER_BLOCK_BYTES", "GATHER_BUDGET",
           "GATHER_MAX_DENSITY", "KEEP_GATHERED_BYTES", "SCATTER_MAX_DENSITY"]

#: Largest number of gathered elements (batch · D · n) of one forward chunk.
GATHER_BUDGET = 1 << 23
#: Size of the buffer the weight gradient gathers one group of dendrites' inputs into
#: (reused, so that it stays in the CPU's cache), when the forward pass kept none.  512 KiB:
#: with 1 MiB the seed's model (batch 128) trained ~4 % slower through the Trainer (the
#: buffer, ``x.T`` and the rest of a training step no longer fit a 2 MiB L2 cache together).
GATHER_BLOCK_BYTES = 1 << 19
#: Largest gathered inputs ``G`` (bytes) a training forward pass keeps where the backend has a
#: sparse kernel (NumPy).  Gathering once and multiplying twice (dendrite sums and dL/dw) beats
#: the sparse product plus the blocked gather up to about this size: a forward and backward pass
#: of the seed's layer took ~0.7x the time at batch 128 (3.8 MB), the same at batch 256 (7.5 MB).
KEEP_GATHERED_BYTES = 1 << 22
#: Density n / in_dim at or below which ``path="auto"`` gathers (forward and dL/dw).
GATHER_MAX_DENSITY = 1.0 / 16
#: Density below which ``path="auto"`` computes dL/dx by scatter-add instead of the dense matmul.
SCATTER_MAX_DENSITY = 1.0 / 256

#: Dendrite and soma nonlinearities the passes implement.
ACTIVATIONS = ("leaky_relu", "relu", "tanh", "identity")


def _act_forward(xp, name, z, slope):
    """``(f(z), aux)`` with what the backward pass needs of the piecewise-linear
    activations: ``pos = z > 0`` for ReLU, the derivative ``f'(z)`` itself (1 or
    ``slope``) for leaky ReLU, so that the backward pass is one multiplication
    (``None`` for the others)."""
    if name == "identity":
        return z, None
    if name == "tanh":
        return xp.tanh(z), None
    pos = z > 0
    if name == "relu":
        return xp.maximum(z, z.dtype.type(0.0)), pos
    factor = pos.astype(z.dtype)
    xp.maximum(factor, z.dtype.type(slope), out=factor)  # 1 where z > 0, else slope (<= 1)
    return z * factor, factor


def _act_grad(xp, name, a, aux, slope):
    """f'(z) from the forward pass's ``(a, aux)`` (an array to multiply by)."""
    if name == "tanh":
        return a.dtype.type(1.0) - a * a
    return aux  # relu: z > 0; leaky_relu: 1 or slope


def _reusable(buf, shape, like) -> bool:
    """Whether a kept buffer can serve again: the wanted shape, and the dtype and array
    type of ``like`` (the backend or the dtype may have changed since it was made)."""
    return buf is not None and tuple(buf.shape) == tuple(shape) and buf.dtype == like.dtype \
        and isinstance(buf, type(like))


class DendriticComputePaths:
    """The forward and backward passes of a dendritic layer on its two compute paths.

    A mixin: :class:`bionp.dendritic.DendriticLayer` holds the state it reads (``w``,
    ``idx``, ``soma_w``, the biases, sizes, activations, ``path``, kept buffers) and the
    input check ``_check_x``; the maths of each pass is in the module docstring and in
    :mod:`bionp.dendritic.layer`.
    """

    # -- compute path ----------------------------------------------------------------------------
    def _gather_forward(self) -> bool:
        return self.path == "gather" or (self.path == "auto" and self.density <= GATHER_MAX_DENSITY)

    def _scatter_dx(self) -> bool:
        return self.path == "gather" or (self.path == "auto" and self.density < SCATTER_MAX_DENSITY)

    def dense_weights(self):
        """The dendrite weights as a dense ``(D, in_dim)`` matrix (zeros off the synapses),
        rebuilt from ``w`` and ``idx``; the same buffer is reused between calls."""
        xp = check_same_backend(self.w, self.idx, names=("w", "idx"))
        shape = (self.n_dendrites_total, self.in_dim)
        if not _reusable(self._Wd, shape, self.w):
            self._Wd = xp.zeros(shape, dtype=self.w.dtype)
        else:
            self._Wd.fill(0)
        rows = xp.arange(shape[0])[:, None]
        self._Wd[rows, self.idx] = self.w
        return self._Wd

    # -- forward ---------------------------------------------------------------------------------
    def _keep_gathered(self, xp, batch) -> bool:
        r"""Whether a training forward pass gathers ``G = x.T[idx]`` (``(D, n, batch)``) and
        keeps it for :math:`\partial L/\partial w`: where the backend has no sparse kernel,
        up to ``GATHER_BUDGET`` elements; with SciPy's (NumPy without Numba), up to
        ``KEEP_GATHERED_BYTES``; with the compiled kernels never."""
        size = batch * self.n_dendrites_total * self.n_dendrite_inputs
        if not sparse_rows_matmul_available(xp):
            return size <= GATHER_BUDGET
        if sparse_rows_dot_available(xp):  # compiled kernels: nothing needs gathering
            return False
        return size * self.dtype.itemsize <= KEEP_GATHERED_BYTES

    def _dendrites_T(self, xp, x, gather, keep=False):
        """Dendrite pre-activations transposed, ``(D, batch)``, with the input transposed
        ``xT`` (``(in_dim, batch)``, gather path) and the gathered inputs ``G`` (``(D, n,
        batch)``: with ``keep``, or where the backend has no sparse kernel)."""
        xT = G = None
        if gather:
            xT = xp.ascontiguousarray(x.T)
            dT = None if keep else sparse_rows_matmul(xp, self.w, self.idx, self.in_dim, xT)
            if dT is None:
                G = xp.take(xT, self.idx, axis=0)                                # (D, n, B)
                dT = xp.matmul(self.w[:, None, :], G).reshape(G.shape[0], G.shape[2])
        else:
            dT = xp.matmul(self.dense_weights(), x.T)                            # (D, B)
        if self.dendrite_b is not None:
            dT += self.dendrite_b[:, None]
        return dT, xT, G

    def _soma_T(self, xp, aT):
        """Soma pre-activations transposed, ``(N, batch)``."""
        a3 = aT.reshape(self.n_neurons, self.n_dendrites, aT.shape[1])
        sT = xp.matmul(self.soma_w[:, None, :], a3)[:, 0, :]
        if self.soma_b is not None:
            sT += self.soma_b[:, None]
        return sT

    def _forward_block(self, xp, x, gather, keep=False):
        dT, xT, G = self._dendrites_T(xp, x, gather, keep)
        aT, fd = _act_forward(xp, self.dendrite_activation, dT, self.leaky_slope)
        sT = self._soma_T(xp, aT)
        yT, fs = _act_forward(xp, self.soma_activation, sT, self.leaky_slope)
        return yT, (xT, G, aT, fd, yT, fs)

    def _with_params(self, params):
        """This layer, or a shallow copy computing with ``params`` (a dict of some of
        :meth:`params`' keys) in place of its own arrays (weight perturbation)."""
        if not params:
            return self
        unknown = sorted(set(params) - set(self.params()))
        if unknown:
            raise ValueError(f"unknown DendriticLayer parameters {unknown}; it has "
                             f"{sorted(self.params())}")
        view = _copy.copy(self)
        view.__dict__.update(params)
        view._Wd = None
        view._gather_buf = None
        view._soma_V = None
        return view

    def forward(self, x, params=None):
        """Output ``(batch, n_neurons)`` for ``x`` of shape ``(batch, in_dim)``; ``params``
        (a dict like :meth:`params`) overrides the layer's arrays."""
        if params:
            return self._with_params(params).forward(x)
        xp, x = self._check_x(x)
        gather = self._gather_forward()
        per_sample = self.n_dendrites_total * self.n_dendrite_inputs
        chunk = max(1, GATHER_BUDGET // per_sample)
        if not gather or x.shape[0] <= chunk:
            yT, _ = self._forward_block(xp, x, gather)
            return xp.ascontiguousarray(yT.T)
        out = xp.empty((x.shape[0], self.n_neurons), dtype=self.dtype)
        for start in range(0, x.shape[0], chunk):
            yT, _ = self._forward_block(xp, x[start:start + chunk], True)
            out[start:start + chunk] = yT.T
        return out

    __call__ = forward

    def forward_cache(self, x, params=None):
        """``(output, cache)``: the output and what :meth:`backward` needs."""
        if params:
            return self._with_params(params).forward_cache(x)
        xp, x = self._check_x(x)
        gather = self._gather_forward()
        keep = gather and self._keep_gathered(xp, x.shape[0])
        if gather and not keep and self.path == "auto" and not sparse_rows_matmul_available(xp):
            gather = False  # too large to keep the gathered inputs: dense formulation
        yT, (xT, G, aT, fd, _, fs) = self._forward_block(xp, x, gather, keep)
        cache = {"x": x, "xT": xT, "G": G, "aT": aT, "fd": fd, "yT": yT, "fs": fs}
        return xp.ascontiguousarray(yT.T), cache

    # -- backward --------------------------------------------------------------------------------
    def backward(self, x, delta, cache=None, need_input_grad=True, feedback=None):
        r"""Gradients of the batch-mean loss and :math:`\partial L/\partial x`.

        Parameters
        ----------
        x : (batch, in_dim) the layer's input
        delta : (batch, n_neurons) :math:`\partial L/\partial y` (carries the 1/batch)
        cache : dict from :meth:`forward_cache` for this ``x``, optional (recomputed if None)
        need_input_grad : bool
            Skip :math:`\partial L/\partial x` (first layer).
        feedback : None
            The layer protocol's feedback matrix (FA/KP): a dendritic layer has no dense
            ``W`` that one could stand in for, so only ``None`` is accepted.

        Returns
        -------
        grads : dict with the keys of :meth:`params`
        delta_in : (batch, in_dim) or None
        """
        if feedback is not None:
            raise ValueError("a DendriticLayer has no dense W for a feedback matrix to replace; "
                             "feedback-alignment rules can train it only as the first layer")
        if cache is None:
            _, cache = self.forward_cache(x)
        x = cache["x"]
        xp = check_same_backend(x, delta, names=("x", "delta"))
        if getattr(delta, "ndim", None) != 2 or tuple(delta.shape) != (x.shape[0], self.n_neurons):
            raise ValueError(f"delta must have shape ({x.shape[0]}, {self.n_neurons}), got "
                             f"{tuple(getattr(delta, 'shape', ()))}")
        G, aT = cache["G"], cache["aT"]
        B = x.shape[0]
        gT = delta.T if delta.dtype == self.dtype else delta.T.astype(self.dtype)  # (N, B)
        if self.soma_activation != "identity":
            gT = gT * _act_grad(xp, self.soma_activation, cache["yT"], cache["fs"],
                                self.leaky_slope)
        grads = {}
        a3 = aT.reshape(self.n_neurons, self.n_dendrites, B)
        grads_soma_w = xp.matmul(a3, gT[:, :, None])[:, :, 0]                 # (N, M)
        # with gT made contiguous (same numbers: one nonzero term per sum), ~1/3 faster
        eT = xp.matmul(self._soma_blocks(xp), xp.ascontiguousarray(gT))       # (D, B)
        if self.dendrite_activation != "identity":
            eT *= _act_grad(xp, self.dendrite_activation, aT, cache["fd"], self.leaky_slope)
        if G is not None:
            grads["w"] = xp.matmul(G, eT[:, :, None])[:, :, 0]                # (D, n)
        elif cache.get("xT") is not None:
            grads["w"] = sparse_rows_dot(xp, self.idx, cache["xT"], eT)      # compiled kernel
            if grads["w"] is None:
                grads["w"] = self._gathered_w_grad(xp, cache["xT"], eT)
        else:
            grads["w"] = xp.take_along_axis(xp.matmul(eT, x), self.idx, axis=1)
        ones = self._ones_batch  # batch sums as matrix-vector products (faster); kept
        if not _reusable(ones, (B,), eT):
            ones = self._ones_batch = xp.ones(B, dtype=eT.dtype)
        if self.dendrite_b is not None:
            grads["dendrite_b"] = xp.matmul(eT, ones)
        grads["soma_w"] = grads_soma_w
        if self.soma_b is not None:
            grads["soma_b"] = xp.matmul(gT, ones)
        delta_in = None
        if need_input_grad:
            dxT = None
            if cache.get("xT") is not None:  # gather path: the backend's sparse kernel, if any
                dxT = sparse_rows_matmul(xp, self.w, self.idx, self.in_dim, eT, transpose=True)
            if dxT is not None:
                delta_in = xp.ascontiguousarray(dxT.T)
            elif self._scatter_dx():
                contrib = (self.w[:, :, None] * eT[:, None, :]).reshape(-1, B)
                dxT = xp.zeros((self.in_dim, B), dtype=self.dtype)
                xp.add.at(dxT, self.idx.reshape(-1), contrib)
                delta_in = xp.ascontiguousarray(dxT.T)
            else:
                delta_in = xp.matmul(eT.T, self.dense_weights())
        return grads, delta_in

    def _soma_blocks(self, xp):
        """The soma weights as a ``(D, N)`` matrix, ``v[n, m]`` at row ``nM + m``, column
        ``n`` (zeros elsewhere): ``_soma_blocks() @ gT`` sends each soma's error to its own
        dendrites.  One buffer, allocated once (its zeros never change): every call writes
        the current ``soma_w`` into its ``D`` nonzero positions."""
        D, N, M = self.n_dendrites_total, self.n_neurons, self.n_dendrites
        V = self._soma_V
        if not _reusable(V, (D, N), self.soma_w):
            V = self._soma_V = xp.zeros((D, N), dtype=self.soma_w.dtype)
            rows = xp.arange(D)
            self._soma_pos = rows * N + rows // M  # flat positions of (nM + m, n)
        V.reshape(-1)[self._soma_pos] = self.soma_w.reshape(-1)
        return V

    def _gathered_w_grad(self, xp, xT, eT):
        r""":math:`\partial L/\partial w_{kj} = \sum_b \epsilon_{bk} x_{b,\mathrm{idx}_{kj}}`
        without keeping all gathered inputs: the inputs of a group of dendrites are gathered
        into one reused buffer of ``GATHER_BLOCK_BYTES`` (which stays in the CPU's cache
        between the gather and the product), group after group."""
        D, n = self.idx.shape
        B = xT.shape[1]
        per = max(1, min(D, GATHER_BLOCK_BYTES // (n * B * xT.dtype.itemsize)))
        size = per * n * B
        buf = self._gather_buf
        if buf is None or buf.size < size or buf.dtype != xT.dtype \
                or not isinstance(buf, type(xT)):
            buf = xp.empty(size, dtype=xT.dtype)
            if size * xT.dtype.itemsize <= 2 * GATHER_BLOCK_BYTES:  # keep only small buffers
                self._gather_buf = buf
        gw = xp.empty((D, n, 1), dtype=xT.dtype)
        for a in range(0, D, per):
            b = min(a + per, D)
            # dendrite-major, Gb[k - a, j] = x[:, idx[k, j]]: each dendrite's (n, batch) block
            # is contiguous, so the batched matrix-vector product runs on contiguous
            # operands (~25 % faster than on a strided view at the seed's size)
            Gb = buf[:(b - a) * n * B].reshape(b - a, n, B)
            take_rows(xp, xT, self.idx[a:b].reshape(-1), Gb.reshape(-1, B))
            xp.matmul(Gb, eT[a:b, :, None], out=gw[a:b])
        return gw.reshape(D, n)
