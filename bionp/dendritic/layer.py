r"""Dendritic layer: neurons whose dendrites each sample a few inputs.

Each of the ``N`` neurons has ``M`` dendrites; dendrite :math:`k = nM + m`
(neuron :math:`n`, dendrite :math:`m`) is connected to ``n`` distinct inputs
:math:`\mathrm{idx}_{k,1..n}` with weights :math:`w_{k,1..n}`:

.. math::

    d_{bk} = \sum_{j=1}^{n} w_{kj}\, x_{b,\mathrm{idx}_{kj}} + c_k, \qquad
    a_{bk} = f(d_{bk}), \qquad
    y_{bn} = g\Big(\sum_{m=1}^{M} v_{nm}\, a_{b,nM+m} + e_n\Big),

with :math:`f` the dendrite nonlinearity (leaky ReLU, slope 0.1, by default),
learned soma weights :math:`v` (``soma_w``, one per dendrite, the dendrites of
a neuron feed only that neuron's soma), dendrite biases :math:`c`
(``dendrite_b``), soma biases :math:`e` (``soma_b``) and the soma nonlinearity
:math:`g` (identity by default: the next layer or activation follows; the
original NumPy implementation applied a leaky ReLU at the soma, available as
``soma_activation="leaky_relu"``).

Backward pass (:math:`\delta = \partial L/\partial y`, batch-mean loss):

.. math::

    \gamma_{bn} &= \delta_{bn}\, g'(s_{bn}), &
    \frac{\partial L}{\partial v_{nm}} &= \sum_b \gamma_{bn} a_{b,nM+m}, &
    \frac{\partial L}{\partial e_n} &= \sum_b \gamma_{bn},\\
    \epsilon_{bk} &= \gamma_{bn} v_{nm} f'(d_{bk}), &
    \frac{\partial L}{\partial w_{kj}} &= \sum_b \epsilon_{bk}\, x_{b,\mathrm{idx}_{kj}}, &
    \frac{\partial L}{\partial c_k} &= \sum_b \epsilon_{bk},\\
    \frac{\partial L}{\partial x_{bi}} &= \sum_{(k,j):\,\mathrm{idx}_{kj} = i} \epsilon_{bk} w_{kj}.

Two compute paths give the same numbers (to rounding):

``"gather"``
    work ∝ ``batch · D · n`` (``D = N·M`` dendrites).  With Numba installed (the
    ``[fast]`` extra) NumPy and the strict stand-in compute all three products —
    the dendrite sums, :math:`\partial L/\partial w` (the product :math:`\epsilon^\top
    x` sampled at the synapses, :func:`bionp.backend.sparse_rows_dot`) and
    :math:`\partial L/\partial x` — with the compiled kernels of :mod:`bionp._kernels`,
    which read the rows of ``x.T`` in place and gather nothing (at the seed's size and
    batch 128 a training step's three products take ~0.5× the time of the formulation
    below; the seed's model then trains at ~0.9× the vanilla MLP's epoch).  Otherwise,
    where the backend has a compiled sparse kernel (NumPy and the strict stand-in:
    SciPy's CSR products, :func:`bionp.backend.sparse_rows_matmul`) the dendrite sums
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

Synaptic resampling
-------------------
Call :meth:`DendriticLayer.after_update` once after every optimiser step; every
``steps_to_resample`` calls it runs :meth:`DendriticLayer.resample` (see
:mod:`bionp.dendritic.resampling`), which replaces synapses in place and
records them in :attr:`DendriticLayer.resampled_mask`.  :class:`bionp.train.Trainer`
calls ``net.after_update()`` of a :class:`bionp.nn.Sequential` after every step,
so nothing more is needed there; :func:`after_step` does it for hand-written loops.
Optimisers keep their per-parameter state (momentum, Adam's moments) with the
synapse *slot*, so a replaced synapse inherits its predecessor's state unless
:func:`bionp.dendritic.resampling.reset_optimizer_state` is called
(``Trainer(..., after_step=bionp.dendritic.trainer_callback(reset_optimizer_state=True))``,
or a callback registered with :meth:`DendriticLayer.add_resample_callback`).
In the original dense formulation the state lives at each (dendrite, input)
position instead, so a synapse moved to a new input starts from that
position's moments (zero unless it was connected recently).
"""

