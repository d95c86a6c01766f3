r"""Unsupervised learning by competing hidden units (Krotov & Hopfield, PNAS 2019): the
estimator :class:`KrotovHopfield` (initialisation, the training schedule, features,
diagnostics).

The rule itself, its norm dynamics, the ranking of units and the cost of one update are
in :mod:`bionp.hebbian.learning_rule`; in short, for a minibatch ``x`` the currents are
:math:`I = x\,W_p^\top` with :math:`W_p = \operatorname{sign}(W)|W|^{p-1}`, the strongest
unit of each sample learns Hebbian, the ``k``-th anti-Hebbian (strength :math:`\Delta`),
and :math:`W` moves by a step of size :math:`\varepsilon` normalised by the largest
change, with :math:`\varepsilon_e = \text{lr}\,(1 - e/E)` in epoch :math:`e` of
:math:`E`.

Inputs
------
The rule does not rescale inputs by itself.  Pass ``normalize=True`` to scale
every input row to unit Euclidean norm before use (in :meth:`~KrotovHopfield.fit`,
:meth:`~KrotovHopfield.partial_fit`, :meth:`~KrotovHopfield.currents` and
:meth:`~KrotovHopfield.transform`), or
normalise the data beforehand.

Excitatory and inhibitory inputs (Dale's principle)
---------------------------------------------------
With ``inhibitory_fraction=f`` a fixed sign per presynaptic (input) unit is
drawn once: ``round(f * n_in)`` input units, chosen with ``rng``, are
inhibitory (sign −1), the others excitatory (+1).  The sign applies to a whole
column of :math:`W`.  Initial weights are ``|W0| * sign`` and after every update
a weight that would cross zero is set to zero (it may grow again in its
allowed direction later), so ``W * sign >= 0`` holds at all times.

Reference: D. Krotov and J. J. Hopfield, "Unsupervised learning by competing
hidden units", PNAS 116 (16), 7723–7731 (2019).
"""

from __future__ import annotations

import numbers
import time
from typing import Any

import numpy as np

from bionp.backend import (
    asarray,
    get_array_module,
    get_xp,
    is_array,
    resolve_dtype,
    to_scalar,
)
from bionp.hebbian.learning_rule import (
    competition,
    hebbian_currents,
    krotov_hopfield_update,
    power_weights,
)
from bionp.progress import progress_range
from bionp.random import Generator, check_rng
from bionp.validation import check_number as _check_number
from bionp.validation import check_samples

#: whether :meth:`KrotovHopfield.transform` has said once that its meaning changed
_TRANSFORM_WARNED = False

__all__ = [
    "KrotovHopfield",
    "competition",
    "hebbian_currents",
    "krotov_hopfield_update",
    "power_weights",
]


# --------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------

