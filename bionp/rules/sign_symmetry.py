r"""Sign-concordant feedback: uSF, brSF and frSF (Liao, Leibo & Poggio 2016; Moskovitz,
Litwin-Kumar & Abbott 2018).

Feedback alignment (:mod:`bionp.rules.feedback_alignment`) with feedback matrices that
share the **signs** of the forward weights but not their magnitudes.  Layer
:math:`l \ge 1` sends the error back through

.. math::

    \delta_{l-1} = f'_{l-1}(z_{l-1}) \odot (\delta_l B_l), \qquad
    g_{W_l} = \delta_l^\top a_{l-1}, \qquad g_{b_l} = \textstyle\sum_n \delta_{l,n},

with, recomputed from the current :math:`W_l` before every update,

=========  ==========================================================================
``usf``    :math:`B_l = c_l\,\operatorname{sign}(W_l)` (uniform sign-concordant
           feedback: every magnitude the same)
``brsf``   :math:`B_l = c_l\,|R_l| \odot \operatorname{sign}(W_l)`,
           :math:`R_l \sim \mathcal N(0, 1)` or :math:`\mathcal U(0, 1)`
           (``magnitudes=``) **redrawn for every update** (batchwise random
           magnitudes; one draw for all layers, in layer order)
``frsf``   the same with :math:`R_l` drawn once and **fixed** (fixed random magnitudes)
=========  ==========================================================================

(Liao et al.'s Table 1 names them uSF, BM/brSF and FM/frSF; Moskovitz et al. scale
``sign(W)`` to keep the backward signals of the size backprop's would have.)
The magnitudes are uniform by default (``magnitudes="uniform"``, :math:`\mathcal U(0, 1)`),
as biotorch draws them (a Xavier-uniform draw, then its absolute value: with
``scale="norm"`` the range cancels), at a third of the cost of a normal draw;
``magnitudes="normal"`` gives half-normal ones (the default until December 2026: a
checkpoint saved then names no distribution and resumes only with this one).
:math:`\operatorname{sign}(0) = 0`: a zero weight sends nothing back.

The scale :math:`c_l` (``scale=``):

``"norm"`` (default)
    :math:`c_l = \|W_l\|_F / \|S_l\|_F` with :math:`S_l` the unscaled matrix: ``B`` has
    the Frobenius norm of ``W`` in every layer and every update (Moskovitz et al.'s
    remedy for the exploding backward pass of unit signs), so the deltas keep
    backprop's size.  ``metrics.weight_ratio`` reads 1.
``"align"``
    :math:`c_l = \|W_l\|_F^2 / \langle S_l, W_l\rangle`: the component of ``B`` along
    ``W`` is ``W`` itself (:math:`\langle B_l, W_l\rangle = \|W_l\|_F^2`), so the error
    sent down has backprop's size along backprop's direction (plus the part of ``B``
    orthogonal to ``W``); :math:`1/\cos` of the W-B angle times ``"norm"``'s factor
    (about 1.25 for Gaussian-like ``W`` and uSF).
``"xavier"``
    :math:`c_l = \sqrt{2/(n_{in} + n_{out})}` (biotorch's ``scaling_factor`` option,
    from Xiao et al. 2018; fans as in :mod:`bionp.nn.init`, ``in*kh*kw`` and
    ``out*kh*kw`` for a convolution).
``"unit"``
    :math:`c_l = 1`: Liao et al.'s plain ``sign(W)`` (and ``|R| ⊙ sign(W)``).
a positive number ``c``
    :math:`c_l = c` in every layer.

With ``variant="usf", scale="unit"`` the backward pass is exactly feedback alignment
with ``B = sign(W)``.

Convolutional networks: ``W`` and ``B`` are ``(out, in, kh, kw)`` kernels and ``B``
stands in for ``W`` in the transposed convolution; pooling, flatten and batch norm
need no ``B`` (``None``), as for :class:`~bionp.rules.FeedbackAlignment`.

State: the generator (brSF draws every update) and frSF's fixed :math:`|R_l|`
(``state_dict``); a checkpoint resumes bit-identically.  ``rule.B`` holds the matrices
of the last update (arrays the rule keeps and the next update overwrites in place: copy
one to keep it; brSF draws the magnitudes of all layers at once into another kept array,
so an update allocates nothing); :meth:`SignSymmetry.current_feedback` gives those the
next update would use without changing any state (for the diagnostics of :mod:`bionp.metrics`).
"""

from __future__ import annotations

import math

from bionp.backend import check_same_backend, get_array_module, to_scalar
from bionp.backend_dense import sign_times
from bionp.random import Generator, check_rng
from bionp.rules.base import ErrorPropagationRule
from bionp.rules.feedback_alignment import _feedforward_weights, _map_weights, _shapes
from bionp.validation import check_real