from __future__ import annotations

import copy as _copy
import math
import numbers

from bionp.backend import (
    check_same_backend,
    get_xp,
    is_array,
    resolve_dtype,
    sparse_rows_dot,
    sparse_rows_dot_available,
    sparse_rows_matmul,
    sparse_rows_matmul_available,
    take_rows,
    to_scalar,
)
from bionp.dendritic.resampling import (
    reset_optimizer_state as _reset_optimizer_state,
    resample_probabilistic,
    resample_weakest,
)
from bionp.random import check_rng
from bionp.validation import check_finite, check_float_dtype

__all__ = ["DendriticLayer", "GATHER_BUDGET", "GATHER_BLOCK_BYTES", "KEEP_GATHERED_BYTES",
           "ACTIVATIONS", "after_step", "trainer_callback"]

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

ACTIVATIONS = ("leaky_relu", "relu", "tanh", "identity")
_PATHS = ("auto", "gather", "dense")
_RESAMPLING = ("weakest", "probabilistic")
_INITS = ("dense_he", "he")


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


def _check_int(name, v, minimum=1):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}")
    return int(v)


class DendriticLayer:
    """Sparse dendritic layer with learned soma weights and synaptic resampling.

    Parameters
    ----------
    in_dim : int
        Number of inputs (784 for 28×28 images).
    n_neurons : int
        Number of output neurons (somas).
    n_dendrite_inputs : int
        Synapses per dendrite (distinct inputs), ``<= in_dim``.
    n_dendrites : int
        Dendrites per neuron.
    synaptic_resampling : bool, default True
        Resample every ``steps_to_resample`` calls of :meth:`after_update`.
    percentage_resample : float in [0, 1], default 0.25
        Fraction of each dendrite's synapses replaced per event (``"weakest"``:
        ``int(n_dendrite_inputs * percentage_resample)`` synapses).
    steps_to_resample : int >= 1, default 128
    dendrite_activation, soma_activation : {"leaky_relu", "relu", "tanh", "identity"}
        Defaults ``"leaky_relu"`` and ``"identity"``.
    leaky_slope : float in [0, 1], default 0.1
    bias : bool, default True
        Dendrite and soma biases (both or neither).
    resampling : {"weakest", "probabilistic"}, default "weakest"
    prune_max, prune_threshold, prune_steepness : float
        Parameters of the probabilistic variant (0.95, 0.6, 0.1 as in the original).
    init : {"dense_he", "he"}, default "dense_he"
        ``"dense_he"`` is the original implementation's He initialisation of its
        dense matrices: :math:`w \\sim \\mathcal N(0, 2/\\mathrm{in\\_dim})`,
        :math:`v \\sim \\mathcal N(0, 2/(N M))`; ``"he"`` uses the true fan-ins,
        :math:`\\mathcal N(0, 2/n)` and :math:`\\mathcal N(0, 2/M)`.  Biases start at 0.
        New synapses are drawn with the same standard deviation as ``w``.
    path : {"auto", "gather", "dense"}, default "auto"
        Compute path (see the module docstring).
    rng : int, Generator or None
        The layer's generator: initial connectivity, weights, and every
        resampling event.
    dtype : float dtype, default ``bionp.get_dtype()``

    Attributes
    ----------
    idx : int64 array (D, n_dendrite_inputs)
        Input index of every synapse; ``D = n_neurons * n_dendrites``, dendrite
        ``k`` belongs to neuron ``k // n_dendrites``.
    w : array (D, n_dendrite_inputs)
    dendrite_b : array (D,) or None
    soma_w : array (n_neurons, n_dendrites)
    soma_b : array (n_neurons,) or None
    resampled_mask : bool array (D, n_dendrite_inputs) or None
        Synapses replaced by the latest resampling event.
    n_updates : int
        Calls of :meth:`after_update` so far; ``n_resamplings`` events so far.

    Notes
    -----
    **Which learning rules apply** (in a :class:`bionp.nn.Sequential`, e.g.
    ``Sequential([DendriticLayer(784, 10, 32, 23), Dense(10, 10)],
    activations=[LeakyReLU(0.1), "identity"])``):

    * :class:`~bionp.rules.Backprop` — always: :meth:`backward` is the exact
      gradient of every parameter and of the input (gradchecked).
    * :class:`~bionp.rules.FeedbackAlignment`, :class:`~bionp.rules.KolenPollack`
      — when the dendritic layer is the **first** layer: these rules replace a
      layer's ``W`` by a feedback matrix only to send the error on to the layer
      *below*, and the first layer sends nothing back (``need_input_grad=False``).
      At any later position the error would have to pass back through this
      layer, which has no dense ``(out, in)`` matrix a feedback matrix could
      stand in for (its input map is the composition of sparse synapses, the
      dendrite nonlinearity and the soma weights): the rule raises a
      ``ValueError`` naming the layer (and :meth:`backward` refuses ``feedback=``).
    * :class:`~bionp.rules.DirectFeedbackAlignment` — at any position: every
      layer receives its error directly from the output through a random matrix,
      so nothing passes back through this layer.
    * In all three the error reaching the soma is passed to the dendrites with
      the layer's own soma weights :math:`v` (exact within the neuron: the
      coupling of a neuron's own dendrites and soma, not transport of another
      layer's weights).
    * :class:`~bionp.rules.WeightPerturbation` — applies: it perturbs every
      array of :meth:`params` (synapses, soma weights, biases) and needs only
      forward passes.
    * :class:`~bionp.rules.NodePerturbation` — does not apply: it estimates
      :math:`\\partial L/\\partial z` of a layer's units and forms the weight
      update as :math:`\\delta^\\top x`, which holds for a dense layer only; the
      dendrite and soma internals have no such outer-product form, so the rule
      raises a ``ValueError``.

    The synaptic resampling is independent of the rule: the Trainer calls
    ``net.after_update()`` after every optimiser step.
    """

    def __init__(self, in_dim, n_neurons, n_dendrite_inputs, n_dendrites,
                 synaptic_resampling=True, percentage_resample=0.25, steps_to_resample=128,
                 dendrite_activation="leaky_relu", leaky_slope=0.1, bias=True,
                 resampling="weakest", init="dense_he", soma_activation="identity",
                 prune_max=0.95, prune_threshold=0.6, prune_steepness=0.1, path="auto",
                 rng=None, dtype=None):
        self.in_dim = _check_int("in_dim", in_dim)
        self.n_neurons = _check_int("n_neurons", n_neurons)
        self.n_dendrite_inputs = _check_int("n_dendrite_inputs", n_dendrite_inputs)
        self.n_dendrites = _check_int("n_dendrites", n_dendrites)
        if self.n_dendrite_inputs > self.in_dim:
            raise ValueError(
                f"n_dendrite_inputs={n_dendrite_inputs} exceeds in_dim={in_dim}: a dendrite "
                f"connects to distinct inputs, so use n_dendrite_inputs <= {in_dim}")
        self.steps_to_resample = _check_int("steps_to_resample", steps_to_resample)
        if isinstance(percentage_resample, bool) \
                or not isinstance(percentage_resample, numbers.Real) \
                or not 0.0 <= percentage_resample <= 1.0:
            raise ValueError(f"percentage_resample must be a fraction in [0, 1] (0.25 = a quarter "
                             f"of each dendrite's synapses), got {percentage_resample!r}")
        for name, value, allowed in (("dendrite_activation", dendrite_activation, ACTIVATIONS),
                                     ("soma_activation", soma_activation, ACTIVATIONS),
                                     ("resampling", resampling, _RESAMPLING),
                                     ("init", init, _INITS), ("path", path, _PATHS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if isinstance(leaky_slope, bool) or not isinstance(leaky_slope, numbers.Real) \
                or not 0.0 <= leaky_slope <= 1.0:
            raise ValueError(f"leaky_slope must be a number in [0, 1] (0.1 in the original), got "
                             f"{leaky_slope!r}")
        for name, value, ok, want in (
                ("prune_max", prune_max, lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1]"),
                ("prune_threshold", prune_threshold, lambda v: v >= 0.0, "a weight size >= 0"),
                ("prune_steepness", prune_steepness, lambda v: v > 0.0, "a number > 0")):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                    or not math.isfinite(value) or not ok(value):
                raise ValueError(f"{name} must be {want} (probabilistic resampling), got "
                                 f"{value!r}")
        self.synaptic_resampling = bool(synaptic_resampling)
        self.percentage_resample = float(percentage_resample)
        self.dendrite_activation = dendrite_activation
        self.soma_activation = soma_activation
        self.leaky_slope = float(leaky_slope)
        self.resampling = resampling
        self.prune_max = float(prune_max)
        self.prune_threshold = float(prune_threshold)
        self.prune_steepness = float(prune_steepness)
        self.init = init
        self.path = path
        self.dtype = resolve_dtype(dtype)
        n_free = self.in_dim - self.n_dendrite_inputs
        if self.synaptic_resampling:
            if resampling == "weakest" and self.n_resample > n_free:
                raise ValueError(
                    f"resampling {self.n_resample} synapses per dendrite needs that many "
                    f"unconnected inputs, but only {n_free} of in_dim={in_dim} are free "
                    f"(n_dendrite_inputs={n_dendrite_inputs}); lower percentage_resample or "
                    "n_dendrite_inputs, or set synaptic_resampling=False")
            if resampling == "probabilistic" and n_free < 1:
                raise ValueError(
                    f"probabilistic resampling needs unconnected inputs, but every dendrite "
                    f"connects to all in_dim={in_dim} inputs; set synaptic_resampling=False")

        n_dend = self.n_neurons * self.n_dendrites
        if init == "dense_he":
            self.init_std = math.sqrt(2.0 / self.in_dim)
            self.soma_init_std = math.sqrt(2.0 / n_dend)
        else:
            self.init_std = math.sqrt(2.0 / self.n_dendrite_inputs)
            self.soma_init_std = math.sqrt(2.0 / self.n_dendrites)
        self.rng = check_rng(rng)
        xp = get_xp()
        # initial connectivity: n distinct random inputs per dendrite, in ascending order
        keys = self.rng.random((n_dend, self.in_dim), dtype="float64", xp=xp)
        if self.n_dendrite_inputs < self.in_dim:
            part = xp.argpartition(keys, self.n_dendrite_inputs - 1, axis=1)
            self.idx = xp.sort(part[:, :self.n_dendrite_inputs], axis=1).astype(xp.int64)
        else:
            self.idx = xp.broadcast_to(xp.arange(self.in_dim, dtype=xp.int64),
                                       (n_dend, self.in_dim)).copy()
        self.w = self.rng.normal(0.0, self.init_std, (n_dend, self.n_dendrite_inputs),
                                 dtype=self.dtype, xp=xp)
        self.soma_w = self.rng.normal(0.0, self.soma_init_std, (self.n_neurons, self.n_dendrites),
                                      dtype=self.dtype, xp=xp)
        if bias:
            self.dendrite_b = xp.zeros(n_dend, dtype=self.dtype)
            self.soma_b = xp.zeros(self.n_neurons, dtype=self.dtype)
        else:
            self.dendrite_b = None
            self.soma_b = None
        self.n_updates = 0
        self.n_resamplings = 0
        self.resampled_mask = None
        self.resampled_last_update = False
        self._callbacks = []
        self._Wd = None
        self._gather_buf = None
        self._soma_V = None
        self._ones_batch = None

    # -- sizes and parameters ---------------------------------------------------------------
    @property
    def n_dendrites_total(self) -> int:
        return self.n_neurons * self.n_dendrites

    @property
    def out_features(self) -> int:
        return self.n_neurons

    @property
    def in_features(self) -> int:
        return self.in_dim

    @property
    def has_bias(self) -> bool:
        return self.dendrite_b is not None

    @property
    def n_resample(self) -> int:
        """Synapses per dendrite replaced by one ``"weakest"`` event."""
        return int(self.n_dendrite_inputs * self.percentage_resample)

    @property
    def density(self) -> float:
        """Fraction of the inputs each dendrite sees, ``n_dendrite_inputs / in_dim``."""
        return self.n_dendrite_inputs / self.in_dim

    def params(self) -> dict:
        """The learned arrays themselves (optimisers update them in place):
        ``{"w", "dendrite_b", "soma_w", "soma_b"}`` (biases only with ``bias=True``)."""
        out = {"w": self.w}
        if self.dendrite_b is not None:
            out["dendrite_b"] = self.dendrite_b
        out["soma_w"] = self.soma_w
        if self.soma_b is not None:
            out["soma_b"] = self.soma_b
        return out

    @property
    def n_params(self) -> int:
        """Effective number of learned values: synapses, soma weights and biases
        (``idx`` is structure, not a parameter; no dense mask is counted)."""
        return int(sum(v.size for v in self.params().values()))

    def count_parameters(self) -> int:
        return self.n_params

    def get_config(self) -> dict:
        return {"in_dim": self.in_dim, "n_neurons": self.n_neurons,
                "n_dendrite_inputs": self.n_dendrite_inputs, "n_dendrites": self.n_dendrites,
                "synaptic_resampling": self.synaptic_resampling,
                "percentage_resample": self.percentage_resample,
                "steps_to_resample": self.steps_to_resample,
                "dendrite_activation": self.dendrite_activation, "leaky_slope": self.leaky_slope,
                "bias": self.has_bias, "resampling": self.resampling, "init": self.init,
                "soma_activation": self.soma_activation, "prune_max": self.prune_max,
                "prune_threshold": self.prune_threshold, "prune_steepness": self.prune_steepness,
                "path": self.path, "dtype": self.dtype.name}

    def __repr__(self) -> str:
        return (f"DendriticLayer({self.in_dim}, {self.n_neurons}, {self.n_dendrite_inputs}, "
                f"{self.n_dendrites}, synaptic_resampling={self.synaptic_resampling}, "
                f"resampling={self.resampling!r})")

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Parameters, connectivity, counters and the generator's state."""
        out = dict(self.params())
        out.update({"idx": self.idx, "n_updates": self.n_updates,
                    "n_resamplings": self.n_resamplings, "rng": self.rng.get_state()})
        return out

    def load_state_dict(self, state: dict) -> None:
        """Copy a :meth:`state_dict` back **in place** (shapes and the input indices are
        checked first, so a refused state changes nothing)."""
        for k, v in self.params().items():
            if tuple(state[k].shape) != tuple(v.shape):
                raise ValueError(f"{k}: expected shape {tuple(v.shape)}, "
                                 f"got {tuple(state[k].shape)}")
        idx = state["idx"]
        if tuple(idx.shape) != tuple(self.idx.shape):
            raise ValueError(f"idx: expected shape {tuple(self.idx.shape)}, got {tuple(idx.shape)}")
        lo, hi = (int(to_scalar(v)) for v in (idx.min(), idx.max()))
        if lo < 0 or hi >= self.in_dim:
            raise ValueError(f"idx: input indices must lie in [0, {self.in_dim}), got {lo} to "
                             f"{hi}; is the state from a layer with another in_dim?")
        for k, v in self.params().items():
            v[...] = state[k]
        self.idx[...] = idx
        self.n_updates = int(state["n_updates"])
        self.n_resamplings = int(state["n_resamplings"])
        self.rng.set_state(state["rng"])

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

    def _check_x(self, x):
        if not is_array(x):
            raise TypeError(f"x must be an array of the active backend with shape (batch, "
                            f"{self.in_dim}), got {type(x).__name__}; convert it with "
                            "bionp.asarray(x)")
        xp = check_same_backend(x, self.w, names=("x", "the layer's weights"))
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            hint = " (flatten images with x.reshape(len(x), -1))" if x.ndim > 2 else ""
            raise ValueError(f"DendriticLayer(in_dim={self.in_dim}) expects input of shape "
                             f"(batch, {self.in_dim}), got {tuple(x.shape)}{hint}")
        check_float_dtype(x, "x")
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        check_finite(x, "x", "clean or mask them before the dendritic layer")
        return xp, x

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

    # -- resampling ------------------------------------------------------------------------------
    def add_resample_callback(self, fn) -> None:
        """Call ``fn(layer, mask)`` after every resampling event (e.g. to reset optimiser state)."""
        if not callable(fn):
            raise TypeError(f"callback must be callable, got {type(fn).__name__}")
        self._callbacks.append(fn)

    def resample(self):
        """One resampling event now (see :mod:`bionp.dendritic.resampling`); returns the mask
        of replaced synapses (also kept as :attr:`resampled_mask`)."""
        if self.resampling == "weakest":
            mask = resample_weakest(self.idx, self.w, self.in_dim, self.n_resample, self.rng,
                                    self.init_std)
        else:
            mask = resample_probabilistic(self.idx, self.w, self.in_dim, self.rng, self.init_std,
                                          self.prune_max, self.prune_threshold,
                                          self.prune_steepness)
        self.n_resamplings += 1
        self.resampled_mask = mask
        for fn in self._callbacks:
            fn(self, mask)
        return mask

    def after_update(self) -> bool:
        """Count one optimiser update; resample when ``steps_to_resample`` updates have passed.

        Returns True if a resampling event happened.
        """
        self.n_updates += 1
        self.resampled_last_update = bool(
            self.synaptic_resampling and self.n_updates % self.steps_to_resample == 0)
        if self.resampled_last_update:
            self.resample()
        return self.resampled_last_update

    step_done = after_update


def after_step(net, optimizer=None, reset_optimizer_state: bool = False) -> int:
    """Call :meth:`DendriticLayer.after_update` on every layer of ``net`` that has it.

    With ``reset_optimizer_state=True`` the optimiser's state of the replaced
    synapses is zeroed.  Returns the number of resampling events.  Use as
    ``Trainer(..., after_step=lambda tr: after_step(tr.net, tr.optimizer))``.
    """
    layers = getattr(net, "layers", [net])
    n = 0
    for layer in layers:
        if hasattr(layer, "after_update") and layer.after_update():
            n += 1
            if reset_optimizer_state and optimizer is not None:
                _reset_optimizer_state(optimizer, layer.w, layer.resampled_mask)
    return n


def trainer_callback(reset_optimizer_state: bool = False):
    """A ``Trainer(after_step=...)`` callback: :func:`after_step` on the trainer's network
    and optimiser after every update.

    :class:`bionp.train.Trainer` already calls ``net.after_update()`` (which resamples)
    after every step of a :class:`bionp.nn.Sequential`; with such a trainer the callback
    only resets the optimiser's state of the synapses replaced in that step (with
    ``reset_optimizer_state=True``) and returns the number of resampling events.
    """

    def callback(trainer):
        if getattr(trainer, "updates_layers", False) and hasattr(trainer.net, "after_update"):
            n = 0
            for layer in trainer.net.layers:
                if getattr(layer, "resampled_last_update", False):
                    n += 1
                    if reset_optimizer_state:
                        _reset_optimizer_state(trainer.optimizer, layer.w, layer.resampled_mask)
            return n
        return after_step(trainer.net, trainer.optimizer, reset_optimizer_state)

    return callback