class KrotovHopfield:
    r"""Competing hidden units trained by the Krotov–Hopfield Hebbian rule.

    The update of one minibatch (``x`` of shape ``(batch, n_in)``):

    .. math::

        I = x\,(\operatorname{sign}(W)|W|^{p-1})^\top,\quad
        \Delta W = g^\top x - \big(\textstyle\sum_b g\odot I\big)\odot W,\quad
        W \leftarrow W + \varepsilon\,\Delta W / \max(\max|\Delta W|, \text{precision})

    where per sample the strongest unit has :math:`g = 1`, the ``k``-th strongest
    :math:`g = -\Delta` and all others 0 (ties: lowest index first).

    Parameters
    ----------
    n_hidden : int
        Number of hidden units (> ``k``).
    p : float >= 1
        Lebesgue exponent of the rule (the paper uses 3 on MNIST; 2 is the seed's default).
    k : int >= 2
        Rank of the unit that receives the anti-Hebbian update.  ``k = 1`` would be the
        winner itself, so ``2 <= k < n_hidden`` is required.
    delta : float >= 0
        Strength of the anti-Hebbian update (the paper's :math:`\Delta`, 0.4).
    lr : float >= 0
        Initial learning rate; :meth:`fit` decays it linearly to 0,
        :math:`\varepsilon_e = \text{lr}(1 - e/\text{epochs})`.
    precision : float > 0
        Floor of the normaliser :math:`\max|\Delta W|` (itself floored at the smallest
        normal number of the dtype, so an all-zero update never divides by zero).
    batch_size : int >= 1
        Minibatch size used by :meth:`fit`.
    init : {"normal", "uniform"} or array (n_hidden, n_in)
        Initial weights: normal ``N(init_mean, init_std²)``, uniform on
        ``[init_mean - init_std, init_mean + init_std)``, or the given array (copied).
    init_mean, init_std : float
        Parameters of the random initialisation.
    inhibitory_fraction : float in [0, 1] or None
        If given, Dale's principle per input unit (see the module docstring):
        ``round(inhibitory_fraction * n_in)`` inhibitory input columns, drawn with ``rng``.
    normalize : bool
        Scale every input row to unit Euclidean norm before use.
    rng : int, bionp.random.Generator or None
        Source of the initial weights, the Dale mask and the shuffling.
    dtype : "float32", "float64" or None
        Floating dtype of the weights (default ``bionp.get_dtype()``, float32).
    progress : bool or None
        tqdm progress bar over epochs in :meth:`fit`; None shows it only on a terminal
        (and not when the environment sets ``BIONP_PROGRESS=0``).

    Attributes
    ----------
    weights_ : array (n_hidden, n_in)
        The learned weights :math:`W`.
    input_signs_ : array (n_in,) or None
        Dale signs of the input columns (+1 excitatory, −1 inhibitory).
    win_counts_ : int64 array (n_hidden,)
        How many samples each unit has won since the weights were initialised.
    n_updates_ : int
        Minibatch updates since the weights were initialised.
    history_ : list of dict
        One entry per epoch of :meth:`fit`: ``epoch``, ``lr``, ``seconds``,
        ``winner_fraction`` (units that won at least once in the epoch),
        ``ever_won_fraction``, ``mean_norm`` (mean of :math:`\sum_i|W_{\mu i}|^p`
        over the units that ever won), ``converged_fraction`` and
        ``attracting_fraction`` (of the units updated in the epoch, the share whose
        balance :math:`s_\mu = \sum_b g_{b\mu} I_{b\mu}` summed over the epoch is
        positive, i.e. for which the unit sphere is attracting; see the module docstring).

    Notes
    -----
    :meth:`transform` returns features, as in scikit-learn and as
    :meth:`bionp.hebbian.HebbianStack.transform`: the paper's classifier features
    :math:`\max(x W^\top, 0)^n` (:meth:`activations`).  :meth:`currents` returns the
    currents :math:`I = x(\operatorname{sign}(W)|W|^{p-1})^\top` the rule ranks, which
    ``transform`` returned in bionp 0.1.

    Examples
    --------
    >>> import bionp as bnp
    >>> x = bnp.random.default_rng(0).uniform(0.0, 1.0, size=(500, 64))
    >>> kh = KrotovHopfield(20, p=2.0, k=2, delta=0.4, lr=0.02, normalize=True, rng=0)
    >>> kh.fit(x, epochs=2).transform(x[:5], power=3).shape   # max(x W^T, 0)^3
    (5, 20)
    """

    def __init__(self, n_hidden: int, p: float = 2.0, k: int = 2, delta: float = 0.4,
                 lr: float = 0.02, precision: float = 1e-30, batch_size: int = 100,
                 init: Any = "normal", init_mean: float = 0.0, init_std: float = 1.0,
                 inhibitory_fraction: float | None = None, normalize: bool = False,
                 rng: int | Generator | None = None, dtype: Any = None,
                 progress: bool | None = None):
        _check_number("n_hidden", n_hidden, low=1, integer=True)
        _check_number("p", p, low=1, hint=" (the rule needs p >= 1; the paper uses p = 2 or 3)")
        _check_number("k", k, low=2, integer=True,
                      hint=" (k is the rank of the anti-Hebbian unit; k = 1 is the winner itself)")
        if k >= n_hidden:
            raise ValueError(
                f"k must be smaller than n_hidden: got k={k} with n_hidden={n_hidden}; "
                "use more hidden units or a smaller k"
            )
        _check_number("delta", delta, low=0, hint=" (the anti-Hebbian strength Delta)")
        _check_number("lr", lr, low=0)
        _check_number("precision", precision, low=0, low_open=True)
        _check_number("batch_size", batch_size, low=1, integer=True)
        _check_number("init_mean", init_mean)
        _check_number("init_std", init_std, low=0)
        if inhibitory_fraction is not None:
            _check_number("inhibitory_fraction", inhibitory_fraction, low=0)
            if inhibitory_fraction > 1:
                raise ValueError(
                    f"inhibitory_fraction must be in [0, 1], got {inhibitory_fraction!r}")
        if not is_array(init) and not isinstance(init, np.ndarray):
            if init not in ("normal", "uniform"):
                raise ValueError(f"init must be 'normal', 'uniform' or an array of shape "
                                 f"(n_hidden, n_in); got {init!r}")
        self.n_hidden = int(n_hidden)
        self.p = float(p)
        self.k = int(k)
        self.delta = float(delta)
        self.lr = float(lr)
        self.precision = float(precision)
        self.batch_size = int(batch_size)
        self.init = init
        self.init_mean = float(init_mean)
        self.init_std = float(init_std)
        self.inhibitory_fraction = (None if inhibitory_fraction is None
                                    else float(inhibitory_fraction))
        self.normalize = bool(normalize)
        self.rng = rng
        self.dtype = None if dtype is None else resolve_dtype(dtype)
        self.progress = progress
        self._rng = check_rng(rng)
        self.weights_ = None
        self.input_signs_ = None
        self.history_ = []

    # -- parameters ----------------------------------------------------------
    def get_params(self) -> dict:
        """Constructor arguments (``init`` arrays and generators are returned as given)."""
        return {
            "n_hidden": self.n_hidden, "p": self.p, "k": self.k, "delta": self.delta,
            "lr": self.lr, "precision": self.precision, "batch_size": self.batch_size,
            "init": self.init, "init_mean": self.init_mean, "init_std": self.init_std,
            "inhibitory_fraction": self.inhibitory_fraction, "normalize": self.normalize,
            "rng": self.rng, "dtype": None if self.dtype is None else self.dtype.name,
            "progress": self.progress,
        }

    def __repr__(self) -> str:
        return (f"KrotovHopfield(n_hidden={self.n_hidden}, p={self.p}, k={self.k}, "
                f"delta={self.delta}, lr={self.lr}, batch_size={self.batch_size})")

    @property
    def n_in_(self) -> int | None:
        return None if self.weights_ is None else int(self.weights_.shape[1])

    # -- initialisation ------------------------------------------------------------
    def initialize(self, n_in: int):
        """Draw the initial weights (and the Dale signs) for ``n_in`` inputs; returns self."""
        _check_number("n_in", n_in, low=1, integer=True)
        xp = get_xp()
        dt = resolve_dtype(self.dtype)
        shape = (self.n_hidden, int(n_in))
        if isinstance(self.init, str):
            if self.init == "normal":
                W = self._rng.normal(self.init_mean, self.init_std, shape, dtype=dt, xp=xp)
            else:
                W = self._rng.uniform(self.init_mean - self.init_std,
                                      self.init_mean + self.init_std, shape, dtype=dt, xp=xp)
        else:
            W = asarray(self.init, dtype=dt, xp=xp).copy()  # a host array is uploaded once
            if tuple(W.shape) != shape:
                raise ValueError(f"init array has shape {tuple(W.shape)}, expected "
                                 f"(n_hidden, n_in) = {shape}")
            if not to_scalar(xp.all(xp.isfinite(W))):
                raise ValueError("init array contains NaN or Inf")
        if self.inhibitory_fraction is not None:
            n_inh = int(round(self.inhibitory_fraction * n_in))
            signs = xp.ones(int(n_in), dtype=dt)
            if n_inh:
                signs[self._rng.choice(int(n_in), n_inh, replace=False, xp=xp)] = -1
            xp.abs(W, out=W)
            W *= signs
            self.input_signs_ = signs
        else:
            self.input_signs_ = None
        self.weights_ = W
        self.win_counts_ = xp.zeros(self.n_hidden, dtype=xp.int64)
        self.n_updates_ = 0
        self.history_ = []
        return self

    # -- input checks ------------------------------------------------------------
    def _check_input(self, x, what="x"):
        ref = self.weights_ if self.weights_ is not None else get_xp().empty(0)
        xp = get_array_module(x, ref)
        check_samples(x, what)
        if self.weights_ is not None and x.shape[1] != self.weights_.shape[1]:
            raise ValueError(f"{what} has {x.shape[1]} features but the layer was built for "
                             f"n_in = {self.weights_.shape[1]}")
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{what} must hold real numbers, got dtype {x.dtype}")
        if not to_scalar(xp.all(xp.isfinite(x))):
            raise ValueError(f"{what} contains NaN or Inf; clean or impute the data first")
        dt = resolve_dtype(self.dtype) if self.weights_ is None else self.weights_.dtype
        x = x.astype(dt, copy=False)
        if self.normalize:
            norms = xp.sqrt((x * x).sum(axis=1, keepdims=True))
            xp.maximum(norms, xp.finfo(dt).tiny, out=norms)
            x = x / norms
        return x

    def _check_lr(self, lr):
        if lr is None:
            return self.lr
        return float(_check_number("lr", lr, low=0))

    # -- learning ----------------------------------------------------------------
    def partial_fit(self, x_batch, lr: float | None = None):
        """One update of the rule on one minibatch ``x_batch`` (batch, n_in).

        The whole batch is used as one minibatch (``batch_size`` is not applied).
        ``lr`` overrides the step :math:`\\varepsilon` (default ``self.lr``).
        Initialises the weights on the first call.
        """
        eps = self._check_lr(lr)
        x = self._check_input(x_batch, "x_batch")
        if self.weights_ is None:
            self.initialize(x.shape[1])
            x = x.astype(self.weights_.dtype, copy=False)
        xp = get_array_module(self.weights_)
        W = self.weights_
        winner, _ = krotov_hopfield_update(
            W, x, p=self.p, k=self.k, delta=self.delta, lr=eps, precision=self.precision,
            signs=self.input_signs_,
        )
        self.win_counts_ += xp.bincount(winner, minlength=self.n_hidden)
        self.n_updates_ += 1
        return self

    def fit(self, x, epochs: int = 1, shuffle: bool = True):
        """Train from freshly initialised weights for ``epochs`` passes over ``x``.

        With an int ``rng`` every call of ``fit`` gives the same result; a
        :class:`~bionp.random.Generator` continues its stream.

        The learning rate of epoch ``e`` (0-based) is ``lr * (1 - e / epochs)``;
        every epoch visits the samples in a new order drawn from ``rng`` (if
        ``shuffle``) in minibatches of ``batch_size`` (the last one may be smaller).
        Per-epoch diagnostics are appended to :attr:`history_`.
        """
        _check_number("epochs", epochs, low=1, integer=True)
        x = self._check_input(x, "x")
        n = x.shape[0]
        if isinstance(self.rng, numbers.Integral):
            self._rng = check_rng(self.rng)  # an int seed: every fit starts from the same state
        self.initialize(x.shape[1])
        x = x.astype(self.weights_.dtype, copy=False)
        xp = get_array_module(self.weights_)
        W = self.weights_
        Wp = W if self.p == 2 else power_weights(W, self.p)
        bs = min(self.batch_size, n)
        currents = xp.empty((bs, self.n_hidden), dtype=W.dtype)
        xbuf = xp.empty((bs, x.shape[1]), dtype=W.dtype) if shuffle else None
        bar = self._epochs(epochs)
        for epoch in bar:
            t0 = time.perf_counter()
            eps = self.lr * (1.0 - epoch / epochs)
            order = self._rng.permutation(n, xp=xp) if shuffle else None
            wins = xp.zeros(self.n_hidden, dtype=xp.int64)
            balance = xp.zeros(self.n_hidden, dtype=W.dtype)
            touched = xp.zeros(self.n_hidden, dtype=bool)
            for start in range(0, n, bs):
                stop = min(start + bs, n)
                if shuffle:
                    batch = xp.take(x, order[start:stop], axis=0, out=xbuf[:stop - start])
                else:
                    batch = x[start:stop]
                winner, kth = krotov_hopfield_update(
                    W, batch, p=self.p, k=self.k, delta=self.delta, lr=eps,
                    precision=self.precision, Wp=Wp, currents=currents, signs=self.input_signs_,
                    balance=balance,
                )
                wins += xp.bincount(winner, minlength=self.n_hidden)
                touched[kth] = True
                self.n_updates_ += 1
            self.win_counts_ += wins
            seconds = time.perf_counter() - t0
            touched |= wins > 0
            record = self._epoch_record(epoch, eps, seconds, wins, balance, touched)
            self.history_.append(record)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(converged=f"{record['converged_fraction']:.3f}",
                                mean_norm=f"{record['mean_norm']:.3g}")
        return self

    def _epochs(self, epochs):
        return progress_range(epochs, self.progress, "Krotov-Hopfield")

    def _epoch_record(self, epoch, eps, seconds, wins, balance, touched) -> dict:
        xp = get_array_module(self.weights_)
        n_touched = to_scalar(xp.count_nonzero(touched))
        attracting = (to_scalar(xp.count_nonzero((balance > 0) & touched)) / n_touched
                      if n_touched else float("nan"))
        ever = self.win_counts_ > 0
        norms = self.unit_norms()
        n_ever = to_scalar(xp.count_nonzero(ever))
        mean_norm = to_scalar(xp.sum(norms[ever]) / n_ever) if n_ever else float("nan")
        return {
            "epoch": int(epoch),
            "lr": float(eps),
            "seconds": float(seconds),
            "winner_fraction": to_scalar(xp.count_nonzero(wins)) / self.n_hidden,
            "ever_won_fraction": n_ever / self.n_hidden,
            "mean_norm": float(mean_norm),
            "converged_fraction": self.convergence_fraction(),
            "attracting_fraction": attracting,
        }

    # -- outputs -------------------------------------------------------------------
    def _require_fitted(self):
        if self.weights_ is None:
            raise RuntimeError("this KrotovHopfield has no weights yet: "
                               "call fit(x) or partial_fit(x) first")

    def currents(self, x):
        r"""Currents :math:`I = x\,(\operatorname{sign}(W)|W|^{p-1})^\top`, (n_samples, n_hidden).

        These are the quantities the rule ranks (what :meth:`transform` returned in
        bionp 0.1).  For the paper's classifier features use :meth:`transform`.
        """
        self._require_fitted()
        x = self._check_input(x)
        return hebbian_currents(x, self.weights_, self.p)

    def transform(self, x, power: float | None = None):
        r"""Features :math:`\max(x W^\top, 0)^n` with ``n = power`` (default 4.5, the paper's),
        ``(n_samples, n_hidden)``: scikit-learn's meaning, as
        :meth:`bionp.hebbian.HebbianStack.transform` (which also scales rows to unit norm).

        Changed after bionp 0.1: ``transform`` returned the currents, now :meth:`currents`.
        Called without ``power`` it says so once per process (a :class:`FutureWarning`);
        pass ``power=`` to confirm the new meaning.
        """
        if power is None:
            global _TRANSFORM_WARNED
            if not _TRANSFORM_WARNED:
                _TRANSFORM_WARNED = True
                import warnings

                warnings.warn(
                    "KrotovHopfield.transform(x) returns features max(x W^T, 0)^4.5 (scikit-learn's "
                    "meaning, as HebbianStack.transform); the currents it returned in bionp 0.1 "
                    "are KrotovHopfield.currents(x). Pass power= to silence this warning.",
                    FutureWarning, stacklevel=2)
            power = 4.5
        return self.activations(x, power=power)

    def activations(self, x, power: float = 4.5):
        r"""The paper's hidden features :math:`\max(x W^\top, 0)^n` with ``n = power``."""
        self._require_fitted()
        _check_number("power", power, low=0, low_open=True)
        x = self._check_input(x)
        xp = get_array_module(self.weights_)
        h = xp.matmul(x, self.weights_.T)
        xp.maximum(h, 0, out=h)
        if power != 1:
            xp.power(h, h.dtype.type(power), out=h)
        return h

    # -- diagnostics -----------------------------------------------------------------
    def unit_norms(self):
        r"""Per-unit :math:`\sum_i |W_{\mu i}|^p`, ``(n_hidden,)``; → 1 for a trained unit."""
        self._require_fitted()
        xp = get_array_module(self.weights_)
        a = xp.abs(self.weights_)
        if self.p == 2:
            a *= a
        elif self.p == 3:
            a = a * a * a
        else:
            xp.power(a, a.dtype.type(self.p), out=a)
        return a.sum(axis=1)

    def winner_fraction(self) -> float:
        """Share of hidden units that have won at least one sample."""
        self._require_fitted()
        xp = get_array_module(self.win_counts_)
        return to_scalar(xp.count_nonzero(self.win_counts_)) / self.n_hidden

    def active_fraction(self, x, min_share: float = 0.01) -> float:
        r"""Share of units whose feature :math:`\max(W_\mu x, 0)` is positive on at least
        ``min_share`` of the rows of ``x``.

        A unit that ended as a negative prototype (see "Norm dynamics and stability" in
        the module docstring) has a zero feature on non-negative data: it may count as
        converged (its norm is 1) but is not active.
        """
        self._require_fitted()
        _check_number("min_share", min_share, low=0)
        if min_share > 1:
            raise ValueError(f"min_share must be in [0, 1], got {min_share!r}")
        x = self._check_input(x)
        xp = get_array_module(self.weights_)
        positive = xp.count_nonzero(xp.matmul(x, self.weights_.T) > 0, axis=0)
        need = max(1, int(np.ceil(min_share * x.shape[0])))
        return to_scalar(xp.count_nonzero(positive >= need)) / self.n_hidden

    def convergence_fraction(self, tol: float = 0.05) -> float:
        r"""Share of the units that ever won with :math:`|\sum_i|W_{\mu i}|^p - 1| \le` ``tol``.

        Returns ``nan`` when no unit has won yet.
        """
        self._require_fitted()
        _check_number("tol", tol, low=0)
        xp = get_array_module(self.weights_)
        ever = self.win_counts_ > 0
        n_ever = to_scalar(xp.count_nonzero(ever))
        if not n_ever:
            return float("nan")
        close = xp.abs(self.unit_norms() - 1) <= tol
        return to_scalar(xp.count_nonzero(close & ever)) / n_ever