__all__ = ["SignSymmetry", "VARIANTS", "SCALES", "MAGNITUDES"]

#: the variants and their meaning
VARIANTS = {"usf": "uniform magnitudes, B = c sign(W)",
            "brsf": "random magnitudes redrawn every update, B = c |R| sign(W)",
            "frsf": "fixed random magnitudes, B = c |R| sign(W)"}
#: the named scales of B
SCALES = ("norm", "align", "xavier", "unit")
#: the distributions of brSF's and frSF's magnitudes R
MAGNITUDES = ("normal", "uniform")


def _xavier(shape) -> float:
    receptive = 1
    for s in shape[2:]:
        receptive *= int(s)
    return math.sqrt(2.0 / (int(shape[1]) * receptive + int(shape[0]) * receptive))


def _squared_norm(a) -> float:
    r""":math:`\|a\|_F^2` as a Python float (one ``dot`` of the flat array)."""
    flat = a.reshape(-1)
    return float(to_scalar(get_array_module(a).dot(flat, flat)))


def sign_feedback(W, magnitude=None, scale="norm", out=None, w_squared=None):
    r"""One layer's :math:`B = c\,(|R| \odot) \operatorname{sign}(W)`.

    Raises ``ValueError`` (before ``out`` is written) if ``W`` holds NaN or Inf, and if
    the result is not finite.

    Parameters
    ----------
    W : array
        The forward weights.
    magnitude : array or None
        :math:`R` (its absolute values are used; ``None`` for uSF).
    scale : {"norm", "align", "xavier", "unit"} or float
        The factor :math:`c` (module docstring).
    out : array or None
        Receives ``B`` (``W``'s shape and dtype, not overlapping ``W``); ``None``: a new
        array.
    w_squared : float or None
        :math:`\|W\|_F^2` if already known (else computed here).
    """
    xp = get_array_module(W)
    nw2 = _squared_norm(W) if w_squared is None else w_squared
    if not math.isfinite(nw2):
        raise ValueError(f"the weights of shape {tuple(W.shape)} hold NaN or Inf (their "
                         "squared norm is not finite): no sign-symmetric feedback")
    B = xp.empty(W.shape, dtype=W.dtype) if out is None else out
    if not sign_times(xp, W, magnitude, B):  # the compiled pass, else the array code
        if magnitude is None:
            xp.sign(W, out=B)
        else:
            xp.abs(magnitude, out=B)
            B *= xp.sign(W)
    sq = _squared_norm(B)
    if not math.isfinite(sq):
        raise ValueError(f"sign-symmetric feedback of a weight of shape {tuple(W.shape)} is "
                         "not finite (the weights or the magnitudes hold NaN or Inf)")
    if scale == "norm":
        c = math.sqrt(nw2) / math.sqrt(sq) if sq > 0 else 1.0
    elif scale == "align":
        along = float(to_scalar(xp.dot(B.reshape(-1), W.reshape(-1))))
        c = nw2 / along if along > 0 else 1.0
    elif scale == "xavier":
        c = _xavier(W.shape)
    elif scale == "unit":
        c = 1.0
    else:
        c = float(scale)
    if c != 1.0:
        B *= B.dtype.type(c)
    return B


