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

The passes and their two compute paths (``"gather"``, ``"dense"``, chosen per
operation by ``path="auto"``) are in :mod:`bionp.dendritic.compute`.

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

import math
import numbers

from bionp.backend import check_same_backend, get_xp, is_array, resolve_dtype, to_scalar
from bionp.dendritic.compute import ACTIVATIONS, DendriticComputePaths
from bionp.dendritic.resampling import resample_probabilistic, resample_weakest
from bionp.random import check_rng
from bionp.validation import check_finite, check_float_dtype, data_already_checked

__all__ = ["ACTIVATIONS", "DendriticLayer"]

_PATHS = ("auto", "gather", "dense")
_RESAMPLING = ("weakest", "probabilistic")
_INITS = ("dense_he", "he")

def _check_int(name, v, minimum=1):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}")
    return int(v)


class DendriticLayer(DendriticComputePaths):
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
    new_weight_scale : float > 0 or None, default None
        Laplace scale :math:`b` of the weights the probabilistic variant gives new
        synapses; None uses the layer's initial standard deviation,
        :math:`b = \\sigma/\\sqrt2`.  The original NumPy implementation drew them from
        Laplace(0, 0.05): ``new_weight_scale=0.05``.
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
                 rng=None, dtype=None, new_weight_scale=None):
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
        if new_weight_scale is not None and (
                isinstance(new_weight_scale, bool) or not isinstance(new_weight_scale, numbers.Real)
                or not math.isfinite(new_weight_scale) or not new_weight_scale > 0):
            raise ValueError(f"new_weight_scale must be a Laplace scale > 0 or None (the layer's "
                             f"initial std / sqrt 2), got {new_weight_scale!r}")
        self.new_weight_scale = None if new_weight_scale is None else float(new_weight_scale)
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
                "new_weight_scale": self.new_weight_scale, "path": self.path,
                "dtype": self.dtype.name}

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
        if not data_already_checked():  # the Trainer checks its data once per fit
            check_finite(x, "x", "clean or mask them before the dendritic layer")
        return xp, x

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
                                          self.prune_steepness,
                                          laplace_scale=self.new_weight_scale)
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