class SignSymmetry(ErrorPropagationRule):
    r"""Sign-concordant feedback (uSF, brSF, frSF; module docstring for the maths).

    Parameters
    ----------
    variant : {"usf", "brsf", "frsf"}, default ``"usf"``
    scale : {"norm", "align", "xavier", "unit"} or float > 0, default ``"norm"``
        The factor :math:`c_l` on ``B`` (module docstring).
    rng : int, Generator or None
        Draws the magnitudes :math:`R` (brSF: every update; frSF: once).
    magnitudes : {"uniform", "normal"}, default ``"uniform"``
        :math:`R \sim \mathcal N(0, 1)` or :math:`\mathcal U(0, 1)` (brSF, frSF;
        module docstring).

    Attributes
    ----------
    B : list or None
        The feedback matrices of the last update (``B[0]`` and layers without weights:
        None).
    R : list or None
        frSF's fixed magnitudes :math:`|R_l|` (``None`` for the other variants).
    """

    name = "sign_symmetry"

    def __init__(self, variant: str = "usf", scale="norm", rng=None, magnitudes="uniform"):
        if not isinstance(variant, str) or variant.lower() not in VARIANTS:
            known = "; ".join(f"{k!r}: {v}" for k, v in VARIANTS.items())
            raise ValueError(f"variant must be one of {list(VARIANTS)} ({known}), "
                             f"got {variant!r}")
        self.variant = variant.lower()
        if isinstance(scale, str):
            if scale.lower() not in SCALES:
                raise ValueError(f"scale must be one of {list(SCALES)} or a positive number, "
                                 f"got {scale!r}")
            self.scale = scale.lower()
        else:
            self.scale = check_real("scale", scale, low=0, low_open=True)
        if magnitudes not in MAGNITUDES:
            raise ValueError(f"magnitudes must be one of {list(MAGNITUDES)} (the distribution "
                             f"of R), got {magnitudes!r}")
        self.magnitudes = magnitudes
        self._rng = check_rng(rng)
        self.B = None
        self.R = None
        self._shapes = None

    def _magnitudes(self, rng, shape, dtype, xp=None, out=None):
        """Draws of :math:`R` (``magnitudes``): standard normals or uniforms on [0, 1)."""
        if self.magnitudes == "uniform":
            return rng.uniform(0.0, 1.0, shape, dtype=dtype, xp=xp, out=out)
        return rng.normal(0.0, 1.0, shape, dtype=dtype, xp=xp, out=out)

    # -- setup ----------------------------------------------------------------------------
    def initialize(self, net):
        """Record ``net``'s weight shapes (and draw frSF's fixed magnitudes); returns self."""
        self._check_net(net)
        weights = _feedforward_weights(net, type(self).__name__)
        self._shapes = _shapes(weights)
        self.B = None
        if self.variant == "frsf":
            def draw(l, key, W):
                r = self._magnitudes(self._rng, tuple(W.shape), W.dtype, get_array_module(W))
                get_array_module(W).abs(r, out=r)
                return r
            self.R = _map_weights(weights, draw)
        return self

    def _weights(self, net):
        """The weights ``B`` stands in for, after checking the network and the backend."""
        self._check_net(net)
        weights = _feedforward_weights(net, type(self).__name__)
        want = _shapes(weights)
        if self._shapes is not None and want != self._shapes:
            raise ValueError(
                f"SignSymmetry was initialised for a network whose weights have shapes "
                f"{self._shapes[1:]}, but this network's weights have shapes {want[1:]}; use one "
                "rule object per network (or call rule.initialize(net))")
        if self.R is not None:
            _map_weights(weights, lambda l, k, W: check_same_backend(
                self.R[l] if k is None else self.R[l][k], W, names=(f"R[{l}]", f"W[{l}]")))
        return weights

    def _buffer(self, l, shape, dtype, xp):
        """An array kept between updates for layer ``l``'s ``B`` (``l`` is ``(layer, key)``
        inside a block; ``"R"``: brSF's magnitudes, drawn there every update)."""
        bufs = self.__dict__.setdefault("_bufs", {})
        buf = bufs.get(l)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype \
                or get_array_module(buf) is not xp:
            buf = bufs[l] = xp.empty(shape, dtype=dtype)
        return buf

    def _draw(self, weights, rng, reuse):
        r"""brSF's :math:`R` of every weight from **one** draw (``magnitudes``),
        the weights in order, each a contiguous piece of it (training: into an array
        kept); weights of several dtypes or backends: one draw each."""
        flat = []
        _map_weights(weights, lambda l, k, W: flat.append(W))
        dt, xp = flat[0].dtype, get_array_module(flat[0])
        if any(W.dtype != dt or get_array_module(W) is not xp for W in flat):
            return _map_weights(weights, lambda l, k, W: self._magnitudes(
                rng, tuple(W.shape), W.dtype, get_array_module(W)))
        total = sum(int(W.size) for W in flat)
        r = self._magnitudes(rng, (total,), dt, xp,
                             out=self._buffer("R", (total,), dt, xp) if reuse else None)
        start = [0]

        def piece(l, key, W):
            a = start[0]
            start[0] += int(W.size)
            return r[a:start[0]].reshape(W.shape)
        return _map_weights(weights, piece)

    def _compute(self, weights, rng, reuse=False):
        """``B`` for ``weights``; ``reuse``: written into the rule's arrays (training),
        else new arrays (diagnostics).  Every weight is checked finite before anything is
        drawn or written."""
        def squared(l, key, W):
            sq = _squared_norm(W)
            if not math.isfinite(sq):
                where = l if key is None else f"{l} ({key})"
                raise ValueError(f"SignSymmetry({self.variant!r}), layer {where}: the weights "
                                 f"of shape {tuple(W.shape)} hold NaN or Inf (their squared "
                                 "norm is not finite); nothing was changed")
            return sq
        norms = _map_weights(weights, squared)

        mags = self._draw(weights, rng, reuse) if self.variant == "brsf" else None

        def one(l, key, W):
            out = (self._buffer(l if key is None else (l, key), tuple(W.shape), W.dtype,
                                get_array_module(W)) if reuse else None)
            if mags is not None:
                mag = mags[l] if key is None else mags[l][key]
            elif self.variant == "frsf":
                mag = self.R[l] if key is None else self.R[l][key]
            else:
                mag = None
            try:
                return sign_feedback(W, mag, self.scale, out=out,
                                     w_squared=norms[l] if key is None else norms[l][key])
            except ValueError as exc:
                where = l if key is None else f"{l} ({key})"
                raise ValueError(f"SignSymmetry({self.variant!r}), layer {where}: {exc}; "
                                 "nothing was changed") from None
        return _map_weights(weights, one)

    def current_feedback(self, net) -> list:
        """The ``B`` the next update would use, computed from the current weights without
        changing any state (brSF draws from a copy of the generator)."""
        if self._shapes is None:
            if self.variant == "frsf":
                rng = Generator(0)
                rng.set_state(self._rng.get_state())
                twin = SignSymmetry(self.variant, self.scale, rng=rng,
                                    magnitudes=self.magnitudes).initialize(net)
                return twin.current_feedback(net)
        weights = self._weights(net)
        rng = None
        if self.variant == "brsf":
            rng = Generator(0)
            rng.set_state(self._rng.get_state())
        return self._compute(weights, rng)

    def _feedback(self, net):
        if self._shapes is None:
            self.initialize(net)
        weights = self._weights(net)
        saved = self._rng.get_state() if self.variant == "brsf" else None
        try:
            B = self._compute(weights, self._rng, reuse=True)
        except ValueError:
            if saved is not None:
                self._rng.set_state(saved)  # nothing changed: not even the generator
            raise
        self.B = B
        return B

    def _propagation(self, net) -> dict:
        return {"feedback": self._feedback(net)}

    def error_gradients(self, net, x, target, loss_fn) -> list:
        """The update :meth:`gradients` would return, with :meth:`current_feedback`: the
        diagnostics (:mod:`bionp.metrics`) measure it without drawing brSF's magnitudes
        from the training generator."""
        propagation = self._diagnostic_propagation(net)
        cache, t = self._prepare(net, x, target, loss_fn)
        delta = net.output_delta(cache, t, loss_fn)
        return self._backward(net, cache, delta, **propagation)

    def _diagnostic_propagation(self, net) -> dict:
        return {"feedback": self.current_feedback(net)}

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The generator state, frSF's magnitudes and the weight shapes the rule was built for."""
        out = {"rng": self._rng.get_state()}
        if self.R is not None:
            out["R"] = self.R
        if self._shapes is not None:
            out["shapes"] = [None if s is None else
                             {k: list(v) for k, v in s.items()} if isinstance(s, dict) else list(s)
                             for s in self._shapes]
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; a non-finite or misshapen ``R`` is refused before
        anything changes."""
        R = state.get("R")
        shapes = state.get("shapes")
        if self.variant == "frsf" and shapes is not None and R is None:
            raise ValueError("an frSF state needs its fixed magnitudes 'R'; got none")
        if R is not None:
            if shapes is None or len(R) != len(shapes):
                raise ValueError(f"state 'R' has {len(R)} entries but 'shapes' "
                                 f"{None if shapes is None else len(shapes)}")
            # a residual block's entries are dicts keyed by its weights: compared per key
            pairs = []
            for l, (r, s) in enumerate(zip(R, shapes)):
                if not isinstance(s, dict):
                    pairs.append((l, r, s))
                elif not isinstance(r, dict) or sorted(r) != sorted(s):
                    raise ValueError(f"state 'R[{l}]' must be a dict with keys {sorted(s)} "
                                     "(a residual block's magnitudes), got "
                                     f"{sorted(r) if isinstance(r, dict) else type(r).__name__}")
                else:
                    pairs += [(f"{l}][{k!r}", r[k], s[k]) for k in s]
            for l, r, s in pairs:
                if (r is None) != (s is None) or (r is not None and list(r.shape) != list(s)):
                    raise ValueError(f"state 'R[{l}]' has shape "
                                     f"{None if r is None else tuple(r.shape)}, expected "
                                     f"{None if s is None else tuple(s)}")
                if r is not None:
                    xp = get_array_module(r)
                    if not bool(to_scalar(xp.all(xp.isfinite(r)))):
                        raise ValueError(f"state 'R[{l}]' holds NaN or Inf: refused, nothing "
                                         "was changed")
        if "rng" in state:
            self._rng.set_state(state["rng"])
        self.R = None if R is None else list(R)
        self._shapes = None if shapes is None else [
            None if s is None else {k: tuple(v) for k, v in s.items()} if isinstance(s, dict)
            else tuple(s) for s in shapes]
        self.B = None

    def get_config(self) -> dict:
        cfg = {"name": self.name, "variant": self.variant, "scale": self.scale}
        if self.variant != "usf" and self.magnitudes != "normal":  # earlier checkpoints
            cfg["magnitudes"] = self.magnitudes  # (half-normal, no key) match "normal" only
        return cfg
